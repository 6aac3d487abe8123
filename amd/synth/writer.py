"""Write a synthetic dataset in the Market-1501 layout, with ground-truth part masks.

Output folder::

    bounding_box_train/  query/  bounding_box_test/     JPEG crops, PPPP_cCsS_FFFFFF_BB.jpg
    masks/<same folder>/<same stem>.png                 part label maps (palette PNG, index = part id)
    market_attribute.mat                                identity attributes, as the published file
    parts.json                                          part ids and the parts that show each attribute
    identities.json                                     every identity's codes, colours and body
    images.csv                                          one row per crop: split, identity, camera, view, ...
    synth.json                                          the configuration, the cameras and the counts

Train identities are 1..N, test identities N+1..N+M. Every test identity is seen by at least two
cameras with at least two crops each; one crop per (identity, camera) goes to ``query/`` and the
rest to ``bounding_box_test/``, so every query has a match from another camera in the gallery.
Distractors (identity 0000, people of no listed identity) optionally join the gallery.

The output depends only on the configuration: every crop draws from its own generator seeded by
(seed, identity, crop number).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from amd.errors import AmdError
from amd.synth import parts as P
from amd.synth.cameras import VIEWS, Camera, make_cameras
from amd.synth.identities import Identity, load_joint_table, sample_identities
from amd.synth.render import render_person

CONFIG_VERSION = 1
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
#: Files and folders this writer creates; ``overwrite`` removes exactly these.
OUTPUTS = (*SPLIT_FOLDERS.values(), "masks", "market_attribute.mat", "parts.json", "identities.json",
           "images.csv", "synth.json")  # fmt: skip

# Field orders of the published market_attribute.mat (its two structs differ); copying them makes
# the synthetic file exercise the same reading paths as the real one.
_TRAIN_FIELDS = (
    "age", "backpack", "bag", "handbag", "downblack", "downblue", "downbrown", "downgray", "downgreen",
    "downpink", "downpurple", "downwhite", "downyellow", "upblack", "upblue", "upgreen", "upgray", "uppurple",
    "upred", "upwhite", "upyellow", "clothes", "down", "up", "hair", "hat", "gender",
)  # fmt: skip
_TEST_FIELDS = (
    "age", "backpack", "bag", "handbag", "clothes", "down", "up", "hair", "hat", "gender", "upblack", "upwhite",
    "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen", "downblack", "downwhite", "downpink",
    "downpurple", "downyellow", "downgray", "downblue", "downgreen", "downbrown",
)  # fmt: skip

MAX_CAMERAS = 9  # Market-1501 names hold the camera in one digit
MAX_PID = 9999  # and the identity in four


class SynthError(AmdError):
    """A synthetic dataset cannot be written with the given settings or to the given folder."""


@dataclass(frozen=True)
class SynthConfig:
    """What to render.

    Attributes:
        train_ids: Number of training identities (pids 1..train_ids).
        test_ids: Number of test identities (the next pids).
        per_id: Crops per identity.
        cameras: Number of cameras (2..9).
        height: Crop height in pixels.
        width: Crop width in pixels.
        seed: Seed of every random choice.
        distractors: Gallery crops of identity 0 (people of no listed identity).
        lookalike_rate: Probability that an identity copies the attributes and colour words of an
            earlier one (with new shades and body).
        occlusion: Multiplies each camera's rate of foreground occluders (0 turns them off).
        masks: Write the part label maps.
        version: Version of this configuration format.
    """

    train_ids: int = 100
    test_ids: int = 100
    per_id: int = 8
    cameras: int = 6
    height: int = 128
    width: int = 64
    seed: int = 0
    distractors: int = 0
    lookalike_rate: float = 0.15
    occlusion: float = 1.0
    masks: bool = True
    version: int = CONFIG_VERSION

    def validate(self) -> None:
        """Raise :class:`SynthError` with a readable message for settings that cannot work."""
        if self.train_ids < 0 or self.test_ids < 0 or self.train_ids + self.test_ids == 0:
            raise SynthError(f"need at least one identity (train {self.train_ids}, test {self.test_ids})")
        if self.train_ids + self.test_ids > MAX_PID:
            raise SynthError(f"at most {MAX_PID} identities fit in Market-1501 file names "
                             f"(asked for {self.train_ids + self.test_ids})")  # fmt: skip
        if not 2 <= self.cameras <= MAX_CAMERAS:
            raise SynthError(
                f"cameras must be 2..{MAX_CAMERAS} (Market-1501 names hold one digit), got {self.cameras}"
            )
        if self.per_id < 1:
            raise SynthError(f"per-id must be at least 1, got {self.per_id}")
        if self.test_ids and self.per_id < 4:
            raise SynthError(
                f"per-id must be at least 4 when there are test identities (got {self.per_id}): each test "
                "identity needs a query and a gallery crop in each of two cameras"
            )
        if not (16 <= self.height <= 1024 and 8 <= self.width <= 512):
            raise SynthError(
                f"size {self.height}x{self.width} is out of range (height 16..1024, width 8..512)"
            )
        if self.distractors < 0:
            raise SynthError(f"distractors must be >= 0, got {self.distractors}")
        if not 0.0 <= self.lookalike_rate <= 1.0:
            raise SynthError(f"lookalike rate must be in [0, 1], got {self.lookalike_rate}")
        if self.occlusion < 0:
            raise SynthError(f"occlusion must be >= 0, got {self.occlusion}")

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def total_crops(self) -> int:
        return (self.train_ids + self.test_ids) * self.per_id + self.distractors


def parse_size(text: str) -> tuple[int, int]:
    """``"128x64"`` -> (128, 64), height first as in Market-1501's 128x64 crops."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise SynthError(f"size {text!r} must be HEIGHTxWIDTH, e.g. 128x64") from None
    if h <= 0 or w <= 0:
        raise SynthError(f"size {text!r} must be positive, e.g. 128x64")
    return h, w


