"""Derive the bundled attribute resources from the published attribute annotation files.

Writes, from ``market_attribute.mat`` and ``duke_attribute.mat``:

- ``resources/schemas/market1501.json`` and ``resources/schemas/duke.json``: the attribute
  schemas (alphabetical order, readable labels, groups, positive rates among training identities);
- ``resources/synth/market_joint.json``: every distinct identity-level attribute combination of
  Market-1501 (train and test, age included) with its count, from which the synthetic renderer
  draws identities, so that the application never reads the annotation files at run time.

Usage: ``python scripts/derive_resources.py ANNOTATION_DIR``
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import scipy.io as sio

ROOT = Path(__file__).resolve().parent.parent

COLOURS = {
    "black": "black", "blue": "blue", "brown": "brown", "gray": "grey", "green": "green",
    "pink": "pink", "purple": "purple", "red": "red", "white": "white", "yellow": "yellow",
}  # fmt: skip

# name -> (label of +1, label of -1, group). Codes 1/2 of the annotation files map to -1/+1.
FIXED = {
    "backpack": ("backpack", "no backpack", "carried"),
    "bag": ("shoulder bag", "no shoulder bag", "carried"),
    "handbag": ("handbag", "no handbag", "carried"),
    "hat": ("hat", "no hat", "clothing"),
    "boots": ("boots", "no boots", "clothing"),
    "gender": ("female", "male", "person"),
    "hair": ("long hair", "short hair", "person"),
    "up": ("short sleeves", "long sleeves", "clothing"),
    "down": ("short lower-body clothing", "long lower-body clothing", "clothing"),
    "clothes": ("pants", "dress or skirt", "clothing"),
    "shoes": ("light shoes", "dark shoes", "clothing"),
    "top": ("long upper-body clothing", "short upper-body clothing", "clothing"),
}


def describe(name: str) -> tuple[str, str, str]:
    if name in FIXED:
        return FIXED[name]
    for prefix, word, group in (("up", "upper", "upper colour"), ("down", "lower", "lower colour")):
        colour = name[len(prefix) :]
        if name.startswith(prefix) and colour in COLOURS:
            return f"{word}: {COLOURS[colour]}", f"{word}: not {COLOURS[colour]}", group
    raise SystemExit(f"no label for attribute {name!r}")


def split_table(mat_path: Path, key: str, split: str) -> dict[str, list[int]]:
    struct = sio.loadmat(mat_path)[key][0, 0][split][0, 0]
    return {n: [int(v) for v in struct[n].ravel()] for n in struct.dtype.names if n != "image_index"}


def write_schema(name: str, mat_path: Path, key: str) -> None:
    train = split_table(mat_path, key, "train")
    names = sorted(n for n in train if n != "age")
    attrs = []
    for n in names:
        label, negative, group = describe(n)
        codes = train[n]
        rate = sum(c == 2 for c in codes) / len(codes)
        attrs.append({"name": n, "label": label, "negative": negative, "group": group,
                      "positive_rate": round(rate, 4)})  # fmt: skip
    out = ROOT / "resources" / "schemas" / f"{name}.json"
    out.write_text(json.dumps({"name": name, "version": 1, "attributes": attrs}, indent=2) + "\n")
    print(f"wrote {out} ({len(attrs)} attributes)")


def write_joint(mat_path: Path) -> None:
    counts: Counter[tuple[int, ...]] = Counter()
    fields: list[str] | None = None
    for split in ("train", "test"):
        table = split_table(mat_path, "market_attribute", split)
        fields = fields or sorted(table)
        n = len(next(iter(table.values())))
        for i in range(n):
            counts[tuple(table[f][i] for f in fields)] += 1
    rows = [{"codes": list(k), "count": c} for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    out = ROOT / "resources" / "synth" / "market_joint.json"
    doc = {
        "description": "Distinct identity-level attribute combinations of Market-1501 (train + test) "
        "with their counts; codes as in market_attribute.mat (1 = no / first option, 2 = yes / second).",
        "fields": fields,
        "rows": rows,
    }
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({len(rows)} combinations, {sum(counts.values())} identities)")


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
    write_schema("market1501", src / "market_attribute.mat", "market_attribute")
    write_schema("duke", src / "duke_attribute.mat", "duke_attribute")
    write_joint(src / "market_attribute.mat")


if __name__ == "__main__":
    main()
