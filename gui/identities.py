"""Identities: the list with crop counts, and undoable changes (assign, merge, split, rename, delete).

Changes run on one writer thread, in the order they were made, so that an undo always runs after
the change it undoes; the command keeps what the change replaced (filled in on the writer thread,
read there again by the undo).

An identity that a change leaves without crops (all its crops assigned elsewhere, merged away or split
off, or created by the change and emptied by its undo) is deleted with the change, unless the command
is told to keep it; the undo brings it back under its old id and name.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QUndoCommand
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cli import workbench as wb
from gui.qt_util import FlowLayout
from gui.workers import Job, JobRunner, guarded


class StoreWriter(QObject):
    """Runs store changes ``fn(ws, *args)`` one at a time, in order, on a worker thread.

    Signals:
        written(): a change finished (views re-read what they show).
        failed(str): a change failed; the message is for the user.
    """

    written = Signal()
    failed = Signal(str)

    def __init__(self, ws_of: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ws_of = ws_of
        self.runner = JobRunner(self, max_threads=1)
        self._serial = itertools.count()

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None) -> Job:
        ws = self.ws_of()
        job = Job(fn, ws, *args, name=getattr(fn, "__name__", "change"))
        if on_done is not None:
            job.signals.succeeded.connect(guarded(self, on_done))
        job.signals.succeeded.connect(guarded(self, lambda _r: self.written.emit()))
        job.signals.failed.connect(guarded(self, self.failed.emit))
        # Every change gets its own key: a later change must never cancel an earlier one.
        self.runner.start(f"write-{next(self._serial)}", job)
        return job

    def wait(self, timeout_ms: int = 5000) -> bool:
        return self.runner.pool.waitForDone(timeout_ms)


class _StoreCommand(QUndoCommand):
    def __init__(self, writer: StoreWriter, text: str) -> None:
        super().__init__(text)
        self.writer = writer
        self.state: dict[str, Any] = {}


def _undo_reassignment(ws: Any, state: dict[str, Any]) -> dict[int, int]:
    # The emptied identities come back first, so that their crops have somewhere to return to (under a
    # new id if theirs was taken meanwhile); an identity the change created goes once its crops are back.
    moved = wb.undelete(ws, state.pop("deleted", []))
    previous = state.get("previous", {})
    wb.restore(ws, {crop: moved.get(old, old) if old is not None else None for crop, old in previous.items()})
    created = state.pop("created", None)
    if created is not None:
        wb.drop_emptied(ws, [created])
    return moved


class AssignCommand(_StoreCommand):
    """Put crops under the identity called ``name`` (created when new), or none (``name`` None).

    Args:
        writer: Runs the change.
        crop_ids: The crops.
        name: The identity's name, or ``None`` to unlabel the crops.
        keep_empty: Keep identities that the change leaves without crops (default: delete them).
    """

    def __init__(
        self, writer: StoreWriter, crop_ids: Sequence[int], name: str | None, keep_empty: bool = False
    ) -> None:
        what = f"{len(crop_ids)} crop{'s' * (len(crop_ids) != 1)}"
        super().__init__(writer, f"assign {what} to {name}" if name else f"unlabel {what}")
        self.crop_ids, self.name, self.keep_empty = list(crop_ids), name, keep_empty

    def redo(self) -> None:
        def change(ws: Any, state: dict[str, Any]) -> None:
            identity = None
            if self.name:
                existing = ws.identities.by_name(self.name.strip())
                identity = existing.id if existing else wb.identity_named(ws, self.name).id
                state["created"] = None if existing else identity
            state["previous"] = wb.assign(ws, self.crop_ids, identity)
            if not self.keep_empty:
                state["deleted"] = wb.drop_emptied(ws, set(state["previous"].values()) - {identity})

        self.writer.submit(change, self.state)

    def undo(self) -> None:
        self.writer.submit(_undo_reassignment, self.state)


class MergeCommand(_StoreCommand):
    """Move every crop of one identity to another; the emptied one is deleted unless ``keep_empty``."""

    def __init__(self, writer: StoreWriter, source: Any, into: Any, keep_empty: bool = False) -> None:
        super().__init__(writer, f"merge {source.name} into {into.name}")
        self.source_id, self.into_id, self.keep_empty = source.id, into.id, keep_empty

    def redo(self) -> None:
        def change(ws: Any, state: dict[str, Any]) -> None:
            source = state.get("source", self.source_id)
            state["previous"] = wb.merge(ws, source, self.into_id)
            if not self.keep_empty:
                state["deleted"] = wb.drop_emptied(ws, [source])

        self.writer.submit(change, self.state)

    def undo(self) -> None:
        def change(ws: Any, state: dict[str, Any]) -> None:
            source = state.get("source", self.source_id)
            state["source"] = _undo_reassignment(ws, state).get(source, source)

        self.writer.submit(change, self.state)


class DeleteCommand(_StoreCommand):
    """Delete identities; their crops become unlabelled. The undo restores both."""

    def __init__(self, writer: StoreWriter, identities: Sequence[Any]) -> None:
        names = ", ".join(i.name for i in identities[:3]) + (" ..." if len(identities) > 3 else "")
        super().__init__(writer, f"delete {names}")
        self.identity_ids = [i.id for i in identities]

    def redo(self) -> None:
        def change(ws: Any, state: dict[str, Any]) -> list[Any]:
            # Filled one by one: when a later deletion fails, the undo still restores the earlier ones.
            deleted = state["deleted"] = []
            for identity_id in state.setdefault("ids", list(self.identity_ids)):
                deleted.append(wb.delete_identity(ws, identity_id))
            return deleted

        self.writer.submit(change, self.state)

    def undo(self) -> None:
        def change(ws: Any, state: dict[str, Any]) -> None:
            moved = wb.undelete(ws, state.pop("deleted", []))
            # A redo deletes them under the ids they came back with.
            state["ids"] = [moved.get(i, i) for i in state.get("ids", self.identity_ids)]

        self.writer.submit(change, self.state)


class RenameCommand(_StoreCommand):
    def __init__(self, writer: StoreWriter, identity: Any, new_name: str) -> None:
        super().__init__(writer, f"rename {identity.name} to {new_name}")
        self.identity_id, self.old, self.new = identity.id, identity.name, new_name

    def redo(self) -> None:
        self.writer.submit(lambda ws: ws.identities.rename(self.identity_id, self.new))

    def undo(self) -> None:
        self.writer.submit(lambda ws: ws.identities.rename(self.identity_id, self.old))


def list_identities(ws: Any) -> list[Any]:
    """Every identity with its crop count (runs on a worker)."""
    return ws.identities.list()


class IdentitiesWidget(QWidget):
    """The workspace's identities with their crop counts and the actions on them.

    Signals:
        identity_activated(int): show this identity's crops in the gallery.
        new_requested(), assign_requested(), merge_requested(), split_requested(), rename_requested(),
        unlabel_requested(), delete_requested(): the buttons (the window owns the dialogs and the undo
        stack).
    """

    identity_activated = Signal(int)
    new_requested = Signal()
    assign_requested = Signal()
    merge_requested = Signal()
    split_requested = Signal()
    rename_requested = Signal()
    unlabel_requested = Signal()
    delete_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.itemDoubleClicked.connect(
            lambda item: self.identity_activated.emit(int(item.data(Qt.ItemDataRole.UserRole)))
        )
        # The buttons are a grid of as many columns as the dock's width allows (one on a narrow dock).
        self.button_bar = QWidget()
        buttons = FlowLayout(self.button_bar, uniform=True)
        buttons.setContentsMargins(0, 0, 0, 0)
        specs = (
            ("New from selection", self.new_requested, "Put the selected crops under a new identity"),
            ("Assign selection", self.assign_requested, "Put the selected crops under the chosen identity"),
            ("Merge", self.merge_requested, "Merge the selected identities into the first one"),
            ("Split off", self.split_requested, "Move the selected crops to a new identity"),
            ("Rename", self.rename_requested, "Rename the chosen identity"),
            ("Unlabel", self.unlabel_requested, "Remove the identity of the selected crops"),
            (
                "Delete",
                self.delete_requested,
                "Delete the selected identities (their crops become unlabelled)",
            ),
        )
        for text, signal, tip in specs:
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(signal)
            buttons.addWidget(button)
        # Del in the list deletes the selected identities (undoable, like the button).
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self.delete_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.button_bar)
        self.identities: list[Any] = []

    def set_identities(self, identities: Sequence[Any]) -> None:
        chosen = {i.id for i in self.selected()}
        self.identities = list(identities)
        self.list.setUpdatesEnabled(False)
        self.list.clear()
        for identity in self.identities:
            item = QListWidgetItem(f"{identity.name}   ({identity.crop_count or 0})")
            item.setData(Qt.ItemDataRole.UserRole, identity.id)
            self.list.addItem(item)
            item.setSelected(identity.id in chosen)
        self.list.setUpdatesEnabled(True)

    def selected(self) -> list[Any]:
        """Selected identities, in the order they were clicked."""
        by_id = {i.id: i for i in self.identities}
        return [by_id[int(item.data(Qt.ItemDataRole.UserRole))] for item in self.list.selectedItems()]
