"""Training of the target ReID model: identity classification (+ optional triplet) over P x K batches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from amd.data.load import load_dataset
from amd.data.records import Dataset
from amd.devices import resolve_device
from amd.errors import AmdError
from amd.evaluate import retrieval_metrics
from amd.losses import batch_hard_triplet_loss, circle_softmax_loss, cross_entropy_label_smoothing
from amd.models import build_target, save_target
from amd.train import distributed
from amd.train.common import TrainResult, drive, train_loader
from amd.train.config import TargetTrainConfig, config_to_dict
from amd.train.loop import Trainer, lr_factor


def train_target(
    cfg: TargetTrainConfig,
    on_event: Callable[[Mapping[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    console: bool = False,
    dataset: Dataset | None = None,
) -> TrainResult:
    """Train (or resume training) a target model and write it to ``cfg.out`` when the run ends.

    Args:
        cfg: The configuration.
        on_event: Receives each logged step and evaluation (see :mod:`amd.train.hooks`).
        should_stop: Polled after every step; true stops the run (resume later from the run folder).
        console: Show a progress bar on stderr.
        dataset: An already loaded dataset (else ``cfg.data`` is loaded in ``cfg.format``).
    """
    if cfg.classifier not in ("linear", "cosine"):
        raise AmdError(f"classifier must be 'linear' or 'cosine', got {cfg.classifier!r}")
    # An unknown schedule is refused before any work.
    schedule = lr_factor(cfg.lr_schedule, cfg.warmup_epochs, cfg.epochs)
    # Under torchrun each process joins the group and takes its own GPU; alone, nothing changes.
    already_in_group = distributed.current().enabled
    ctx, device = distributed.from_environment(resolve_device(cfg.device))
    if not ctx.enabled or already_in_group:
        return _train(cfg, schedule, ctx, device, on_event, should_stop, console, dataset)
    try:
        result = _train(cfg, schedule, ctx, device, on_event, should_stop, console, dataset)
    except BaseException:
        distributed.leave(wait=False)
        raise
    distributed.leave()
    return result


def _train(
    cfg: TargetTrainConfig,
    schedule: Callable[[int], float],
    ctx: distributed.DistContext,
    device: torch.device,
    on_event: Callable[[Mapping[str, Any]], None] | None,
    should_stop: Callable[[], bool] | None,
    console: bool,
    dataset: Dataset | None,
) -> TrainResult:
    ds = dataset or load_dataset(cfg.data, cfg.format, require_attributes=False)
    if not ds.train:
        raise AmdError(f"{cfg.data}: no training images")
    loader, label_map = train_loader(ds.train, cfg.size, cfg.p, cfg.k, cfg.seed, cfg.workers)
    if ctx.enabled:
        loader.batch_sampler.shard(ctx.rank, ctx.world_size)
    torch.manual_seed(cfg.seed)
    model = build_target(cfg.arch, num_classes=len(label_map), classifier=cfg.classifier,
                         pretrained_path=cfg.pretrained).to(device)  # fmt: skip
    model = model.to(memory_format=torch.channels_last)
    net = distributed.wrap(model, ctx, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    def step(batch: Mapping[str, torch.Tensor]):
        images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = batch["label"].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            out = net(images)
        if cfg.classifier == "linear":
            id_loss = cross_entropy_label_smoothing(out.logits, labels, cfg.label_smoothing)
        else:
            id_loss = circle_softmax_loss(out.logits, labels)
        terms = {"id": id_loss}
        total = id_loss
        if cfg.triplet_weight > 0:
            tri = batch_hard_triplet_loss(out.pooled.float(), labels, cfg.triplet_margin)
            terms["triplet"] = tri
            total = total + cfg.triplet_weight * tri
        return total, terms, len(labels)

    def evaluate(trainer: Trainer) -> dict[str, float]:
        model.eval()
        try:
            return retrieval_metrics(model, ds, cfg.size, device, cfg.workers)
        finally:
            model.train()

    trainer = Trainer(net, optimizer, loader, step, cfg.epochs, scheduler, seed=cfg.seed, scaler=scaler)
    can_eval = bool(ds.query and ds.gallery)

    def save(metrics: dict[str, float]) -> None:
        if not ctx.is_main:
            return
        save_target(cfg.out, model.eval(), cfg.size, schema=ds.schema, config=config_to_dict(cfg), metrics=metrics,
                    extra={"epochs": trainer.state.epoch, "identities": len(label_map)})  # fmt: skip

    return drive(
        trainer, cfg, evaluate if can_eval else None, save, on_event, should_stop, console and ctx.is_main
    )
