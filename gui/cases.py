"""The case panel: cases and their compared pairs, case files (.amdcase) and reports.

The panel lists the workspace's cases (title, reference, analyst, item count, modified) and the items
of the selected one (both crops, distance, verdict). Reads run on the window's light job runner,
changes on its writer thread (in order), and saving, importing, verifying and exporting on its heavy
runner with the status bar's progress and Cancel; the work itself is :mod:`cli.case_ops`.

:func:`install_case_panel` puts the panel in a main window: a dock, a "Cases" menu, the compare view's
"Add to case" flow and its annotations (on the window's undo stack).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cases.archive import DuplicateCase
from cli import case_ops
from gui.dialogs import show_error, show_message
from gui.qt_util import FlowLayout, ListTableModel
from gui.widgets.chart import format_distance
from gui.workers import Job, JobRunner, guarded

CASE_FILTER = "Case files (*.amdcase)"
VERDICT_TEXT = {"match": "Match", "no_match": "No match", "inconclusive": "Inconclusive", None: "-"}
VERDICT_COLOUR = {
    "match": QColor(42, 140, 90),
    "no_match": QColor(200, 70, 50),
    "inconclusive": QColor(190, 140, 20),
}
#: Height of the item thumbnails in the list.
THUMB_HEIGHT = 64
ItemRole = Qt.ItemDataRole.UserRole + 1


def _when(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _day(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d") if value is not None else "-"


class CaseListModel(ListTableModel):
    """The workspace's cases (``CaseInfo`` records)."""

    HEADERS = ("Title", "Reference", "Analyst", "Items", "Modified")

    @property
    def cases(self) -> list[Any]:
        return self.rows

    def set_cases(self, cases: list[Any]) -> None:
        self.set_rows(cases)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        case = self.cases[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            # The day is enough in the list; the tooltip and the details give the time.
            return (
                case.title,
                case.reference or "",
                case.analyst or "",
                str(case.item_count),
                _day(case.updated_at),
            )[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            # Narrow columns elide their text: each cell's tooltip has it in full.
            if col == 0:
                lines = [case.title]
                if case.reference:
                    lines.append(f"reference: {case.reference}")
                if case.analyst:
                    lines.append(f"analyst: {case.analyst}")
                if case.description:
                    lines.append(case.description)
                return "\n".join(lines)
            if col == 3:
                return f"{case.item_count} compared pair{'s' * (case.item_count != 1)}"
            if col == 4:
                return f"modified {_when(case.updated_at)}"
            return (case.reference, case.analyst)[col - 1] or None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == ItemRole:
            return case
        return None

    def row_of(self, case_id: int) -> int:
        return next((i for i, c in enumerate(self.cases) if c.id == case_id), -1)


class CaseItemModel(ListTableModel):
    """The items of one case (``cli.case_ops.ItemRow``), with both crops' thumbnails side by side."""

    HEADERS = ("#", "Crops", "Distance", "Verdict", "Notes")

    def __init__(self, thumbnails: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._pairs: dict[tuple[str, str], QPixmap] = {}
        if thumbnails is not None:
            thumbnails.loaded.connect(self._on_thumbnails_loaded)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        item, col = row.item, index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(row.number)
            if col == 2:
                return "-" if item.distance is None else format_distance(item.distance)
            if col == 3:
                return VERDICT_TEXT.get(item.verdict, item.verdict)
            if col == 4:
                notes = (item.notes or "").replace("\n", " ")
                n = len(item.annotations)
                marks = f"[{n} annotation{'s' * (n != 1)}] " if n else ""
                return marks + notes
            return None
        if role == Qt.ItemDataRole.DecorationRole and col == 1:
            return self._pair_pixmap(row)
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return VERDICT_COLOUR.get(item.verdict)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"Item {row.number}: crop {row.query.id} ({row.query.camera or '-'}) vs crop {row.gallery.id} "
                f"({row.gallery.camera or '-'})\n{item.notes or ''}"
            ).strip()
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == ItemRole:
            return row
        return None

    def _pair_pixmap(self, row: case_ops.ItemRow) -> QPixmap | None:
        key = (row.query.sha256, row.gallery.sha256)
        if key in self._pairs:
            return self._pairs[key]
        if self.thumbnails is None:
            return None
        a = self.thumbnails.get(row.query.sha256, row.query.format)
        b = self.thumbnails.get(row.gallery.sha256, row.gallery.format)
        if a is None or b is None:
            return None  # queued: drawn when the loader reports them
        parts = [p.scaledToHeight(THUMB_HEIGHT, Qt.TransformationMode.SmoothTransformation) for p in (a, b)]
        pixmap = QPixmap(sum(p.width() for p in parts) + 4, THUMB_HEIGHT)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.drawPixmap(0, 0, parts[0])
        painter.drawPixmap(parts[0].width() + 4, 0, parts[1])
        painter.end()
        self._pairs[key] = pixmap
        return pixmap

    def _on_thumbnails_loaded(self, _hashes: list[str]) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self.rows) - 1, 1))


