"""``main.py explain``: explain the target distance between two crops, attribute by attribute."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.checks import DEVICE_CHOICES, device_arg

if TYPE_CHECKING:
    from amd.explain import Explanation

NAME = "explain"
HELP = "Explain the distance between two crops: each attribute's share, as JSON, maps and a picture."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image_a", metavar="IMG_A", help="first crop")
    parser.add_argument("image_b", metavar="IMG_B", help="second crop")
    parser.add_argument("--target", required=True, metavar="FILE", help="target model file")
    parser.add_argument("--interpreter", required=True, metavar="FILE", help="interpreter distilled from it")
    parser.add_argument(
        "--json", required=True, metavar="OUT.json",
        help='write {"distance", "gap", "attributes": [{"name", "label", "component", "share"}, ...]}',
    )  # fmt: skip
    parser.add_argument(
        "--maps", metavar="OUT.npz", help="write maps_a and maps_b (M, H, W) at each crop's size, schema order"
    )
    parser.add_argument(
        "--overlay", metavar="OUT.png", help="write both crops with the top-3 attribute regions and a share chart"
    )
    parser.add_argument("--device", type=device_arg, default="cpu", help=f"{DEVICE_CHOICES} (default cpu)")


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    """The command's JSON: the distance, the relative gap and every attribute sorted by share."""
    out = {"distance": explanation.distance, "gap": explanation.gap, "attributes": []}
    for i in explanation.order():
        item = {
            "name": explanation.names[i],
            "label": explanation.labels[i],
            "component": float(explanation.components[i]),
            "share": float(explanation.shares[i]),
        }
        if explanation.predicted_a is not None and explanation.predicted_b is not None:
            item["predicted_a"] = float(explanation.predicted_a[i])
            item["predicted_b"] = float(explanation.predicted_b[i])
        out["attributes"].append(item)
    return out


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it (no half-written outputs)."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _npz_writer(explanation: Explanation) -> Callable[[Path], None]:
    import numpy as np

    def write(path: Path) -> None:
        # A file object keeps numpy from appending ".npz" to a name that lacks it.
        with open(path, "wb") as fh:
            np.savez_compressed(fh, maps_a=explanation.maps_a, maps_b=explanation.maps_b)

    return write


def run(args: argparse.Namespace) -> int:
    import json

    from amd.explain import Explainer
    from cli.checks import check_outputs, resolve_device

    check_outputs((args.json, "--json"), (args.maps, "--maps"), (args.overlay, "--overlay"))
    explainer = Explainer.from_files(args.target, args.interpreter, device=resolve_device(args.device))
    e = explainer.explain(args.image_a, args.image_b)
    data = explanation_json(e)
    write_atomically(args.json, lambda p: p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))
    if args.maps:
        write_atomically(args.maps, _npz_writer(e))
    if args.overlay:
        from amd.figures import render_pair_figure

        figure = render_pair_figure(e, args.image_a, args.image_b)
        write_atomically(args.overlay, lambda p: figure.save(p, format="PNG"))
    top = ", ".join(f"{a['label']} {100 * a['share']:.1f} %" for a in data["attributes"][:3])
    print(f"distance {e.distance:.4f} (gap {100 * e.gap:+.2f} %); largest shares: {top}")
    return 0
