"""The Help menu: the main window's keyboard shortcuts, and what the program is and runs with.

Both are read from the running program rather than written down: the shortcuts from the window's menus
and from the shortcuts its widgets hold, so that the list cannot drift from the code; the About text from
the installed versions, the open workspace and the models in use.
"""

from __future__ import annotations

import html
import platform
import re
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QFont, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMenuBar,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

APP_NAME = "AMD Workbench"
#: What the program does, in one sentence (the first lines of the About box and of its copied text).
DESCRIPTION = (
    "Explains a person re-identification model's distance between two crops attribute by attribute: an "
    "interpreter trained by Attribute-guided Metric Distillation (ICCV 2021) splits the distance into "
    "one share per attribute and shows where in the crops each share comes from."
)
#: Database back ends by SQLAlchemy's name for them.
DATABASE_KINDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
#: Words that name a key on a button ("Delete"), by the key's short name ("Del").
KEY_WORDS = {"Del": "Delete", "Ins": "Insert", "Esc": "Escape", "Backspace": "Backspace", "Return": "Enter"}
#: Digits of a model file's SHA-256 shown: enough to tell the files of a workspace apart.
HASH_DIGITS = 12


# ---------------------------------------------------------------------- shortcuts (read from the window)


@dataclass(frozen=True)
class ShortcutEntry:
    """One thing a key does.

    Attributes:
        group: Where it lives: a menu's title ("Edit") or a part of the window ("Compare").
        name: What it does ("Undo", "Use model").
        keys: Its key sequences in the platform's own text ("Ctrl+Shift+Z"), the main one first.
    """

    group: str
    name: str
    keys: tuple[str, ...]


def plain_text(text: str) -> str:
    """A menu or button text as it reads: mnemonics ("&File", "R&&D") and a trailing "..." removed."""
    text = re.sub(r"&(.)", r"\1", text)
    return text.removesuffix("...").removesuffix("\u2026").strip()


def native_keys(sequences: list[QKeySequence]) -> tuple[str, ...]:
    keys = (k.toString(QKeySequence.SequenceFormat.NativeText) for k in sequences if not k.isEmpty())
    return tuple(dict.fromkeys(keys))


def menu_shortcuts(bar: QMenuBar) -> list[ShortcutEntry]:
    """Every action with a key in the menus of ``bar``, in menu order, grouped by its top-level menu.

    An action's name is its icon text: its text without mnemonic and ellipsis, or the fixed name it was
    given where its text changes (Undo and Redo name the command they would undo).
    """
    entries: list[ShortcutEntry] = []

    def walk(menu: QMenu, group: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), group)
            elif not action.isSeparator():
                keys = native_keys(action.shortcuts())
                if keys:
                    entries.append(ShortcutEntry(group, action.iconText(), keys))

    for action in bar.actions():
        if action.menu() is not None:
            walk(action.menu(), plain_text(action.menu().title()))
    return entries


def _place(widget: QWidget, window: QWidget) -> tuple[str, QWidget]:
    """The part of ``window`` that holds ``widget`` ("the Compare tab", "the Identities panel"), and its
    outermost widget."""
    w = widget
    while True:
        if isinstance(w, QDockWidget):
            return f"In the {plain_text(w.windowTitle())} panel", w
        stack = w.parentWidget()
        if isinstance(stack, QStackedWidget) and isinstance(stack.parentWidget(), QTabWidget):
            tabs = stack.parentWidget()
            return f"In the {plain_text(tabs.tabText(tabs.indexOf(w)))} tab", w
        if stack is None or stack is window:
            return "In the window", w
        w = stack


def _shortcut_name(shortcut: QShortcut, owner: QWidget, place: QWidget) -> str:
    """What a widget's shortcut does: its "What's this" text, else the button that shows its key.

    A button shows its key as "Match  [1]" (the key in brackets) or is named after it ("Delete" for Del);
    such a button is looked for from the shortcut's widget outwards, up to the dock or tab around it.
    """
    if shortcut.whatsThis():
        return shortcut.whatsThis()
    key = shortcut.key().toString(QKeySequence.SequenceFormat.PortableText)
    w: QWidget | None = owner
    while w is not None:
        for button in w.findChildren(QAbstractButton):
            text = plain_text(button.text())
            if text.endswith(f"[{key}]"):
                return text.removesuffix(f"[{key}]").strip()
            if text == KEY_WORDS.get(key, key):
                return button.toolTip() or text
        if w is place:
            break
        w = w.parentWidget()
    return owner.accessibleName() or owner.toolTip() or f"({type(owner).__name__})"