@dataclass(frozen=True)
class PlannedCrop:
    """One crop to render: where it goes and what it shows."""

    split: str
    pid: int
    camera: int
    sequence: int
    frame: int
    box: int
    view: str
    seed: tuple[int, ...]
    identity_index: int  # index into Plan.identities, then Plan.distractors

    @property
    def name(self) -> str:
        return f"{self.pid:04d}_c{self.camera}s{self.sequence}_{self.frame:06d}_{self.box:02d}.jpg"


@dataclass(frozen=True)
class Plan:
    """Everything decided before rendering."""

    config: SynthConfig
    identities: tuple[Identity, ...]
    distractors: tuple[Identity, ...]
    cameras: tuple[Camera, ...]
    crops: tuple[PlannedCrop, ...]

    def identity(self, crop: PlannedCrop) -> Identity:
        """The person a crop shows (a distractor for pid 0)."""
        k = crop.identity_index
        return self.identities[k] if k < len(self.identities) else self.distractors[k - len(self.identities)]


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_dataset` wrote."""

    out_dir: str
    images: dict[str, int]
    identities: dict[str, int]
    cameras: int
    seconds: float
    cancelled: bool = False
    written: int = 0
    per_view: dict[str, int] = field(default_factory=dict)
    occluded_crops: int = 0

    @property
    def crops_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "crops_per_second": round(self.crops_per_second, 1)}


def _allocate(n_images: int, n_cams_total: int, min_each: int, rng: np.random.Generator) -> dict[int, int]:
    """Spread an identity's crops over cameras: how many per camera, at least ``min_each`` each."""
    most = min(n_cams_total, n_images // min_each)
    m = int(rng.integers(min(2, most), most + 1)) if most >= 2 else most
    cams = sorted(int(c) + 1 for c in rng.choice(n_cams_total, size=m, replace=False))
    counts = {c: min_each for c in cams}
    for c in rng.choice(cams, size=n_images - min_each * m):
        counts[int(c)] += 1
    return counts


def _track(
    split: str,
    pid: int,
    cam: Camera,
    count: int,
    rng: np.random.Generator,
    seed: int,
    index: int,
    first: int,
    box: int = 1,
) -> list[PlannedCrop]:
    """``count`` crops of one identity passing one camera: one sequence, increasing frames."""
    seq = int(rng.integers(1, 7))
    steps = rng.integers(3, 40, size=count)
    start = int(rng.integers(0, 999_999 - int(steps.sum())))
    frames = start + np.cumsum(steps)
    view = VIEWS[int(rng.choice(4, p=cam.view_p))]
    out = []
    for k in range(count):
        # Someone walking past a camera mostly keeps their direction; sometimes they turn.
        if k and rng.random() < 0.35:
            view = VIEWS[int(rng.choice(4, p=cam.view_p))]
        out.append(
            PlannedCrop(split, pid, cam.cid, seq, int(frames[k]), box, view, (seed, 4, pid, first + k), index)
        )
    return out


def plan_dataset(cfg: SynthConfig) -> Plan:
    """Draw identities and cameras and decide every crop (split, camera, name, view, generator seed)."""
    cfg.validate()
    n = cfg.train_ids + cfg.test_ids
    identities = sample_identities(n, np.random.default_rng([cfg.seed, 1]), lookalike_rate=cfg.lookalike_rate)
    cameras = make_cameras(cfg.cameras, cfg.size, np.random.default_rng([cfg.seed, 2]))
    if cfg.occlusion != 1.0:
        cameras = [_scaled_occlusion(c, cfg.occlusion) for c in cameras]
    rng = np.random.default_rng([cfg.seed, 3])
    crops: list[PlannedCrop] = []
    for i, ident in enumerate(identities):
        test = i >= cfg.train_ids
        counts = _allocate(cfg.per_id, cfg.cameras, 2 if test else 1, rng)
        done = 0
        for cid, count in counts.items():
            split = "test" if test else "train"
            track = _track(split, ident.pid, cameras[cid - 1], count, rng, cfg.seed, i, done)
            done += count
            if test:
                q = int(rng.integers(count))
                track = [replace(c, split="query" if k == q else "gallery") for k, c in enumerate(track)]
            crops.extend(track)
    # Distractors all have pid 0; each is its own person, drawn from the same distribution.
    drawn = (
        sample_identities(cfg.distractors, np.random.default_rng([cfg.seed, 5])) if cfg.distractors else []
    )
    distractors = [replace(d, pid=0) for d in drawn]
    for j in range(cfg.distractors):
        cam = cameras[int(rng.integers(cfg.cameras))]
        c = _track("gallery", 0, cam, 1, rng, cfg.seed, n + j, 0, box=int(rng.integers(0, 10)))[0]
        crops.append(replace(c, seed=(cfg.seed, 5, j)))
    _dedupe_names(crops)
    return Plan(cfg, tuple(identities), tuple(distractors), tuple(cameras), tuple(crops))


def _dedupe_names(crops: list[PlannedCrop]) -> None:
    """Bump the box number of a crop whose name is already taken (only distractors can collide)."""
    seen: set[str] = set()
    for i, c in enumerate(crops):
        while c.name in seen:
            c = replace(c, box=(c.box + 1) % 100)
        crops[i] = c
        seen.add(c.name)


def _scaled_occlusion(cam: Camera, factor: float) -> Camera:
    return replace(cam, occlusion_rate=min(1.0, cam.occlusion_rate * factor))


def check_out_dir(out_dir: str | Path, overwrite: bool = False) -> None:
    """Raise :class:`SynthError` if ``out_dir`` cannot receive a dataset (a file, or not empty without overwrite)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out}: exists and is not a folder")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise SynthError(f"{out}: folder is not empty (choose an empty or new folder, or pass --overwrite "
                         "to replace a synthetic dataset written there)")  # fmt: skip


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    check_out_dir(out, overwrite)
    if out.is_dir():
        for name in OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    for folder in SPLIT_FOLDERS.values():
        (out / folder).mkdir(parents=True, exist_ok=True)


def _mat_struct(identities: list[Identity], order: tuple[str, ...]) -> dict:
    struct: dict[str, np.ndarray] = {}
    for name in order:
        struct[name] = np.array([[ident.codes[name] for ident in identities]], dtype=np.uint8)
    index = np.empty((1, len(identities)), dtype=object)
    for k, ident in enumerate(identities):
        index[0, k] = f"{ident.pid:04d}"
    struct["image_index"] = index
    return struct


def write_attribute_file(path: str | Path, train: list[Identity], test: list[Identity]) -> None:
    """Write ``market_attribute.mat`` as the published file is laid out.

    A struct ``market_attribute`` with fields ``train`` and ``test``; each is a 1x1 struct of
    uint8 (1, N) code arrays, one per attribute (27, ``age`` included), and ``image_index``, a
    (1, N) cell of 4-character identity strings.
    """
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(
        buf,
        {
            "market_attribute": {
                "train": _mat_struct(train, _TRAIN_FIELDS),
                "test": _mat_struct(test, _TEST_FIELDS),
            }
        },
        do_compression=True,
    )
    # The 116-byte text header holds the time of writing; a fixed text keeps the file a function of the seed.
    data = bytearray(buf.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, synthetic pedestrians (amd.synth)".ljust(116, b" ")
    Path(path).write_bytes(bytes(data))


def _save_mask(labels: np.ndarray, path: Path, palette: list[int]) -> None:
    img = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    img.putpalette(palette)
    img.save(path, optimize=False, compress_level=1)


def write_dataset(
    out_dir: str | Path,
    cfg: SynthConfig,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    overwrite: bool = False,
) -> SynthSummary:
    """Render and write a synthetic dataset (see the module docstring for the layout).

    Args:
        out_dir: Output folder; created if missing, must be empty unless ``overwrite``.
        cfg: What to render.
        on_progress: Called as ``on_progress(done, total)`` after each crop.
        should_stop: Polled before each crop; when it returns True the job stops, the crops
            written so far stay, and no attribute file or manifest is written (the folder is then
            not a dataset that loaders accept).
        overwrite: Replace this writer's outputs in a non-empty folder (other files are kept).

    Returns:
        Counts and timing.

    Raises:
        SynthError: Bad settings or an unusable folder; the message names the problem.
    """
    cfg.validate()
    out = Path(out_dir)
    check_out_dir(out, overwrite)
    plan = plan_dataset(cfg)
    try:
        _prepare_out_dir(out, overwrite)
        if cfg.masks:
            for folder in SPLIT_FOLDERS.values():
                (out / "masks" / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{out}: cannot prepare the output folder ({exc})") from None
    palette = P.flat_palette()
    total = len(plan.crops)
    rows = []
    views = dict.fromkeys(VIEWS, 0)
    occluded = 0
    start = time.perf_counter()
    cancelled = False
    for done, crop in enumerate(plan.crops):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        ident = plan.identity(crop)
        cam = plan.cameras[crop.camera - 1]
        r = render_person(ident, cam, crop.view, np.random.default_rng(list(crop.seed)), cfg.size)
        folder = SPLIT_FOLDERS[crop.split]
        rel = f"{folder}/{crop.name}"
        try:
            Image.fromarray(r.image).save(out / rel, quality=cam.jpeg_quality)
            mask_rel = f"masks/{folder}/{crop.name[:-4]}.png" if cfg.masks else ""
            if cfg.masks:
                _save_mask(r.labels, out / mask_rel, palette)
        except OSError as exc:
            raise SynthError(f"{out / rel}: cannot write ({exc})") from None
        views[crop.view] += 1
        occluded += r.occluder is not None
        rows.append({
            "path": rel, "mask": mask_rel, "split": crop.split, "pid": crop.pid, "camera": crop.camera,
            "sequence": crop.sequence, "frame": crop.frame, "view": crop.view,
            "occluder": r.occluder or "", "occluded": round(r.occluded, 4), "scale": round(r.scale, 4),
        })  # fmt: skip
        if on_progress is not None:
            on_progress(done + 1, total)
    seconds = time.perf_counter() - start
    counts = {s: sum(1 for row in rows if row["split"] == s) for s in ("train", "query", "gallery")}
    summary = SynthSummary(
        out_dir=str(out), images=counts, identities={"train": cfg.train_ids, "test": cfg.test_ids}, cameras=cfg.cameras,
        seconds=seconds, cancelled=cancelled, written=len(rows), per_view=views, occluded_crops=occluded,
    )  # fmt: skip
    if cancelled:
        return summary
    _write_manifests(out, plan, rows, summary)
    return summary


def _write_manifests(out: Path, plan: Plan, rows: list[dict], summary: SynthSummary) -> None:
    cfg = plan.config
    train = list(plan.identities[: cfg.train_ids])
    test = list(plan.identities[cfg.train_ids :])
    write_attribute_file(out / "market_attribute.mat", train, test)
    names = load_joint_table().fields
    (out / "parts.json").write_text(json.dumps(P.manifest(names), indent=1) + "\n", encoding="utf-8")
    idents = [{"split": "train", **i.to_dict()} for i in train] + [
        {"split": "test", **i.to_dict()} for i in test
    ]
    (out / "identities.json").write_text(json.dumps(idents, indent=1) + "\n", encoding="utf-8")
    with open(out / "images.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["path"])
        writer.writeheader()
        writer.writerows(rows)
    meta = {
        "config": asdict(cfg),
        "cameras": [c.describe() for c in plan.cameras],
        "summary": {
            k: v for k, v in summary.to_dict().items() if k not in ("seconds", "crops_per_second", "out_dir")
        },
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def read_images_csv(out_dir: str | Path) -> list[dict]:
    """Rows of ``images.csv`` with numbers converted."""
    path = Path(out_dir) / "images.csv"
    if not path.is_file():
        raise SynthError(f"{path}: not found (is {out_dir} a complete synthetic dataset?)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("pid", "camera", "sequence", "frame"):
            r[k] = int(r[k])
        for k in ("occluded", "scale"):
            r[k] = float(r[k])
    return rows
