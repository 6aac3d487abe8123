"""Case-file fixtures: a workspace with two crops filed as a case with a hand-made explanation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cases.snapshot import explanation_snapshot
from db.workspace import Workspace
from tests.db.imagefactory import write_jpegs

NAMES = ("gender", "hair", "backpack", "upper_red", "lower_blue")
LABELS = ("female", "long hair", "backpack", "upper: red", "lower: blue")
#: Attribute distances d_m of the hand-made explanation; components are d_m / M.
ATTRIBUTE_DISTANCES = np.array([0.8, 2.4, 0.4, 1.6, 0.8])


@dataclass(frozen=True)
class FakeExplanation:
    """The fields of ``amd.explain.Explanation`` that a snapshot reads (no model needed)."""

    names: tuple[str, ...]
    labels: tuple[str, ...]
    distance: float
    attribute_distances: np.ndarray
    components: np.ndarray
    shares: np.ndarray
    maps_a: np.ndarray
    maps_b: np.ndarray
    predicted_a: np.ndarray | None
    predicted_b: np.ndarray | None
    gap: float


def fake_explanation(
    size_a: tuple[int, int] = (128, 64), size_b: tuple[int, int] = (128, 64)
) -> FakeExplanation:
    """Five attributes with smooth maps: attribute m is a bump at row (m + 1) / 6 of the crop."""
    d = ATTRIBUTE_DISTANCES
    m = len(d)
    components = d / m
    distance = 1.25

    def maps(size: tuple[int, int], shift: float) -> np.ndarray:
        h, w = size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        out = [
            np.exp(-(((yy / h - (k + 1) / (m + 1) - shift) / 0.12) ** 2) - ((xx / w - 0.5) / 0.3) ** 2)
            + 0.1 * k
            for k in range(m)
        ]
        return np.stack(out).astype(np.float32)

    return FakeExplanation(
        names=NAMES,
        labels=LABELS,
        distance=distance,
        attribute_distances=d,
        components=components,
        shares=d / d.sum(),
        maps_a=maps(size_a, 0.0),
        maps_b=maps(size_b, 0.05),
        predicted_a=np.array([0.9, 0.8, 0.1, 0.7, 0.3], dtype=np.float32),
        predicted_b=np.array([0.8, 0.2, 0.2, 0.1, 0.4], dtype=np.float32),
        gap=(float(components.sum()) - distance) / distance,
    )


@dataclass(frozen=True)
class CaseSetup:
    ws: Workspace
    case_id: int
    item_ids: tuple[int, ...]
    crop_ids: tuple[int, ...]


def build_case(ws: Workspace, folder: Path, notes: str = "same red jacket, different bag") -> CaseSetup:
    """Four crops, a case with two compared pairs, verdicts, notes and three annotations."""
    from db.ingest import IngestItem, ingest

    paths = write_jpegs(folder, 4)
    summary = ingest(
        ws, [IngestItem(str(p), camera=f"c{i % 2 + 1}", identity=f"p{i // 2}") for i, p in enumerate(paths)]
    )
    ids = summary.crop_ids
    target = ws.models.register("target", "demo target", "ab" * 32, architecture="mobilenetv2", dim=128)
    interp = ws.models.register(
        "interpreter",
        "demo interpreter",
        "cd" * 32,
        architecture="localising",
        attribute_schema={"name": "market1501"},
    )
    case = ws.cases.create(
        "Robbery <b>12</b>", "Platform 3, 14:05", reference="2026/0413", analyst="A. Analyst"
    )
    first = ws.cases.add_item(
        case.id, ids[0], ids[1], 1.25, explanation_snapshot(fake_explanation()), target.id, interp.id
    )
    ws.cases.set_verdict(first.id, "match", notes=notes)
    ws.cases.add_annotation(first.id, "query", "rect", {"x": 16, "y": 16, "w": 32, "h": 48}, label="jacket")
    ws.cases.add_annotation(
        first.id, "gallery", "arrow", {"x1": 5, "y1": 5, "x2": 30, "y2": 60}, color="#00ff00"
    )
    ws.cases.add_annotation(first.id, "gallery", "text", {"x": 2, "y": 100}, label="bag <script>")
    second = ws.cases.add_item(
        case.id, ids[2], ids[3], 0.9, explanation_snapshot(fake_explanation()), target.id, interp.id
    )
    ws.cases.set_verdict(second.id, "no_match", notes="different shoes")
    return CaseSetup(ws, case.id, (first.id, second.id), tuple(ids))


@pytest.fixture()
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path / "ws", actor="tester")
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture()
def filed(workspace: Workspace, tmp_path: Path) -> CaseSetup:
    return build_case(workspace, tmp_path / "images")