def widget_shortcuts(window: QMainWindow) -> list[ShortcutEntry]:
    """The shortcuts that the window's widgets hold themselves (keys of a view, not of a menu).

    Those are their ``QShortcut`` objects, and the keys a widget handles in its own ``keyPressEvent``,
    which its class lists in a ``KEY_HELP`` attribute: ``((what the key does, (Qt.Key, ...)), ...)``.
    A widget shown twice (the two crops of the compare tab) is listed once.
    """
    entries: list[ShortcutEntry] = []
    for shortcut in window.findChildren(QShortcut):
        owner = shortcut.parent()
        # Shortcuts of other top-level windows (the training panel) are theirs, not the main window's.
        if not isinstance(owner, QWidget) or owner.window() is not window:
            continue
        keys = native_keys(shortcut.keys())
        if keys:
            group, place = _place(owner, window)
            entries.append(ShortcutEntry(group, _shortcut_name(shortcut, owner, place), keys))
    for widget in window.findChildren(QWidget):
        handled = getattr(type(widget), "KEY_HELP", ())
        if not handled or widget.window() is not window:
            continue
        group, _place_widget = _place(widget, window)
        for name, keys in handled:
            entry = ShortcutEntry(group, name, native_keys([QKeySequence(k) for k in keys]))
            if entry not in entries:
                entries.append(entry)
    return entries


def window_shortcuts(window: QMainWindow) -> list[tuple[str, list[ShortcutEntry]]]:
    """Every shortcut of ``window``, grouped: the menus in menu-bar order, then the window's parts."""
    groups: dict[str, list[ShortcutEntry]] = {}
    for entry in menu_shortcuts(window.menuBar()) + widget_shortcuts(window):
        groups.setdefault(entry.group, []).append(entry)
    return list(groups.items())


