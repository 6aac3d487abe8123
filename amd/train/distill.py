"""Distillation of an AMD interpreter from a frozen target model (the method: :mod:`amd.models.interpreter`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from amd.data.load import load_dataset
from amd.data.records import Dataset
from amd.devices import resolve_device
from amd.errors import AmdError
from amd.evaluate import explanation_metrics
from amd.losses import amd_loss, attribute_classification_loss
from amd.models import Interpreter, load_target, save_interpreter
from amd.models.checkpoint import read_checkpoint
from amd.pointing import pointing_groups
from amd.schema import AttributeSchema
from amd.train.common import TrainResult, drive, train_loader
from amd.train.config import DistillConfig, config_to_dict
from amd.train.evidence_cache import pretrain_evidence
from amd.train.hooks import JsonLinesWriter
from amd.train.loop import Trainer, lr_factor


def colour_groups(schema: AttributeSchema) -> list[list[int]]:
    """Positions of the upper-colour and the lower-colour attributes (for the optional colour prior)."""
    groups = schema.group_indices()
    return [groups[g] for g in ("upper colour", "lower colour") if len(groups.get(g, [])) > 1]


def identity_positive_rates(dataset: Dataset) -> np.ndarray:
    """r_m: the fraction of training identities with attribute m (float64 (M,))."""
    by_pid = {r.pid: r.attributes for r in dataset.train if r.pid > 0}
    if not by_pid:
        return np.full(len(dataset.schema), 0.5)
    return (np.stack(list(by_pid.values())) > 0).mean(axis=0)


def freeze_evidence(interpreter: Interpreter) -> list[torch.nn.Parameter]:
    """Stop training the evidence classifier and, with evidence maps, the location prior in its scores.

    Returns the parameters frozen. Their places stay as they start (from ``start_from``): the
    distillation then fits only how sharp each map is, how much it weighs and, with ``pinned``, the head.
    Frozen parameters get no gradient at all, so no weight decay shrinks them either.
    """
    if interpreter.evidence is None:
        raise AmdError(
            "an evidence weight of 0 freezes the evidence classifier, and this interpreter has none"
        )
    frozen = list(interpreter.evidence.parameters())
    if interpreter.location_logits is not None:
        frozen.append(interpreter.location_logits)
    for p in frozen:
        p.requires_grad_(False)
    interpreter.train(interpreter.training)
    return frozen


def evidence_temperatures(default: float, spec: str, schema: AttributeSchema) -> float | tuple[float, ...]:
    """Each attribute's evidence temperature: ``default``, except where ``spec`` says otherwise.

    ``spec`` is ``"NAME=T,NAME=T,..."`` (empty: none), where NAME is an attribute (``handbag``), its schema
    group (``upper colour``) or its pointing group (``sleeves``, :func:`amd.pointing.pointing_groups`); an
    attribute's own name wins over its groups. Returns one value when all are equal.

    Raises:
        AmdError: A malformed entry, a value that is not a finite number above 0, a name that is none of
            these, or a name given twice.
    """
    if not (math.isfinite(default) and default > 0):
        raise AmdError(f"evidence temperatures: the default, {default}, must be a finite value above 0")
    pointing = pointing_groups(schema)
    names = {a.name: [j] for j, a in enumerate(schema)}
    groups: dict[str, list[int]] = {}
    for j, a in enumerate(schema):
        for g in {a.group, pointing[j]} - {a.name}:
            groups.setdefault(g, []).append(j)
    values = [float(default)] * len(schema)
    by_group: list[tuple[list[int], float]] = []
    by_name: list[tuple[list[int], float]] = []
    seen: set[str] = set()
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        name, sep, text = (part.strip() for part in entry.partition("="))
        try:
            value = float(text) if sep else math.nan
        except ValueError:
            value = math.nan
        if not sep or math.isnan(value):
            raise AmdError(f"evidence temperatures: {entry!r} must look like NAME=T, T a number")
        if not (math.isfinite(value) and value > 0):
            raise AmdError(f"evidence temperatures: {entry!r}: a temperature must be a finite value above 0")
        if name in seen:
            raise AmdError(f"evidence temperatures: {name!r} is given twice")
        seen.add(name)
        if name in names:
            by_name.append((names[name], value))
        elif name in groups:
            by_group.append((groups[name], value))
        else:
            known = ", ".join(sorted(set(names) | set(groups)))
            raise AmdError(f"evidence temperatures: no attribute or group {name!r} (known: {known})")
    for indices, value in by_group + by_name:
        for j in indices:
            values[j] = value
    return values[0] if len(set(values)) == 1 else tuple(values)


def distill(
    cfg: DistillConfig,
    on_event: Callable[[Mapping[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    console: bool = False,
    dataset: Dataset | None = None,
) -> TrainResult:
    """Distil (or resume distilling) an interpreter from ``cfg.target``; write it to ``cfg.out`` at the end."""
    # An unknown schedule is refused before any work.
    schedule = lr_factor(cfg.lr_schedule, cfg.warmup_epochs, cfg.epochs)
    device = resolve_device(cfg.device)
    target, target_info = load_target(cfg.target, device=device)
    size = tuple(cfg.size) if cfg.size else tuple(target_info.input_size)
    ds = dataset or load_dataset(cfg.data, cfg.format)
    if ds.schema is None or not ds.train:
        raise AmdError(f"{cfg.data}: distillation needs training images with attribute labels")
    if any(r.attributes.size != len(ds.schema) for r in ds.train[:1]):
        raise AmdError(f"{cfg.data}: the training records carry no attribute vectors")
    schema = ds.schema
    loader, _ = train_loader(ds.train, size, cfg.p, cfg.k, cfg.seed, cfg.workers)
    torch.manual_seed(cfg.seed)
    interpreter = Interpreter(
        target, len(schema), split=cfg.split, map_mode=cfg.map_mode,
        aux_classifier=cfg.aux_classifier and not cfg.pooled_classifier,
        normalisation=cfg.normalisation, pooled_classifier=cfg.pooled_classifier,
        location_prior=cfg.location_prior, pooled_features=cfg.pooled_features,
        map_source=cfg.map_source, evidence_hidden=cfg.evidence_hidden, map_floor=cfg.map_floor,
        evidence_temperature=evidence_temperatures(cfg.evidence_temperature, cfg.evidence_temperatures, schema),
    ).to(device)  # fmt: skip
    if cfg.start_from:
        start_info, start_state = read_checkpoint(cfg.start_from)
        if start_info.kind != "interpreter" or start_info.target_sha256 != target_info.sha256:
            raise AmdError(f"{cfg.start_from}: not an interpreter of the target {cfg.target}")
        interpreter.warm_start(start_state)
    resuming = cfg.resume and (cfg.resolved_run_dir() / "last.pt").is_file()
    rates = torch.as_tensor(identity_positive_rates(ds), dtype=torch.float32, device=device)
    if cfg.evidence_cache > 0 and not resuming:
        if interpreter.evidence is None:
            raise AmdError("evidence_cache trains the evidence classifier: use an evidence map source")
        run_dir = cfg.resolved_run_dir()
        # The cached fit's epochs open the run's log, before the distillation's steps.
        log = JsonLinesWriter(run_dir / "log.jsonl")

        def report(epoch: int, loss: float) -> None:
            event = {
                "type": "evidence_cache",
                "epoch": epoch,
                "epochs": cfg.evidence_cache_epochs,
                "loss": loss,
            }
            log.write(event)
            if console:
                print(
                    f"evidence on cached features, epoch {epoch}/{cfg.evidence_cache_epochs}: loss {loss:.4f}"
                )
            if on_event is not None:
                on_event(event)

        try:
            pretrain_evidence(
                interpreter, ds.train, size, rates.cpu().numpy(), cfg.evidence_cache, cfg.evidence_cache_epochs,
                lr=cfg.lr * cfg.evidence_lr_scale, prior_lr=cfg.lr * cfg.location_lr_scale,
                weight_decay=cfg.weight_decay, seed=cfg.seed, device=device, should_stop=should_stop,
                on_epoch=report,
            )  # fmt: skip
        finally:
            log.close()
        if should_stop is not None and should_stop():
            # Cancelled during the cached fit: nothing to resume from, a new start fits the cache again.
            return TrainResult(None, 0, True, {}, [], str(run_dir))
        interpreter.train()
    frozen = freeze_evidence(interpreter) if cfg.evidence_weight == 0 else []
    # The location prior is a handful of logits per attribute: at the network's learning rate it would
    # barely move in a short run, so it learns faster (and without weight decay pulling it to 0).
    prior_params = [p for p in [interpreter.location_logits] if p is not None and p.requires_grad]
    # The evidence classifier is a small per-cell classifier on frozen features: it also learns faster.
    evidence = interpreter.evidence
    evidence_params = [p for p in evidence.parameters() if p.requires_grad] if evidence is not None else []
    if interpreter.sharpness is not None and interpreter.log_gain is not None:
        # How sharp each evidence map is and how much it weighs are a few numbers per attribute, and with
        # evidence maps alone they are all the distillation trains: they learn at the same fast rate.
        evidence_params += [interpreter.sharpness, interpreter.log_gain]
    # The map floors are one number per attribute too; no weight decay, which would pull them towards 1/2.
    floor_params = [p for p in [interpreter.floor_logit] if p is not None]
    special = prior_params + evidence_params + floor_params
    params = [p for p in interpreter.own_parameters() if all(p is not q for q in special + frozen)]
    param_groups = [{"params": params}]
    if prior_params:
        param_groups.append(
            {"params": prior_params, "lr": cfg.lr * cfg.location_lr_scale, "weight_decay": 0.0}
        )
    if evidence_params:
        param_groups.append({"params": evidence_params, "lr": cfg.lr * cfg.evidence_lr_scale})
    if floor_params:
        param_groups.append(
            {"params": floor_params, "lr": cfg.lr * cfg.evidence_lr_scale, "weight_decay": 0.0}
        )
    optimizer = torch.optim.Adam(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    groups = colour_groups(schema) if cfg.colour_prior else None

    def step(batch: Mapping[str, torch.Tensor]):
        images = batch["image"].to(device, non_blocking=True)
        attrs = batch["attributes"].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            out = interpreter(images)
        md, prior = amd_loss(out.embedding.float(), out.attribute_embeddings.float(), attrs, groups)
        total = cfg.md_weight * md + cfg.prior_weight * prior
        terms = {"distillation": md, "prior": prior}
        # Without an auxiliary or pooled classifier, attribute_logits are the evidence logits: count them once.
        if out.attribute_logits is not None and out.attribute_logits is not out.evidence_logits:
            aux = attribute_classification_loss(out.attribute_logits.float(), attrs, rates)
            terms["attributes"] = aux
            total = total + cfg.aux_weight * aux
        if out.evidence_logits is not None and not frozen:
            evidence = attribute_classification_loss(out.evidence_logits.float(), attrs, rates)
            terms["evidence"] = evidence
            total = total + cfg.evidence_weight * evidence
        return total, terms, len(images)

    def evaluate(trainer: Trainer) -> dict[str, float]:
        interpreter.eval()
        try:
            return explanation_metrics(interpreter, ds, size, device, cfg.workers)
        finally:
            interpreter.train()

    trainer = Trainer(
        interpreter, optimizer, loader, step, cfg.epochs, scheduler, seed=cfg.seed, scaler=scaler
    )
    can_eval = bool(ds.query and ds.gallery)

    def save(metrics: dict[str, float]) -> None:
        save_interpreter(cfg.out, interpreter.eval(), size, schema, target_info.sha256, config=config_to_dict(cfg),
                         metrics=metrics, extra={"epochs": trainer.state.epoch})  # fmt: skip

    return drive(trainer, cfg, evaluate if can_eval else None, save, on_event, should_stop, console)