class CaseDialog(QDialog):
    """The fields of a case: title (required), reference, analyst, description."""

    def __init__(self, parent: QWidget | None, title: str, case: Any = None, analyst: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("case_dialog")
        self.setWindowTitle(title)
        self.title_edit = QLineEdit(case.title if case else "")
        self.title_edit.setPlaceholderText("What the case is about")
        self.reference_edit = QLineEdit((case.reference or "") if case else "")
        self.reference_edit.setPlaceholderText("e.g. 2026/0413")
        self.analyst_edit = QLineEdit((case.analyst or "") if case else analyst)
        self.description_edit = QPlainTextEdit((case.description or "") if case else "")
        self.description_edit.setPlaceholderText("Description")
        self.description_edit.setMinimumHeight(90)
        form = QFormLayout()
        form.addRow("Title", self.title_edit)
        form.addRow("Reference", self.reference_edit)
        form.addRow("Analyst", self.analyst_edit)
        form.addRow("Description", self.description_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.title_edit.textChanged.connect(self._on_title_changed)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        self._on_title_changed(self.title_edit.text())

    def _on_title_changed(self, text: str) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(text.strip()))

    def values(self) -> dict[str, str]:
        return {
            "title": self.title_edit.text().strip(),
            "reference": self.reference_edit.text().strip(),
            "analyst": self.analyst_edit.text().strip(),
            "description": self.description_edit.toPlainText().strip(),
        }


class AddToCaseDialog(QDialog):
    """Choose the case a compared pair goes into: an existing one (the panel's current case first) or a new one."""

    NEW = -1

    def __init__(self, parent: QWidget | None, cases: list[Any], current: int | None) -> None:
        super().__init__(parent)
        self.setObjectName("add_to_case_dialog")
        self.setWindowTitle("Add to case")
        self.case_box = QComboBox()
        # A long case title is elided in the box (the list shows it whole), not widening the dialog.
        self.case_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.case_box.setMinimumContentsLength(60)
        for case in cases:
            ref = f" ({case.reference})" if case.reference else ""
            items = f"{case.item_count} item{'s' * (case.item_count != 1)}"
            self.case_box.addItem(f"{case.title}{ref}: {items}", case.id)
        self.case_box.addItem("New case...", self.NEW)
        if current is not None and self.case_box.findData(current) >= 0:
            self.case_box.setCurrentIndex(self.case_box.findData(current))
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("Title of the new case")
        self.reference_edit = QLineEdit()
        self.reference_edit.setPlaceholderText("Reference (optional)")
        self.new_fields = QWidget()
        nf = QFormLayout(self.new_fields)
        nf.setContentsMargins(0, 0, 0, 0)
        nf.addRow("Title", self.title_edit)
        nf.addRow("Reference", self.reference_edit)
        form = QFormLayout()
        form.addRow("File the pair in", self.case_box)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.new_fields)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(440)
        self.case_box.currentIndexChanged.connect(self._update)
        self.title_edit.textChanged.connect(self._update)
        self._update()

    def is_new(self) -> bool:
        return self.case_box.currentData() == self.NEW

    def _update(self) -> None:
        self.case_box.setToolTip(self.case_box.currentText())
        self.new_fields.setVisible(self.is_new())
        ok = not self.is_new() or bool(self.title_edit.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)


