"""Errors the store raises on bad input or an unusable workspace.

They carry a message meant for the user: the command line prints it without a traceback and
the GUI shows it in a dialog. This module imports nothing, so that any layer can catch them.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the errors caused by the user's input or the workspace, not by a bug."""


class WorkspaceError(StoreError):
    """A workspace folder or database cannot be opened or created."""


class WorkspaceBusyError(StoreError):
    """Another program holds the workspace's database for writing longer than the busy timeout."""


class NotFoundError(StoreError):
    """A crop, identity, model or case named by the user does not exist."""


class ImageRefused(StoreError):
    """An image cannot be imported; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuditViolation(StoreError):
    """Something tried to change or delete an audit event."""
