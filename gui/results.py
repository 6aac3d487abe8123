"""The ranked results of a query: rank, thumbnail, distance, identity and camera of each hit, and the
attributes that carry most of its distance to the query (filled in by a worker once the results are in)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from amd.visual import top_share_text
from gui.gallery import CropRole, crop_tooltip
from gui.qt_util import ListTableModel
from gui.thumbnails import ThumbnailLoader
from gui.widgets.chart import format_distance
from gui.widgets.crop_view import CROP_MIME, crop_mime, drop_payload

if TYPE_CHECKING:
    from amd.explain import TopShare

COLUMNS = ("Rank", "Crop", "Distance", "Identity", "Top shares")
#: The column of the largest shares.
SHARES_COLUMN = 4
#: What the largest-shares column means (its header's tooltip).
SHARES_HELP = (
    "The two attributes that carry most of each result's distance to the query (the tooltip of a row gives "
    "three). \u2260: the interpreter's attribute classifier gives the two crops different answers on it."
)
#: Largest shares written in a row, one a line (its tooltip has one more).
SHARES_SHOWN = 2
#: What the query caption says while there is no query.
NO_QUERY = "Double-click a crop, or drop an image here, to search."
ROW_HEIGHT = 76
ICON = QSize(35, 70)


class ResultsModel(ListTableModel):
    """Rows of :class:`cli.workbench.ResultRow`, in rank order."""

    HEADERS = COLUMNS

    def __init__(self, thumbnails: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.thumbnails.loaded.connect(self._on_thumbnails_loaded)
        self._icons: dict[str, QPixmap] = {}
        #: Per row, its largest shares (:data:`amd.explain.TopShare`), largest first; ``None`` until known.
        self.shares: list[tuple[TopShare, ...] | None] = []
        #: Whether the shares are being worked out (the rows show an ellipsis meanwhile).
        self.shares_pending = False

    def _icon(self, crop: Any) -> QPixmap | None:
        # A pixmap decoration is painted at its own size (clipped by the cell): scale it once here.
        icon = self._icons.get(crop.sha256)
        if icon is None:
            pixmap = self.thumbnails.get(crop.sha256, crop.format)
            if pixmap is None or pixmap.isNull():
                return None
            icon = pixmap.scaled(
                ICON, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._icons[crop.sha256] = icon
        return icon

    def set_rows(self, rows: Sequence[Any]) -> None:
        self._icons.clear()
        self.shares = [None] * len(rows)
        self.shares_pending = False
        super().set_rows(rows)

    def set_shares_pending(self, pending: bool) -> None:
        self.shares_pending = pending
        self._shares_changed()

    def set_shares(self, rows: Sequence[Any], shares: Sequence[tuple[TopShare, ...]]) -> bool:
        """Show the largest shares of ``rows`` (the first ``len(shares)`` of them); False, and nothing
        shown, when the list shows other rows by now (a newer search)."""
        if list(rows) != list(self.rows):
            return False
        self.shares = [*shares, *[None] * (len(self.rows) - len(shares))]
        self.shares_pending = False
        self._shares_changed()
        return True

    def _shares_changed(self) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, SHARES_COLUMN), self.index(len(self.rows) - 1, SHARES_COLUMN))

    def shares_text(self, row: int) -> str:
        """What the row's last column says: its largest shares, an ellipsis while they are worked out."""
        top = self.shares[row] if row < len(self.shares) else None
        if top is None:
            return "\u2026" if self.shares_pending else ""
        return "\n".join(top_share_text(*share) for share in top[:SHARES_SHOWN])

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                str(row.rank),
                None,
                format_distance(row.distance),
                # As under the gallery's crops: the identity, and the camera on the line below.
                f"{row.crop.identity or '-'}\n{row.crop.camera or '-'}",
                self.shares_text(index.row()),
            )[col]
        if role == Qt.ItemDataRole.DecorationRole and col == 1:
            return self._icon(row.crop)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            top = self.shares[index.row()] if index.row() < len(self.shares) else None
            if col == SHARES_COLUMN and top:
                lines = [
                    f"{label}: {100 * share:.1f}% of the distance"
                    + (", and the crops differ on it" if differ else "")
                    for label, share, differ in top
                ]
                return (
                    "Largest shares of the distance to the query:\n"
                    + "\n".join(lines)
                    + "\nEnter compares the pair."
                )
            return crop_tooltip(row.crop)
        if role == CropRole:
            return row.crop
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            if section == SHARES_COLUMN:
                return SHARES_HELP
        return super().headerData(section, orientation, role)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [CROP_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        return crop_mime(self.rows[indexes[0].row()].crop.sha256) if indexes else QMimeData()

    def _on_thumbnails_loaded(self, shas: list[str]) -> None:
        wanted = set(shas)
        rows = [i for i, r in enumerate(self.rows) if r.crop.sha256 in wanted]
        if rows:
            self.dataChanged.emit(self.index(min(rows), 1), self.index(max(rows), 1))


class ResultsTableView(QTableView):
    """Enter asks for a comparison with the query; an image dropped here becomes the query."""

    compare_requested = Signal()
    query_dropped = Signal(str, str)
    #: Keys handled in :meth:`keyPressEvent`, for Help > Keyboard shortcuts.
    KEY_HELP = (("Compare the query with the selected result", (Qt.Key.Key_Return, Qt.Key.Key_Enter)),)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setIconSize(ICON)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.setAlternatingRowColors(True)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        # Drops land on the viewport, which does not inherit the view's setting.
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setShowGrid(False)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.compare_requested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.source() is not self and drop_payload(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.source() is not self and drop_payload(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        payload = drop_payload(event.mimeData())
        if payload is None or event.source() is self:
            event.ignore()
            return
        event.acceptProposedAction()
        self.query_dropped.emit(*payload)


class ResultsWidget(QWidget):
    """The query (thumbnail and caption), the number of results wanted and the ranked list.

    Signals:
        compare_requested(crop): compare the query with this result.
        query_dropped(kind, value): a crop (``"crop"``, sha256) or file (``"file"``, path) was dropped.
        search_requested(): run the query again (another K).
    """

    compare_requested = Signal(object)
    query_dropped = Signal(str, str)
    search_requested = Signal()

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ResultsModel(thumbnails, self)
        self.query_label = QLabel()
        self.query_label.setFixedSize(40, 80)
        self.query_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_label.setStyleSheet("QLabel { background: #e1e1e4; }")
        self.caption = QLabel(NO_QUERY)
        self.caption.setWordWrap(True)
        self.top_box = QSpinBox()
        self.top_box.setRange(1, 500)
        self.top_box.setValue(20)
        self.top_box.setPrefix("top ")
        self.again = QPushButton("Search")
        self.again.setToolTip(
            "Search for this number of results with the query, or with the crop selected in the gallery"
        )
        self.again.clicked.connect(self._on_search_clicked)
        head = QHBoxLayout()
        head.addWidget(self.query_label)
        head.addWidget(self.caption, 1)
        tools = QVBoxLayout()
        tools.addWidget(self.top_box)
        tools.addWidget(self.again)
        head.addLayout(tools)
        self.view = ResultsTableView()
        self.view.setModel(self.model)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(SHARES_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        self.view.compare_requested.connect(self._on_view_compare_requested)
        self.view.doubleClicked.connect(lambda _i: self._on_view_compare_requested())
        self.view.query_dropped.connect(self.query_dropped)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(head)
        layout.addWidget(self.view, 1)
        self.query: Any = None
        self.has_query = False

    def set_query(self, caption: str, pixmap: QPixmap | None) -> None:
        """Show the query; the caption :data:`NO_QUERY` (or an empty one) means there is none."""
        self.has_query = bool(caption) and caption != NO_QUERY
        self.caption.setText(caption or NO_QUERY)
        if pixmap is not None and not pixmap.isNull():
            self.query_label.setPixmap(
                pixmap.scaled(
                    self.query_label.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        else:
            self.query_label.clear()

    def clear_query(self) -> None:
        self.set_query(NO_QUERY, None)

    def _on_search_clicked(self) -> None:
        # Without a query the window searches the crop selected in the gallery, if any, which sets one.
        self.search_requested.emit()
        if not self.has_query:
            self.caption.setText(
                "<b>Pick a query first</b>: select or double-click a crop in the gallery, or drop an "
                "image here, then Search."
            )

    def set_results(self, rows: Sequence[Any]) -> None:
        self.model.set_rows(rows)
        if rows:
            self.view.selectRow(0)

    def current_crop(self) -> Any:
        index = self.view.currentIndex()
        return self.model.data(index, CropRole) if index.isValid() else None

    def _on_view_compare_requested(self) -> None:
        crop = self.current_crop()
        if crop is not None:
            self.compare_requested.emit(crop)