class CasePanelWidget(QWidget):
    """Cases and their items, with the actions on them.

    Args:
        bench_of: Returns the open ``cli.workbench.Workbench`` (or ``None``).
        io: Runner of the quick reads (lists).
        runner: Runner of the long jobs (case files, reports).
        writer: The window's store writer (``submit(fn, *args, on_done=...)``, in order).
        progress: The status bar's progress widget (``track(job, title)``).
        thumbnails: The window's thumbnail loader.

    Signals:
        item_opened(object): a case item was loaded to be shown (``cli.case_ops.OpenedItem``).
        cases_loaded(): the case list on screen was refreshed.
        items_loaded(): the item list on screen was refreshed.
        message(str): a line for the status bar.
        case_saved(object): a case file was written (``cases.archive.SavedCase``).
        case_imported(object): a case file was imported (the new ``CaseInfo``).
        case_verified(object): a case file was checked (``cases.archive.VerifyReport``).
        report_exported(str): a report was written to this path.
        item_verdict_saved(str, object, object, object): a verdict given on an open case item was saved:
            the verdict word, the item, and its query and gallery crops (for the offer after a Match).
        notes_saved(object): the notes typed on an open case item were saved (the ``CaseItemInfo``).
    """

    item_opened = Signal(object)
    cases_loaded = Signal()
    items_loaded = Signal()
    message = Signal(str)
    case_saved = Signal(object)
    case_imported = Signal(object)
    case_verified = Signal(object)
    report_exported = Signal(str)
    item_verdict_saved = Signal(str, object, object, object)
    notes_saved = Signal(object)

    #: Notes typed on an open case item are saved this long after the last keystroke.
    NOTES_DELAY_MS = 800

    def __init__(
        self,
        bench_of: Callable[[], Any],
        io: JobRunner,
        runner: JobRunner,
        writer: Any,
        progress: Any,
        thumbnails: Any = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.bench_of, self.io, self.runner, self.writer, self.progress = (
            bench_of,
            io,
            runner,
            writer,
            progress,
        )
        self.current_id: int | None = None
        self.contents: case_ops.CaseContents | None = None
        self.dialog: QDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self.last_message: QMessageBox | None = None
        self._select_item_after: int | None = None

        self.case_model = CaseListModel(self)
        self.case_view = QTableView()
        self.case_view.setObjectName("case_list")
        self._table(self.case_view, self.case_model)
        header = self.case_view.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        self.case_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.case_view.viewport().installEventFilter(self)
        self.case_view.selectionModel().currentRowChanged.connect(self._on_case_row_changed)
        self.case_view.doubleClicked.connect(lambda _i: self.edit_case())

        self.new_button = self._button(
            "New...", self.new_case, "A new case: title, reference, analyst, description"
        )
        self.edit_button = self._button("Edit...", self.edit_case, "Change the selected case's fields")
        self.delete_button = self._button(
            "Delete", self.delete_case, "Delete the selected case and its items"
        )
        # A push button with a menu keeps room for its arrow beside the text.
        self.file_button = QPushButton("Case file")
        self.file_button.setToolTip("Save, import or verify .amdcase files; export reports")
        menu = QMenu(self.file_button)
        self.file_menu = menu
        menu.addAction("Save as .amdcase...", lambda: self.save_case_file())
        menu.addAction("Open / import .amdcase...", lambda: self.import_case_file())
        menu.addAction("Verify .amdcase...", lambda: self.verify_case_file())
        menu.addSeparator()
        menu.addAction("Export HTML report...", lambda: self.export_report("html"))
        menu.addAction("Export PDF report...", lambda: self.export_report("pdf"))
        self.file_button.setMenu(menu)
        # Button rows are grids of equal cells: one row on a wide dock, two on a narrow one.
        top_bar = QWidget()
        top = FlowLayout(top_bar, uniform=True)
        top.setContentsMargins(0, 0, 0, 0)
        for w in (self.new_button, self.edit_button, self.delete_button, self.file_button):
            top.addWidget(w)

        self.details = QLabel("No case selected.")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)

        self.item_model = CaseItemModel(thumbnails, self)
        self.item_view = QTableView()
        self.item_view.setObjectName("case_items")
        self._table(self.item_view, self.item_model)
        self.item_view.setIconSize(QSize(4 * THUMB_HEIGHT, THUMB_HEIGHT))
        self.item_view.verticalHeader().setDefaultSectionSize(THUMB_HEIGHT + 8)
        ih = self.item_view.horizontalHeader()
        for col in (0, 1, 2, 3):
            ih.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        ih.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.item_view.doubleClicked.connect(lambda _i: self.open_item())
        self.item_view.selectionModel().currentRowChanged.connect(lambda *_: self._update_buttons())

        self.open_button = self._button("Open", self.open_item, "Show the pair again in the compare view")
        self.up_button = self._button("Up", lambda: self.move_item(-1), "Move the item up")
        self.down_button = self._button("Down", lambda: self.move_item(1), "Move the item down")
        self.remove_button = self._button("Remove", self.remove_item, "Take the item out of the case")
        bottom_bar = QWidget()
        bottom = FlowLayout(bottom_bar, uniform=True)
        bottom.setContentsMargins(0, 0, 0, 0)
        for w in (self.open_button, self.up_button, self.down_button, self.remove_button):
            bottom.addWidget(w)

        upper = QWidget()
        ul = QVBoxLayout(upper)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addWidget(top_bar)
        ul.addWidget(self.case_view)
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.details)
        ll.addWidget(self.item_view, 1)
        ll.addWidget(bottom_bar)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(upper)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        # Store changes come in bursts (an annotation dragged, a pair filed): one reload per burst.
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(150)
        self._reload_timer.timeout.connect(self.reload)
        # Notes typed on an open case item: one save per pause in the typing.
        self.compare: Any = None
        self._notes_saved: tuple[int, str] | None = None
        self._notes_timer = QTimer(self)
        self._notes_timer.setSingleShot(True)
        self._notes_timer.setInterval(self.NOTES_DELAY_MS)
        self._notes_timer.timeout.connect(self.flush_notes)
        self._update_buttons()

    # -- construction helpers ----------------------------------------------------------------------------
    #: The share of the case list's width that the title keeps when the other columns do not all fit.
    TITLE_SHARE = 0.4

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if watched is self.case_view.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_case_columns()
        return super().eventFilter(watched, event)

    def _fit_case_columns(self) -> None:
        """Size the other columns to their contents and leave the rest to the title (the stretched column).

        On a narrow list the analyst, then the reference, are hidden so that the title keeps its share:
        the details under the list and the title's tooltip show them.
        """
        view, header = self.case_view, self.case_view.horizontalHeader()
        for col in (1, 2):
            header.setSectionHidden(col, False)  # a hidden section has no size hint
        wants = {c: max(view.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in (1, 2, 3, 4)}
        room = int(view.viewport().width() * (1 - self.TITLE_SHARE))
        hidden: set[int] = set()
        for col in (2, 1):
            if sum(w for c, w in wants.items() if c not in hidden) <= room:
                break
            hidden.add(col)
        for col, width in wants.items():
            header.setSectionHidden(col, col in hidden)
            if col not in hidden:
                header.resizeSection(col, width)

    @staticmethod
    def _table(view: QTableView, model: QAbstractTableModel) -> None:
        view.setModel(model)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.verticalHeader().setVisible(False)
        view.setWordWrap(False)
        view.setAlternatingRowColors(True)

    def _button(self, text: str, slot: Callable[[], Any], tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _c=False: slot())
        return button

    def _update_buttons(self) -> None:
        has_case = self.current_case() is not None
        row = self.selected_row()
        n = len(self.item_model.rows)
        for w in (self.edit_button, self.delete_button):
            w.setEnabled(has_case)
        self.open_button.setEnabled(row is not None)
        self.remove_button.setEnabled(row is not None)
        self.up_button.setEnabled(row is not None and row.number > 1)
        self.down_button.setEnabled(row is not None and row.number < n)

    # -- state -----------------------------------------------------------------------------------------------
    def ws(self) -> Any:
        bench = self.bench_of()
        return None if bench is None else bench.ws

    def current_case(self) -> Any:
        row = self.case_model.row_of(self.current_id) if self.current_id is not None else -1
        return self.case_model.cases[row] if row >= 0 else None

    def selected_row(self) -> case_ops.ItemRow | None:
        index = self.item_view.currentIndex()
        return (
            self.item_model.rows[index.row()]
            if index.isValid() and index.row() < len(self.item_model.rows)
            else None
        )

    def select_case(self, case_id: int | None) -> None:
        """Make ``case_id`` the current case (its items are loaded)."""
        self.current_id = case_id
        row = self.case_model.row_of(case_id) if case_id is not None else -1
        if row >= 0:
            self.case_view.selectRow(row)
        self._load_items()

    def select_item(self, item_id: int) -> None:
        for i, row in enumerate(self.item_model.rows):
            if row.item.id == item_id:
                self.item_view.selectRow(i)
                return

    # -- reading -----------------------------------------------------------------------------------------------
    def schedule_reload(self) -> None:
        self._reload_timer.start()

    def reload(self) -> Job | None:
        """Re-read the case list (then the current case's items) on a worker."""
        ws = self.ws()
        if ws is None:
            self.case_model.set_cases([])
            self._fit_case_columns()
            self.item_model.set_rows([])
            return None
        job = Job(case_ops.list_cases, ws, name="cases")
        job.signals.succeeded.connect(guarded(self, self._on_cases))
        job.signals.failed.connect(guarded(self, lambda msg: self.message.emit(f"Cases: {msg}")))
        self.io.start("cases", job)
        return job

    def _on_cases(self, cases: list[Any]) -> None:
        keep = self.current_id
        self.case_view.selectionModel().blockSignals(True)
        self.case_model.set_cases(cases)
        # After the reset: the header shows every section again when its model is reset.
        self._fit_case_columns()
        self.case_view.selectionModel().blockSignals(False)
        if keep is None or self.case_model.row_of(keep) < 0:
            # The newest case is the likeliest to be worked on.
            keep = cases[-1].id if cases else None
        self.cases_loaded.emit()
        self.select_case(keep)

    def _on_case_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            case = self.case_model.cases[current.row()]
            if case.id != self.current_id:
                self.current_id = case.id
                self._load_items()

    def _load_items(self) -> Job | None:
        ws = self.ws()
        if ws is None or self.current_id is None:
            self.contents = None
            self.item_model.set_rows([])
            self.details.setText("No case selected. <b>New...</b> makes one.")
            self._update_buttons()
            self.items_loaded.emit()
            return None
        job = Job(case_ops.case_contents, ws, self.current_id, name="case items")
        job.signals.succeeded.connect(guarded(self, self._on_items))
        job.signals.failed.connect(guarded(self, lambda msg: self.message.emit(f"Case: {msg}")))
        self.io.start("case-items", job)
        return job

    def _on_items(self, contents: case_ops.CaseContents) -> None:
        if contents.case.id != self.current_id:
            return  # another case was chosen meanwhile
        selected = self.selected_row()
        keep = self._select_item_after or (selected.item.id if selected else None)
        self._select_item_after = None
        self.contents = contents
        self.item_model.set_rows(list(contents.rows))
        c = contents.case
        parts = [f"<b>{_esc(c.title)}</b>"]
        if c.reference:
            parts.append(f"ref. {_esc(c.reference)}")
        if c.analyst:
            parts.append(f"analyst {_esc(c.analyst)}")
        parts.append(f"{c.status}, created {_when(c.created_at)}")
        text = " · ".join(parts)
        if c.description:
            text += f"<br>{_esc(c.description)}"
        self.details.setText(text)
        if keep is not None:
            self.select_item(keep)
        self._update_buttons()
        self.items_loaded.emit()

    # -- case fields -------------------------------------------------------------------------------------------
    def new_case(self) -> CaseDialog:
        """Ask for a new case's fields (the dialog does not block); OK creates it."""
        bench = self.bench_of()
        dialog = CaseDialog(self, "New case", analyst=(bench.ws.actor or "") if bench is not None else "")
        dialog.accepted.connect(lambda: self.create_case(**dialog.values()))
        return self._open_dialog(dialog)

    def create_case(
        self, title: str, reference: str = "", analyst: str = "", description: str = ""
    ) -> Job | None:
        if self.ws() is None:
            return self._no_workspace("New case")
        return self.writer.submit(
            case_ops.create_case, title, reference, analyst, description, on_done=self._on_case_created
        )

    def _on_case_created(self, case: Any) -> None:
        self.current_id = case.id
        self.message.emit(f"case '{case.title}' created")
        self.reload()

    def edit_case(self) -> CaseDialog | None:
        case = self.current_case()
        if case is None:
            return None
        dialog = CaseDialog(self, "Edit case", case)
        dialog.accepted.connect(lambda: self.update_case(case.id, **dialog.values()))
        return self._open_dialog(dialog)

    def update_case(
        self, case_id: int, title: str, reference: str = "", analyst: str = "", description: str = ""
    ) -> Job:
        return self.writer.submit(
            case_ops.update_case,
            case_id,
            title,
            reference,
            analyst,
            description,
            on_done=lambda _c: self.reload(),
        )

    def delete_case(self) -> QMessageBox | None:
        """Ask, then delete the current case with its items (the crops stay in the workspace)."""
        case = self.current_case()
        if case is None:
            return None
        return self._ask(
            "Delete case",
            f"Delete the case '{case.title}' and its {case.item_count} item{'s' * (case.item_count != 1)}, "
            "with their verdicts, notes and annotations?\nThe crops stay in the workspace.",
            lambda: self._delete_case(case),
            cancel_by_default=True,
        )

    def _delete_case(self, case: Any) -> None:
        def done(_r: Any) -> None:
            self.current_id = None
            self.message.emit(f"case '{case.title}' deleted")
            self.reload()

        self.writer.submit(lambda ws: ws.cases.delete(case.id), on_done=done)

    # -- items ----------------------------------------------------------------------------------------------------
    def open_item(self, item_id: int | None = None) -> Job | None:
        """Load an item (default: the selected one) to show it in the compare view (:attr:`item_opened`)."""
        if item_id is None:
            row = self.selected_row()
            if row is None:
                return None
            item_id = row.item.id
        ws = self.ws()
        if ws is None:
            return None
        job = Job(case_ops.open_item, ws, item_id, name="open item")
        job.signals.succeeded.connect(guarded(self, self.item_opened.emit))
        job.signals.failed.connect(guarded(self, lambda msg: self._error("Open item", msg)))
        self.io.start("open-item", job)
        return job

    def move_item(self, delta: int) -> Job | None:
        """Move the selected item up (-1) or down (+1) in its case."""
        row = self.selected_row()
        if row is None:
            return None
        position = row.item.position + delta
        if not 0 <= position < len(self.item_model.rows):
            return None
        self._select_item_after = row.item.id
        return self.writer.submit(
            lambda ws: ws.cases.move_item(row.item.id, position), on_done=lambda _c: self.reload()
        )

    def remove_item(self, confirm: bool = True) -> QMessageBox | Job | None:
        """Take the selected item out of its case (asks first when ``confirm``)."""
        row = self.selected_row()
        if row is None:
            return None
        if not confirm:
            return self._remove_item(row)
        n = len(row.item.annotations)
        return self._ask(
            "Remove item",
            f"Take item {row.number} out of the case?"
            + (f" Its {n} annotation{'s' * (n != 1)} go with it." if n else ""),
            lambda: self._remove_item(row),
        )

    def _remove_item(self, row: case_ops.ItemRow) -> Job:
        def done(_r: Any) -> None:
            self.message.emit(f"item {row.number} removed from the case")
            self.reload()

        return self.writer.submit(lambda ws: ws.cases.remove_item(row.item.id), on_done=done)

    # -- case files and reports ---------------------------------------------------------------------------------
    def _long_job(self, key: str, title: str, job: Job, done: Callable[[Any], None], what: str) -> Job:
        job.signals.succeeded.connect(guarded(self, done))
        job.signals.failed.connect(guarded(self, lambda msg: self._error(what, msg)))
        self.progress.track(job, title)
        self.runner.start(key, job)
        return job

    def save_case_file(self, path: str | None = None) -> Job | None:
        """Save the current case as an ``.amdcase`` file (asks where when ``path`` is not given)."""
        case = self.current_case()
        if case is None or self.ws() is None:
            return self._error("Save case file", "Select a case first.")
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save case file", f"{_file_stem(case.title)}.amdcase", CASE_FILTER
            )
            if not path:
                return None
            if not path.endswith(".amdcase"):
                path += ".amdcase"
        job = Job(case_ops.save_case_file, self.ws(), case.id, path, name="save case")

        def done(saved: Any) -> None:
            self.message.emit(f"saved {saved.path} ({saved.items} comparisons, {saved.size:,} bytes)")
            self.case_saved.emit(saved)

        return self._long_job("case-file", f"saving {Path(path).name}", job, done, "Save case file")

    def import_case_file(self, path: str | None = None, force: bool = False) -> Job | None:
        """Verify a case file and import it into the workspace as a new case (its crops come with it).

        A file whose case the workspace already holds is not imported unless ``force``: the panel selects
        that case and asks whether to import another copy (:attr:`confirm_box`).
        """
        if self.ws() is None:
            return self._no_workspace("Open case file")
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open a case file", "", CASE_FILTER)
            if not path:
                return None
        job = Job(case_ops.import_case_file, self.ws(), path, force, name="import case")

        def done(case: Any) -> None:
            if isinstance(case, DuplicateCase):
                self._offer_copy(case)
                return
            self.current_id = case.id
            self.message.emit(
                f"imported '{case.title}' ({case.item_count} comparisons) from {Path(path).name}"
            )
            self.reload()
            self.case_imported.emit(case)

        return self._long_job("case-file", f"opening {Path(path).name}", job, done, "Open case file")

    def _offer_copy(self, duplicate: DuplicateCase) -> None:
        self.current_id = duplicate.case.id
        self.reload()
        self._ask(
            "Open case file",
            f"{duplicate.path.name}: {duplicate.message('this workspace')}.\n"
            "Import another copy? Its verdicts and notes would then be kept apart from that case's.",
            lambda: self.import_case_file(str(duplicate.path), force=True),
            yes_text="Import a copy",
            cancel_by_default=True,
        )

    def verify_case_file(self, path: str | None = None) -> Job | None:
        """Check a case file (every hash, the layout) and say whether it is intact."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Verify a case file", "", CASE_FILTER)
            if not path:
                return None
        job = Job(case_ops.verify_case_file, path, name="verify case")

        def done(report: Any) -> None:
            self.case_verified.emit(report)
            if report.ok:
                self.last_message = show_message(
                    self,
                    "Verify case file",
                    f"{report.path} is intact: {report.items} comparisons, {report.members} members, "
                    f"every SHA-256 matches.",
                    f"SHA-256 of the file: {report.sha256}",
                )
            else:
                self.last_message = show_error(
                    self,
                    "Verify case file",
                    f"{report.path} is NOT intact:\n" + "\n".join(f"- {p}" for p in report.problems[:8]),
                    "\n".join(report.problems) if len(report.problems) > 8 else None,
                )

        return self._long_job("case-verify", f"verifying {Path(path).name}", job, done, "Verify case file")

    def export_report(self, fmt: str, path: str | None = None) -> Job | None:
        """Export the current case as an HTML or PDF report (asks where when ``path`` is not given)."""
        case = self.current_case()
        if case is None or self.ws() is None:
            return self._error("Export report", "Select a case first.")
        if path is None:
            suffix = f".{fmt}"
            path, _ = QFileDialog.getSaveFileName(
                self,
                f"Export {fmt.upper()} report",
                f"{_file_stem(case.title)}{suffix}",
                f"{fmt.upper()} (*{suffix})",
            )
            if not path:
                return None
            if not path.lower().endswith(suffix):
                path += suffix
        job = Job(case_ops.export_report, self.ws(), case.id, path, fmt, name="export report")
        return self._long_job(
            "case-export",
            f"exporting {Path(path).name}",
            job,
            lambda out: (self.message.emit(f"wrote {out}"), self.report_exported.emit(str(out))),
            "Export report",
        )

    # -- filing a compared pair -------------------------------------------------------------------------------------
    def add_pair(self, compare: Any) -> AddToCaseDialog | None:
        """ "Add to case" in the compare view: choose the case, then file the pair (see :meth:`file_pair`).

        When the comparison is a case item already, its verdict and notes are saved to it instead.
        """
        a, b = compare.paths
        bench = self.bench_of()
        if bench is None or not (a and b) or compare.explanation is None:
            return self._error("Add to case", "Compare two crops first (and wait for the explanation).")
        if compare.case_item is not None:
            self.record_item_verdict(compare, compare.verdict(), compare.notes.toPlainText())
            return None
        dialog = AddToCaseDialog(self, self.case_model.cases, self.current_id)

        def chosen() -> None:
            if dialog.is_new():
                self.file_pair(
                    compare,
                    None,
                    title=dialog.title_edit.text().strip(),
                    reference=dialog.reference_edit.text(),
                )
            else:
                self.file_pair(compare, dialog.case_box.currentData())

        dialog.accepted.connect(chosen)
        return self._open_dialog(dialog)

    def file_pair(
        self, compare: Any, case_id: int | None, title: str = "", reference: str = ""
    ) -> Job | None:
        """File the compare view's pair, with its explanation, verdict and notes, in a case (``None``: a new one).

        The compare view then holds the filed item, so that the pair can be annotated.
        """
        bench = self.bench_of()
        a, b = compare.paths
        if bench is None or not (a and b):
            return None
        verdict, notes, explanation = compare.verdict(), compare.notes.toPlainText(), compare.explanation

        def file(ws: Any) -> tuple[Any, Any]:
            target = case_id
            if target is None:
                target = case_ops.create_case(ws, title, reference, "", "").id
            item = case_ops.file_pair(bench, target, a, b, verdict, notes, explanation)
            return item, ws.cases.get(target)

        def done(result: tuple[Any, Any]) -> None:
            item, case = result
            # Only when the view still shows the pair that was filed.
            if compare.paths == [a, b]:
                compare.bind_item(item, case.title)
            self.current_id = case.id
            self._select_item_after = item.id
            self.message.emit(f"pair filed in '{case.title}' as item {item.position + 1}")
            self.reload()

        return self.writer.submit(file, on_done=done)

    def record_item_verdict(self, compare: Any, verdict: str | None, notes: str) -> bool:
        """Save a verdict given on an open case item to that item; False when no item is open.

        :attr:`item_verdict_saved` follows, with both crops' records.
        """
        item = compare.case_item
        if item is None:
            return False
        self._notes_timer.stop()
        self._notes_saved = (item.id, notes)
        title = compare.case_title

        def save(ws: Any) -> tuple[Any, Any, Any]:
            saved = case_ops.set_item_verdict(ws, item.id, verdict, notes)
            query, gallery = ws.crops.get_many([saved.query_crop_id, saved.gallery_crop_id])
            return saved, query, gallery

        def done(result: tuple[Any, Any, Any]) -> None:
            saved, query, gallery = result
            self.message.emit(f"verdict saved with item {saved.position + 1} of '{title}'")
            self.item_verdict_saved.emit(verdict or "", saved, query, gallery)

        self.writer.submit(save, on_done=done)
        return True

    # -- notes of an open item ------------------------------------------------------------------------------------
    def watch_notes(self, compare: Any) -> None:
        """Save what is typed in ``compare``'s notes while a case item is open there.

        A save follows :attr:`NOTES_DELAY_MS` after the last keystroke, and at once when the item is left
        (another pair or item shown, the workspace changed, the window closed: :meth:`flush_notes`).
        """
        self.compare = compare
        compare.notes.textChanged.connect(self._on_notes_edited)
        compare.item_closed.connect(self._on_item_closed)

    def _saved_notes(self, item: Any) -> str:
        if self._notes_saved is not None and self._notes_saved[0] == item.id:
            return self._notes_saved[1]
        return item.notes or ""

    def _on_notes_edited(self) -> None:
        item = self.compare.case_item if self.compare is not None else None
        if item is None or self.compare.notes.toPlainText() == self._saved_notes(item):
            # Not an item, or the text shown when it was opened (setPlainText also reports a change).
            self._notes_timer.stop()
            return
        self._notes_timer.start()

    def flush_notes(self) -> Job | None:
        """Save the open item's notes now when they differ from what was stored."""
        self._notes_timer.stop()
        item = self.compare.case_item if self.compare is not None else None
        if item is None:
            return None
        return self._save_notes(item, self.compare.verdict(), self.compare.notes.toPlainText())

    def _on_item_closed(self, item: Any, verdict: str | None, notes: str) -> None:
        self._notes_timer.stop()
        self._save_notes(item, verdict, notes)
        self._notes_saved = None  # the next item starts from its own stored notes

    def _save_notes(self, item: Any, verdict: str | None, notes: str) -> Job | None:
        if self.ws() is None or notes == self._saved_notes(item):
            return None
        self._notes_saved = (item.id, notes)

        def done(saved: Any) -> None:
            self.message.emit(f"notes saved with item {saved.position + 1}")
            self.notes_saved.emit(saved)

        # The verdict shown is the item's (each change of it is saved at once), so it is kept as it is.
        return self.writer.submit(case_ops.set_item_verdict, item.id, verdict, notes, on_done=done)

    # -- dialogs ----------------------------------------------------------------------------------------------------
    def _open_dialog(self, dialog: QDialog) -> QDialog:
        # Non-blocking, like every dialog of the window: workers keep reporting while it is open.
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.open()
        self.dialog = dialog
        return dialog

    def _ask(
        self,
        title: str,
        text: str,
        on_yes: Callable[[], Any],
        yes_text: str | None = None,
        cancel_by_default: bool = False,
    ) -> QMessageBox:
        """A Yes / Cancel question that does not block (:attr:`confirm_box`); ``on_yes`` runs on Yes."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        if cancel_by_default:
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        yes = box.button(QMessageBox.StandardButton.Yes)
        if yes_text:
            yes.setText(yes_text)
        yes.clicked.connect(on_yes)
        box.setObjectName("confirm")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
        self.confirm_box = box
        return box

    def _error(self, title: str, text: str) -> None:
        self.message.emit(f"{title}: {text}")
        self.last_message = show_error(self, title, text)
        return None

    def _no_workspace(self, title: str) -> None:
        return self._error(title, "Open or create a workspace first (File menu).")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _file_stem(title: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in title).strip().replace(" ", "_")
    return stem or "case"


def install_case_panel(window: Any) -> CasePanelWidget:
    """Put the case panel in the main window: a dock, a "Cases" menu, and the compare view's hooks.

    The compare view's annotations go on the window's undo stack and through its writer; "Add to case"
    opens the panel's case chooser; an item opened in the panel is shown in the compare view.
    """
    panel = CasePanelWidget(
        lambda: window.bench, window.io, window.runner, window.writer, window.progress, window.thumbnails
    )
    dock = window._dock("Cases", panel, Qt.DockWidgetArea.RightDockWidgetArea)
    window.tabifyDockWidget(window.results_dock, dock)
    # The results come first on a first start (their hint says how to search); a saved layout may differ.
    window.results_dock.raise_()
    window.cases_dock = dock
    compare = window.compare
    compare.bind_store(window.undo_stack, window.writer.submit)
    panel.watch_notes(compare)

    def show_item(opened: Any) -> None:
        window.show_compare()
        compare.show_item(opened)

    panel.item_opened.connect(show_item)
    panel.message.connect(lambda text: window.statusBar().showMessage(text, 8000))
    window.workspace_opened.connect(lambda _root: (compare.close_item(), panel.reload()))
    window.writer.written.connect(panel.schedule_reload)

    menu = window.menuBar().addMenu("&Cases")
    toggle = dock.toggleViewAction()
    toggle.setText("Case &panel")
    toggle.setShortcut("Ctrl+3")
    menu.addAction(toggle)
    menu.addSeparator()
    menu.addAction("&New case...", panel.new_case)
    menu.addAction("&Add the comparison to a case...", lambda: panel.add_pair(compare))
    menu.addSeparator()
    menu.addAction("&Save the case as .amdcase...", lambda: panel.save_case_file())
    menu.addAction("&Open / import .amdcase...", lambda: panel.import_case_file())
    menu.addAction("&Verify .amdcase...", lambda: panel.verify_case_file())
    menu.addSeparator()
    menu.addAction("Export &HTML report...", lambda: panel.export_report("html"))
    menu.addAction("Export &PDF report...", lambda: panel.export_report("pdf"))
    return panel
