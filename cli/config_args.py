"""Command-line options generated from a config dataclass, with ``--config FILE.json`` underneath.

Every field becomes ``--field-name``; a value given on the command line overrides the file, which
overrides the dataclass default. Tuple fields of two ints (sizes) are written ``256x128``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

_SENTINEL = None


def _size(text: str) -> list[int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must look like HEIGHTxWIDTH, e.g. 256x128") from None
    return [h, w]


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a yes/no value")


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    required: tuple[str, ...] = (),
    helps: dict[str, str] | None = None,
) -> None:
    """Add ``--config`` and one option per field of ``cls`` (defaults stay in the dataclass)."""
    helps = helps or {}
    hints = typing.get_type_hints(cls)
    parser.add_argument("--config", metavar="FILE.json", help="read the settings from a JSON file first")
    # The job's own fields first, the shared run settings (keyword-only) after them.
    for f in sorted(dataclasses.fields(cls), key=lambda f: bool(f.kw_only)):
        if f.name == "version":
            continue
        hint = hints[f.name]
        text = str(hint)
        default = f.default if f.default is not dataclasses.MISSING else None
        kwargs: dict[str, Any] = {"dest": f.name, "default": _SENTINEL}
        if "tuple" in text:
            kwargs.update(type=_size, metavar="HxW")
        elif hint is bool:
            kwargs.update(type=_bool, metavar="yes|no")
        elif "int" in text and "float" not in text:
            kwargs.update(type=int)
        elif "float" in text:
            kwargs.update(type=float)
        else:
            kwargs.update(type=str)
        extra = helps.get(f.name, "")
        shown = default if not isinstance(default, tuple) else "x".join(str(v) for v in default)
        kwargs["help"] = (
            f"{extra} (required)" if f.name in required else f"{extra} (default: {shown})".strip()
        )
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def config_from_args(cls: type, args: argparse.Namespace, required: tuple[str, ...] = ()) -> Any:
    """Build the config: dataclass defaults < ``--config`` file < command-line options."""
    from amd.errors import AmdError
    from amd.train.config import config_from_dict

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            values.update(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise AmdError(f"{path}: cannot read the configuration ({exc})") from None
        values.pop("version", None)
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    missing = [n for n in required if values.get(n) in (None, "")]
    if missing:
        raise AmdError(
            "missing required option(s): " + ", ".join("--" + n.replace("_", "-") for n in missing)
        )
    return config_from_dict(cls, values)


def report(result: Any) -> int:
    """Print how a training job ended; exit status 0 when it wrote its model, 3 when it was stopped."""
    if result.stopped:
        print(
            f"stopped after {result.epochs_done} epoch(s); run the same command again to resume ({result.run_dir})"
        )
        return 3
    figures = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    print(f"wrote {result.out} after {result.epochs_done} epoch(s)" + (f": {figures}" if figures else ""))
    print(f"log and resumable state: {result.run_dir}")
    return 0
