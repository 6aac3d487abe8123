"""Command-line options generated from a config dataclass, with ``--config FILE.json`` underneath.

Every field becomes ``--field-name``; a value given on the command line overrides the file, which
overrides the dataclass default. Tuple fields of two ints (sizes) are written ``256x128``. Whichever way
a value comes, its type and range are checked (:func:`amd.train.config.check_config`), the device is
checked to exist and the output paths to be writable before the job starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

from cli.checks import device_arg, parse_size

_SENTINEL = None


def _size(text: str) -> list[int]:
    return list(parse_size(text))


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
        elif f.name == "device":
            kwargs.update(type=device_arg)
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
    """Build the config: dataclass defaults < ``--config`` file < command-line options.

    Raises:
        AmdError: The file cannot be read, a required option is missing, or a value is of the wrong type
            or out of range; the message names the option (or the file and its key) and what it accepts.
    """
    from amd.errors import AmdError
    from amd.train.config import ConfigValueError, check_config, config_from_dict

    values: dict[str, Any] = {}
    path = Path(args.config) if getattr(args, "config", None) else None
    if path is not None:
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AmdError(f"{path}: cannot read the configuration ({exc})") from None
        if not isinstance(loaded, dict):
            raise AmdError(f"{path}: the configuration must be a JSON object of settings")
        values.update(loaded)
        values.pop("version", None)
    given: set[str] = set()
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = value
            given.add(f.name)
    missing = [n for n in required if values.get(n) in (None, "")]
    if missing:
        raise AmdError(
            "missing required option(s): " + ", ".join("--" + n.replace("_", "-") for n in missing)
        )
    try:
        cfg = config_from_dict(cls, values)
        check_config(cfg)
    except ConfigValueError as exc:
        if exc.key in given or path is None:
            raise AmdError(f"--{exc.key.replace('_', '-')} {exc.problem}") from None
        raise AmdError(f"{path}: {exc}") from None
    except AmdError as exc:  # an unknown key, which only a file can bring
        raise AmdError(f"{path}: {exc}" if path is not None else str(exc)) from None
    return cfg


def check_run(cfg: Any) -> None:
    """Refuse, before any data is read, a device that this machine lacks and output paths that cannot
    be written (``out`` a folder, a run folder that is a file, a folder without write permission).

    Raises:
        AmdError: What is wrong, naming the option.
    """
    from cli.checks import check_output_file, check_output_folder, resolve_device

    resolve_device(cfg.device)
    check_output_file(cfg.out, "--out")
    check_output_folder(cfg.resolved_run_dir(), "--run-dir" if cfg.run_dir else "the run folder")


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
