"""The Models menu's dialogs: choose the target and interpreter to work with, and import model files.

Both only show and collect; reading checkpoints, loading and registering models run on the window's
workers (:func:`cli.workbench.model_choices`, :func:`cli.workbench.import_models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cli.workbench import ModelChoice
from gui.qt_util import ListTableModel

#: Metrics shown in the list, in this order: (key in the checkpoint, label, is a percentage already).
TARGET_METRICS = (("mAP", "mAP", False), ("rank1", "Rank-1", False))
INTERPRETER_METRICS = (("adre", "ADRE", True), ("x_map_e", "X-mAP_e", False), ("x_map_c", "X-mAP_c", False))
CHECKPOINT_FILTER = "Model checkpoints (*.pt *.pth);;All files (*)"


def metric_text(
    metrics: dict[str, Any] | None, keys: Sequence[tuple[str, str, bool]], sep: str = " · "
) -> str:
    """``"mAP 0.881 · Rank-1 0.899"``: the known figures of a model, or "-" when it has none."""
    parts = []
    for key, label, percent in keys:
        value = (metrics or {}).get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:.2f} %" if percent else f"{label} {value:.3f}")
    return sep.join(parts) or "-"


def all_metrics(metrics: dict[str, Any] | None) -> str:
    """Every numeric figure of a model, one ``name: value`` per line."""
    return (
        "\n".join(f"{k}: {v:.4g}" for k, v in (metrics or {}).items() if isinstance(v, (int, float)))
        or "no figures recorded"
    )


class ModelChoiceModel(ListTableModel):
    """The rows of :class:`UseModelDialog`: one per target and interpreter pair."""

    HEADERS = (
        "Target",
        "Interpreter",
        "Architecture",
        "Input",
        "Target figures",
        "Interpreter figures",
        "Indexed crops",
    )

    def __init__(
        self, choices: Sequence[ModelChoice], current: tuple[str, str | None] | None, parent=None
    ) -> None:
        super().__init__(parent)
        self.rows = list(choices)
        self.current = current

    @property
    def choices(self) -> list[ModelChoice]:
        return self.rows

    def is_current(self, row: int) -> bool:
        return self.current is not None and self.choices[row].key == self.current

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        c = self.choices[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row(), col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(index.row(), col)
        if role == Qt.ItemDataRole.FontRole and self.is_current(index.row()):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and c.problem:
            return Qt.GlobalColor.gray
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (3, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def text(self, row: int, col: int) -> str:
        """What the cell shows (the figures one per line, so that the columns stay narrow)."""
        c = self.choices[row]
        if col == 0:
            return ("\u25b6 " if self.is_current(row) else "") + c.target.name
        if col == 1:
            return c.interpreter.name if c.interpreter else "(none)"
        if col == 2:
            arch = c.target.architecture or "?"
            return f"{arch} + {c.interpreter.architecture or '?'}" if c.interpreter else arch
        if col == 3:
            return f"{c.input_size[0]}x{c.input_size[1]}" if c.input_size else "-"
        if col == 4:
            return metric_text(c.target.metrics, TARGET_METRICS, "\n")
        if col == 5:
            return metric_text(c.interpreter.metrics, INTERPRETER_METRICS, "\n") if c.interpreter else "-"
        text = f"{c.indexed:,}"
        return f"{text} ({c.predicted:,} predicted)" if c.interpreter else text

    def tooltip(self, row: int, col: int) -> str:
        """The cell's full text (a narrow column elides it), with what it is about.

        The target's columns add its file and every figure it records, the interpreter's columns its own.
        """
        c = self.choices[row]
        text = self.text(row, col).removeprefix("\u25b6 ").replace("\n", " · ")
        if col == 6:
            text = f"{c.indexed:,} crops indexed with this target"
            if c.interpreter is not None:
                text += f", {c.predicted:,} with the interpreter's attribute predictions"
        model = c.target if col in (0, 4) else c.interpreter if col in (1, 5) else None
        if model is not None:
            text += f"\n{model.file_path}\n{all_metrics(model.metrics)}"
        return f"Cannot be used: {c.problem}\n{text}" if c.problem else text


def fit_widths(widths: Sequence[int], room: int) -> list[int]:
    """Column widths that add up to at most ``room``: the widest columns give way first, to one width.

    ``fit_widths([300, 100, 200], 450)`` is ``[175, 100, 175]``; widths that fit are kept.
    """
    widths = list(widths)
    if sum(widths) <= room or not widths:
        return widths
    # The largest cap c with sum(min(w, c)) <= room: columns narrower than c keep their width.
    rest, left = room, len(widths)
    for w in sorted(widths):
        if w * left > rest:
            break
        rest -= w
        left -= 1
    cap = max(1, rest // max(left, 1))
    return [min(w, cap) for w in widths]


class UseModelDialog(QDialog):
    """The workspace's registered targets with their interpreters; the analyst picks the pair to use.

    Args:
        choices: The rows (see :func:`cli.workbench.model_choices`).
        current: The file hashes of the pair in use, marked in the list.
        parent: The main window.

    Signals:
        chosen(ModelChoice): the analyst chose a usable pair ("Use" or a double-click).
    """

    chosen = Signal(object)

    def __init__(
        self,
        choices: Sequence[ModelChoice],
        current: tuple[str, str | None] | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("use_model_dialog")
        self.setWindowTitle("Use model")
        self.model = ModelChoiceModel(choices, current, self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.doubleClicked.connect(lambda _i: self._on_use())
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.use_button = self.buttons.addButton("Use", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_use)
        self.buttons.rejected.connect(self.reject)
        intro = QLabel(
            "Search, comparison and the predicted-attribute filter use the chosen pair; crops not yet "
            "indexed with its target are embedded at the next search."
        )
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.buttons)
        self.view.selectionModel().currentRowChanged.connect(lambda *_: self._on_row_changed())
        start = next((r for r in range(len(self.model.choices)) if self.model.is_current(r)), 0)
        if self.model.choices:
            self.view.selectRow(start)
        else:
            self.detail.setText("No model is registered in this workspace: Models > Import a model file...")
        self._on_row_changed()
        self._fit_to_screen(parent)

    def _fit_to_screen(self, parent: QWidget | None) -> None:
        """Open as wide as the columns need, but no wider than the screen's free area allows.

        Columns that do not fit are narrowed, the widest first; their cells are elided and their tooltips
        have the full text.
        """
        self.view.resizeColumnsToContents()
        self.view.resizeRowsToContents()
        header = self.view.horizontalHeader()
        widths = [header.sectionSize(c) for c in range(header.count())]
        screen = (parent or self).screen().availableGeometry()
        margins = self.layout().contentsMargins()
        chrome = margins.left() + margins.right() + 2 * self.view.frameWidth()
        chrome += self.view.verticalScrollBar().sizeHint().width()
        width = min(sum(widths) + chrome, screen.width() * 9 // 10)
        width = max(width, min(640, screen.width()))
        for col, w in enumerate(fit_widths(widths, width - chrome)):
            header.resizeSection(col, w)
        rows = sum(self.view.rowHeight(r) for r in range(self.model.rowCount()))
        height = min(max(360, rows + 200), screen.height() * 9 // 10)
        self.resize(width, height)

    def selected(self) -> ModelChoice | None:
        index = self.view.currentIndex()
        return self.model.choices[index.row()] if index.isValid() else None

    def select(self, target_hash: str, interpreter_hash: str | None) -> bool:
        """Select the row of this pair; false when it is not listed."""
        for row, choice in enumerate(self.model.choices):
            if choice.key == (target_hash, interpreter_hash):
                self.view.selectRow(row)
                return True
        return False

    def _on_row_changed(self) -> None:
        choice = self.selected()
        self.use_button.setEnabled(choice is not None and choice.usable)
        if choice is None:
            return
        if choice.problem:
            self.detail.setText(f"<b>Cannot be used</b>: {choice.problem}")
        elif choice.interpreter is None:
            self.detail.setText(
                f"{choice.target.file_path}<br>No interpreter is registered for this target: search works, "
                "comparisons cannot be explained."
            )
        else:
            self.detail.setText(f"{choice.target.file_path}<br>{choice.interpreter.file_path}")

    def _on_use(self) -> None:
        choice = self.selected()
        if choice is None or not choice.usable:
            return
        self.chosen.emit(choice)
        self.accept()


class ImportModelDialog(QDialog):
    """Pick a target checkpoint and optionally its interpreter; the window checks and registers them.

    The dialog stays open until the files were accepted, and shows the engine's reason when they were not.

    Signals:
        import_requested(str, str): the target and interpreter paths ("" when not given).
    """

    import_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("import_model_dialog")
        self.setWindowTitle("Import a model file")
        self.target_edit = QLineEdit()
        self.target_edit.setPlaceholderText("target model (.pt); empty: the interpreter's registered target")
        self.interpreter_edit = QLineEdit()
        self.interpreter_edit.setPlaceholderText("optional: an interpreter distilled from it (.pt)")
        form = QFormLayout()
        form.addRow("Target model", self._with_browse(self.target_edit, "Target model"))
        form.addRow("Interpreter", self._with_browse(self.interpreter_edit, "Interpreter"))
        self.error_label = QLabel("")
        self.error_label.setObjectName("import_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_import)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(640)

    def _with_browse(self, edit: QLineEdit, title: str) -> QWidget:
        button = QPushButton("Browse...")
        button.clicked.connect(lambda _c=False: self._browse(edit, title))
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return box

    def _browse(self, edit: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, edit.text(), CHECKPOINT_FILTER)
        if path:
            edit.setText(path)

    def _on_import(self) -> None:
        target, interpreter = self.target_edit.text().strip(), self.interpreter_edit.text().strip()
        if not target and not interpreter:
            self.show_refusal("Choose a target model file (and optionally its interpreter).")
            return
        self.error_label.setText("Checking the files...")
        self.import_button.setEnabled(False)
        self.import_requested.emit(target, interpreter)

    def show_refusal(self, message: str) -> None:
        """The files were not accepted: say why and let the analyst choose others."""
        self.error_label.setText(message)
        self.import_button.setEnabled(True)
