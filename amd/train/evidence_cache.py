"""Training the evidence classifier on cached features, before (or instead of) a distillation pass.

The evidence classifier of a localising interpreter scores every cell of the target's frozen output of
the stage before the last (:class:`~amd.models.Interpreter`, ``map_source`` ``evidence`` or ``pinned``).
Its training needs no network pass once those features are known, so they are extracted once, for a few
augmented copies of every training crop, and the classifier (with the location prior in its scores) is
fitted on them in large batches: many more passes over the data than a distillation run makes in the
same time. :func:`~amd.train.distill.distill` does this first when ``evidence_cache`` is above 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from amd.data.records import Record
from amd.data.torch_dataset import read_rgb
from amd.data.transforms import build_transforms
from amd.errors import AmdError
from amd.losses import attribute_classification_loss
from amd.models import Interpreter

#: Crops per step of :func:`fit_evidence`.
CACHE_BATCH = 256
#: Largest cache :func:`pretrain_evidence` builds, in bytes.
CACHE_LIMIT = 4 * 2**30


def cache_bytes(interpreter: Interpreter, size: tuple[int, int], crops: int) -> int:
    """Bytes of the float16 features of ``crops`` crops of ``size`` (height, width)."""
    with torch.inference_mode():
        probe = torch.zeros(1, 3, *size, device=next(interpreter.target.parameters()).device)
        one = interpreter._local_features(interpreter.target.backbone(probe, end=interpreter.split))
    return 2 * one.numel() * crops


def local_features(
    interpreter: Interpreter,
    records: Sequence[Record],
    transform: Callable[[Image.Image], torch.Tensor],
    copies: int = 1,
    device: torch.device | str = "cpu",
    batch: int = 64,
) -> torch.Tensor:
    """The target's output of the stage before the last for ``copies`` versions of every crop.

    Returns a float16 CPU tensor (copies * N, C, h, w), copy by copy; copy ``c`` is drawn with the random
    seed ``c``, so the same call gives the same augmentations.
    """
    device = torch.device(device)
    out = []
    for copy in range(copies):
        torch.manual_seed(copy)
        for i in range(0, len(records), batch):
            crops = []
            for r in records[i : i + batch]:
                crops.append(transform(read_rgb(r.path)))
            with torch.inference_mode():
                shared = interpreter.target.backbone(torch.stack(crops).to(device), end=interpreter.split)
                out.append(interpreter._local_features(shared).half().cpu())
    return torch.cat(out)


def cell_scores(interpreter: Interpreter, features: torch.Tensor) -> torch.Tensor:
    """Cell scores S (B, M, h, w) of the evidence classifier on cached features, the location prior included."""
    return interpreter.cell_scores(features.float())


def fit_evidence(
    interpreter: Interpreter,
    features: torch.Tensor,
    attributes: torch.Tensor,
    rates: torch.Tensor,
    epochs: int,
    lr: float,
    prior_lr: float,
    weight_decay: float,
    seed: int = 0,
    batch: int = CACHE_BATCH,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``interpreter``'s evidence classifier and location prior on cached ``features``.

    Args:
        features: (N, C, h, w) from :func:`local_features`.
        attributes: (N, M) attribute labels of the cached crops (+1 present, -1 absent).
        rates: (M,) positive rates of the training identities (the loss weights, as in the distillation).
        lr, prior_lr: learning rates of the classifier (Adam, with ``weight_decay``) and of the prior
            (without weight decay).
        should_stop: checked between steps; the fit stops early when it returns true.
        on_epoch: called with (epoch, mean loss) after each epoch.

    Returns:
        the mean loss of every epoch. The interpreter is left in eval mode.
    """
    if interpreter.evidence is None:
        raise AmdError("this interpreter has no evidence classifier")
    device = next(interpreter.evidence.parameters()).device
    groups = [{"params": list(interpreter.evidence.parameters()), "lr": lr}]
    if interpreter.location_logits is not None:
        groups.append({"params": [interpreter.location_logits], "lr": prior_lr, "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    rates = rates.to(device)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    interpreter.train()
    try:
        for epoch in range(epochs):
            total, seen = 0.0, 0
            for idx in torch.randperm(len(features), generator=generator).split(batch):
                if should_stop is not None and should_stop():
                    return losses
                x = features[idx].to(device)
                y = attributes[idx].to(device)
                loss = attribute_classification_loss(
                    interpreter.evidence_logits(cell_scores(interpreter, x)), y, rates
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            losses.append(total / max(seen, 1))
            if on_epoch is not None:
                on_epoch(epoch + 1, losses[-1])
    finally:
        interpreter.eval()
    return losses


def pretrain_evidence(
    interpreter: Interpreter,
    records: Sequence[Record],
    size: tuple[int, int],
    rates: np.ndarray,
    copies: int,
    epochs: int,
    lr: float,
    prior_lr: float,
    weight_decay: float,
    seed: int = 0,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Cache ``copies`` augmented versions of the training ``records`` and fit the evidence classifier on them."""
    was_training = interpreter.training
    interpreter.eval()
    need = cache_bytes(interpreter, size, copies * len(records))
    if need > CACHE_LIMIT:
        fit = CACHE_LIMIT // max(need // copies, 1)
        raise AmdError(
            f"{copies} cached copies of {len(records)} crops would take {need / 2**30:.1f} GiB; "
            f"at most {fit} fit in {CACHE_LIMIT / 2**30:.0f} GiB"
        )
    features = local_features(interpreter, records, build_transforms(size, train=True), copies, device)
    attributes = torch.as_tensor(np.stack([r.attributes for r in records] * copies), dtype=torch.float32)
    torch.manual_seed(seed)
    losses = fit_evidence(
        interpreter, features, attributes, torch.as_tensor(rates, dtype=torch.float32), epochs, lr, prior_lr,
        weight_decay, seed=seed, should_stop=should_stop, on_epoch=on_epoch,
    )  # fmt: skip
    interpreter.train(was_training)
    return losses
