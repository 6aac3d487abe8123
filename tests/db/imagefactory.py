"""Small synthetic images for the store tests, made in memory (no data files needed)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def person_image(seed: int, size: tuple[int, int] = (64, 128), mode: str = "RGB") -> Image.Image:
    """A small synthetic person-like crop: two coloured blocks on noise, unique per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    arr[h // 8 : h // 2, w // 4 : 3 * w // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    arr[h // 2 : 7 * h // 8, w // 4 : 3 * w // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    img = Image.fromarray(arr, "RGB")
    return img if mode == "RGB" else img.convert(mode)


def image_bytes(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write_jpegs(folder: Path, n: int, start: int = 0, size: tuple[int, int] = (64, 128)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        p = folder / f"crop_{i:05d}.jpg"
        p.write_bytes(image_bytes(person_image(i, size), "JPEG", quality=90))
        paths.append(p)
    return paths


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class HistogramEmbedder:
    """A deterministic stand-in for a ReID model: colour histograms of the upper and lower halves.

    It implements the store's embedder protocol (name, model_hash, dim, embed) without torch, so
    the same image always gets the same vector and images of one synthetic person are close.
    """

    def __init__(self, bins: int = 8, name: str = "histogram") -> None:
        self.bins = bins
        self.name = name
        self.dim = 2 * 3 * bins
        self.model_hash = hashlib.sha256(f"{name}:{bins}".encode()).hexdigest()
        self.calls = 0

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for n, img in enumerate(images):
            assert img.mode == "RGB"
            arr = np.asarray(img.resize((16, 32)), dtype=np.int64)
            feats = []
            for half in (arr[:16], arr[16:]):
                for c in range(3):
                    hist = np.bincount(half[..., c].ravel() * self.bins // 256, minlength=self.bins)
                    feats.append(hist / half[..., c].size)
            out[n] = np.concatenate(feats)
        return out
