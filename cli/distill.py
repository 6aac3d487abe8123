"""``main.py distill``: distil an AMD interpreter from a trained target model."""

from __future__ import annotations

import argparse

NAME = "distill"
HELP = "Distil an interpreter that splits the target's distance into per-attribute components."

REQUIRED = ("data", "target")
HELPS = {
    "data": "dataset folder with attribute labels",
    "target": "target model file (from train-target)",
    "format": "market1501, duke or csv",
    "size": "input size (default: the target's)",
    "split": "last stage shared with the target: stem, layer1, layer2 or layer3",
    "map_mode": "faithful (the paper's maps) or localising (maps normalised over space)",
    "colour_prior": "add the colour term to the attribute prior",
    "aux_classifier": "train the auxiliary attribute classifier (predicted attributes for unlabelled crops)",
    "normalisation": "localising maps: mean (A / mean A) or softmax (a distribution over the cells)",
    "pooled_classifier": "localising maps: predict each attribute from the features its own map pools "
    "(replaces the auxiliary classifier; pushes each map onto its attribute's evidence)",
    "location_prior": "localising maps: learn where each attribute usually is (a per-attribute grid of logits; "
    "with evidence maps it is part of the cell scores and learns from the evidence loss)",
    "pooled_features": "what the pooled classifier pools: final (the target's feature map) or local "
    "(the stage before the last, through a per-cell layer)",
    "location_lr_scale": "learning rate of the location prior, as a multiple of --lr",
    "map_source": "localising maps: head (the decomposition head), evidence (a classifier that scores each "
    "cell on its own; its peak is where the attribute is drawn), head+evidence (their sum) or "
    "pinned (the evidence fixes each map's peak; the head scales the map and can dim its other cells)",
    "evidence_weight": "weight of the evidence classifier's loss (0: keep the evidence classifier and the "
    "location prior as they start, trained on cached features or taken from --start-from)",
    "evidence_cache": "first train the evidence classifier on cached features of this many augmented copies "
    "of the training crops (0: no)",
    "evidence_cache_epochs": "passes over the cached features",
    "evidence_lr_scale": "learning rate of the evidence classifier, as a multiple of --lr",
    "evidence_hidden": "channels of a hidden per-cell layer in the evidence classifier (0: linear)",
    "evidence_temperature": "T of the evidence classifier's smooth maximum over the cells, (1/T) log mean "
    "exp(T S): 1 the default, below 1 nearer the mean (a crop's logit rests on more of its cells)",
    "evidence_temperatures": "set the temperature apart for some attributes: NAME=T[,NAME=T...], NAME an "
    "attribute (handbag), its group (upper colour) or its pointing group (sleeves); e.g. hat=1,handbag=1",
    "map_floor": "localising maps: start a learned per-attribute floor at this value in [0, 1): each mask "
    "becomes (1 - e) map + e, same peak, a share e over the whole crop; the maps shown stay without it "
    "(0: no floor)",
    "lr_schedule": "after the warm-up: constant, or cosine (decays to 1 %% of --lr by the last epoch)",
    "start_from": "an interpreter of the same target whose fitting weights start this run",
    "device": "auto, cpu, cuda or cuda:N",
    "out": "interpreter file to write",
    "run_dir": "folder of the resumable state and logs (default: next to --out)",
    "resume": "continue an interrupted run found in the run folder",
    "max_steps": "stop after this many steps (0: no limit)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from amd.train.config import DistillConfig
    from cli.config_args import add_config_arguments

    add_config_arguments(parser, DistillConfig, REQUIRED, HELPS)


def run(args: argparse.Namespace) -> int:
    from amd.train.config import DistillConfig
    from amd.train.distill import distill
    from cli.config_args import check_run, config_from_args, report

    cfg = config_from_args(DistillConfig, args, REQUIRED)
    check_run(cfg)
    return report(distill(cfg, console=True))