def shortcuts_text(groups: list[tuple[str, list[ShortcutEntry]]]) -> str:
    """The shortcut list as plain text (one group a paragraph)."""
    blocks = []
    for group, entries in groups:
        lines = [group] + [f"  {e.name}: {', '.join(e.keys)}" for e in entries]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class ShortcutsDialog(QDialog):
    """A non-modal list of the window's shortcuts, by menu, with the keys as the platform writes them.

    Args:
        groups: From :func:`window_shortcuts`; :meth:`set_groups` shows another list.
    """

    def __init__(self, groups: list[tuple[str, list[ShortcutEntry]]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.setModal(False)
        self.tree = QTreeWidget()
        self.tree.setObjectName("shortcuts_tree")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tree.header().setStretchLastSection(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.groups: list[tuple[str, list[ShortcutEntry]]] = []
        self.set_groups(groups)

    def set_groups(self, groups: list[tuple[str, list[ShortcutEntry]]]) -> None:
        self.groups = list(groups)
        self.tree.clear()
        bold = QFont(self.font())
        bold.setBold(True)
        for group, entries in self.groups:
            head = QTreeWidgetItem(self.tree, [group])
            head.setFont(0, bold)
            head.setFirstColumnSpanned(True)
            # A little space above each group's title.
            head.setSizeHint(0, QSize(0, self.fontMetrics().height() + 12))
            head.setTextAlignment(0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
            for entry in entries:
                QTreeWidgetItem(head, [entry.name, ", ".join(entry.keys)])
        self.tree.expandAll()
        # Tall enough for every row (up to most of the screen), wide enough for the longest name and keys.
        self.tree.doItemsLayout()
        items = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        items += [head.child(j) for head in list(items) for j in range(head.childCount())]
        rows = sum(self.tree.rowHeight(self.tree.indexFromItem(item)) for item in items)
        free = self.screen().availableGeometry()
        width = self.tree.sizeHintForColumn(0) + self.tree.sizeHintForColumn(1) + 80
        height = rows + self.tree.header().sizeHint().height() + 70
        self.resize(min(max(width, 420), free.width() - 40), min(height, free.height() * 4 // 5))

    def entries(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """What the list shows: {group: {name: keys}}."""
        return {group: {e.name: e.keys for e in entries} for group, entries in self.groups}


# ---------------------------------------------------------------------- about


def _model_text(model: Any) -> str:
    """A model's name, file and the first digits of the file's SHA-256, one a line."""
    path = model.file_path or "(file not recorded)"
    return f"{model.name}\n{path}\nSHA-256 {model.file_hash[:HASH_DIGITS]}"


def describe_device(device: str | None) -> str:
    """``cuda`` / ``cpu`` in words, with the GPU's name when CUDA is already in use."""
    if device is None:
        return "- (no workspace open)"
    if device.startswith("cuda"):
        import torch

        # Naming the GPU starts CUDA, which the models on it have done already; never start it only for this.
        if torch.cuda.is_initialized():
            return f"GPU (CUDA): {torch.cuda.get_device_name(torch.device(device))}"
        return "GPU (CUDA)"
    return "CPU"


def about_rows(bench: Any, device: str | None = None) -> list[tuple[str, str]]:
    """What the About box lists: (label, value) pairs.

    Args:
        bench: The open :class:`cli.workbench.Workbench`, or ``None``.
        device: The device the models run on (``cpu``, ``cuda``), or ``None`` when none is chosen yet.
    """
    import PySide6
    import torch
    import torchvision
    from PySide6.QtCore import qVersion

    import amd

    rows = [
        ("Version", f"{APP_NAME} {amd.__version__}"),
        ("Python", platform.python_version()),
        ("System", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("PyTorch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("PySide6", f"{PySide6.__version__} (Qt {qVersion()})"),
        ("Device", describe_device(device)),
    ]
    if bench is None:
        return rows + [("Workspace", "none open")]
    backend = bench.ws.url.get_backend_name()
    rows += [
        ("Workspace", str(bench.root)),
        ("Database", DATABASE_KINDS.get(backend, backend)),
    ]
    models = bench.models
    if models.target is None:
        rows.append(("Target model", f"none ({models.problem})" if models.problem else "none"))
    else:
        rows.append(("Target model", _model_text(models.target)))
        rows.append(("Interpreter", _model_text(models.interpreter) if models.interpreter else "none"))
    return rows


def about_text(rows: list[tuple[str, str]]) -> str:
    """The About box as plain text, for a bug report."""
    width = max(len(label) for label, _ in rows) + 2
    # A value of several lines (a model: name, file, hash) continues under its first line.
    lines = [f"{label + ':':<{width}}" + value.replace("\n", "\n" + " " * width) for label, value in rows]
    return f"{APP_NAME}\n{DESCRIPTION}\n\n" + "\n".join(lines) + "\n"


class AboutDialog(QDialog):
    """What the program is, which versions it runs with, and the workspace and models it works on.

    The text is selectable; Copy puts all of it on the clipboard as plain text.

    Args:
        rows: From :func:`about_rows`.
    """

    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("about_dialog")
        self.setWindowTitle(f"About {APP_NAME}")
        self.title = QLabel()
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.title.setFont(font)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.browser = QTextBrowser()
        self.browser.setObjectName("about_text")
        self.browser.setOpenLinks(False)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy all of it as plain text (for a bug report)")
        self.copy_button.clicked.connect(self.copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.text = ""
        self.set_rows(rows)
        # As tall as the text at this width (no empty box under it), within the screen.
        free = self.screen().availableGeometry()
        width = min(760, free.width() - 40)
        document = self.browser.document()
        document.setTextWidth(width - 60)
        extra = self.title.sizeHint().height() + buttons.sizeHint().height() + 70
        self.resize(width, min(int(document.size().height()) + extra, free.height() * 4 // 5))

    def set_rows(self, rows: list[tuple[str, str]]) -> None:
        self.rows = list(rows)
        self.text = about_text(self.rows)
        version = dict(self.rows).get("Version", APP_NAME)
        self.title.setText(version)
        # The version is the title; the table lists the rest.
        cells = "".join(
            f"<tr><td style='padding: 2px 12px 2px 0; color: #555; white-space: nowrap'>{html.escape(label)}</td>"
            f"<td style='padding: 2px 0'>{html.escape(value).replace(chr(10), '<br>')}</td></tr>"
            for label, value in self.rows
            if label != "Version"
        )
        self.browser.setHtml(f"<p>{html.escape(DESCRIPTION)}</p><table>{cells}</table>")

    def copy(self) -> None:
        """Put the whole text on the clipboard (plain text)."""
        QGuiApplication.clipboard().setText(self.text)
        self.copy_button.setText("Copied")
        QTimer.singleShot(2000, self, lambda: self.copy_button.setText("Copy"))


# ---------------------------------------------------------------------- the menu


class HelpMenu:
    """The Help menu of the main window (added last to its menu bar) and its two dialogs.

    Each dialog is made on first use and reused; it is filled anew each time it is shown, so that it
    shows the window as it is then (another workspace, other models).
    """

    def __init__(self, window: Any) -> None:
        self.window = window
        self.menu = window.menuBar().addMenu("&Help")
        self.shortcuts_action = QAction("&Keyboard shortcuts", window)
        # F1 everywhere (as the README says), besides the platform's own help key.
        keys = [QKeySequence("F1")]
        keys += [k for k in QKeySequence.keyBindings(QKeySequence.StandardKey.HelpContents) if k not in keys]
        self.shortcuts_action.setShortcuts(keys)
        self.shortcuts_action.triggered.connect(lambda _checked=False: self.show_shortcuts())
        self.about_action = QAction(f"&About {APP_NAME}", window)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(lambda _checked=False: self.show_about())
        self.menu.addAction(self.shortcuts_action)
        self.menu.addSeparator()
        self.menu.addAction(self.about_action)
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.about_dialog: AboutDialog | None = None

    def show_shortcuts(self) -> ShortcutsDialog:
        groups = window_shortcuts(self.window)
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = ShortcutsDialog(groups, self.window)
        else:
            self.shortcuts_dialog.set_groups(groups)
        self._raise(self.shortcuts_dialog)
        return self.shortcuts_dialog

    def show_about(self) -> AboutDialog:
        bench = self.window.bench
        rows = about_rows(bench, bench.device if bench is not None else None)
        if self.about_dialog is None:
            self.about_dialog = AboutDialog(rows, self.window)
        else:
            self.about_dialog.set_rows(rows)
        self._raise(self.about_dialog)
        return self.about_dialog

    @staticmethod
    def _raise(dialog: QDialog) -> None:
        # Non-modal: the window stays usable while the dialog is open.
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()


def install_help_menu(window: Any) -> HelpMenu:
    """Add the Help menu to ``window``'s menu bar; call it after every other menu, so that it comes last."""
    return HelpMenu(window)
