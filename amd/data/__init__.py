"""Datasets: records, loaders for Market-1501, DukeMTMC-reID and generic CSV layouts, samplers, transforms."""

from __future__ import annotations

from amd.data.records import Dataset, Record, relabel

__all__ = ["Dataset", "Record", "relabel"]
