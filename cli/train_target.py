"""``main.py train-target``: train a target ReID model."""

from __future__ import annotations

import argparse

NAME = "train-target"
HELP = "Train a target ReID model (ResNet or MobileNetV2 backbone, GeM, BNNeck) on a dataset folder."

REQUIRED = ("data",)
HELPS = {
    "data": "dataset folder",
    "format": "market1501, duke or csv",
    "arch": "backbone: resnet18/34/50/101 or mobilenetv2",
    "size": "input size",
    "pretrained": "ImageNet state dict file for the backbone (nothing is downloaded)",
    "p": "identities per batch",
    "k": "images per identity",
    "lr_schedule": "after the warm-up: constant, or cosine (decays to 1 %% of --lr by the last epoch)",
    "device": "auto, cpu, cuda or cuda:N",
    "workers": "data loading processes",
    "out": "model file to write",
    "run_dir": "folder of the resumable state and logs (default: next to --out)",
    "resume": "continue an interrupted run found in the run folder",
    "max_steps": "stop after this many steps (0: no limit)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from amd.train.config import TargetTrainConfig
    from cli.config_args import add_config_arguments

    add_config_arguments(parser, TargetTrainConfig, REQUIRED, HELPS)


def run(args: argparse.Namespace) -> int:
    from amd.train.config import TargetTrainConfig
    from amd.train.target import train_target
    from cli.config_args import check_run, config_from_args, report

    cfg = config_from_args(TargetTrainConfig, args, REQUIRED)
    check_run(cfg)
    return report(train_target(cfg, console=True))
