"""Exceptions that carry a message meant for the user.

Every error the engine raises on bad input derives from :class:`AmdError`; the command
line prints its message without a traceback, and the GUI shows it in a dialog.
"""

from __future__ import annotations


class AmdError(Exception):
    """Base class of the errors caused by the user's input rather than by a bug."""


class SchemaError(AmdError):
    """An attribute schema is malformed or does not match the data."""


class DatasetError(AmdError):
    """A dataset folder, file name or annotation file cannot be used."""
