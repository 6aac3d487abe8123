"""``torch.load(..., weights_only=True)`` with its failures told apart by the file's first bytes.

PyTorch's own message for a file that ``weights_only`` refuses suggests loading it again with
``weights_only=False``, which runs any code the file holds. The loaders of pretrained weights and of
checkpoints word their own messages from the kind of failure found here instead.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

#: First bytes of a PyTorch archive (a zip file) and of an old-style pickle file.
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"


class LoadFailure(Exception):
    """``torch.load`` failed on a file.

    Attributes:
        kind: ``"objects"``: a complete PyTorch archive whose pickle names classes or functions (refused by
            ``weights_only``); ``"pickle"``: an old-style pickle file that cannot be loaded safely;
            ``"corrupt"``: a PyTorch archive that is truncated or damaged; ``"foreign"``: not a PyTorch file;
            ``"other"``: any other failure (a damaged or hostile file may fail in any way).
        cause: The exception ``torch.load`` raised.
    """

    def __init__(self, kind: str, cause: BaseException) -> None:
        super().__init__(kind)
        self.kind, self.cause = kind, cause


def load_weights_only(path: str | Path, head: bytes) -> object:
    """The object stored in ``path``, loaded on the CPU with ``weights_only=True``.

    Args:
        path: The file.
        head: Its first 4 bytes (the caller has read them, to word its own message for an empty file).

    Raises:
        LoadFailure: The file could not be loaded; ``kind`` says why.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        kind = "objects" if head == ZIP_MAGIC else "pickle" if head[:1] == PICKLE_PROTO else "foreign"
        raise LoadFailure(kind, exc) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LoadFailure("corrupt" if head == ZIP_MAGIC else "foreign", exc) from None
    except Exception as exc:  # a damaged or hostile file may fail in any way
        raise LoadFailure("other", exc) from None
