"""The virtualised crop gallery: a list model that pages crop records in on a worker, and its view.

The model knows only the number of crops up front; a row's record is fetched with its page (on a
worker) the first time the view asks for it, and its thumbnail through :class:`ThumbnailLoader`.
The view asks only for the rows on screen (uniform item sizes), so 100,000 crops cost what a screenful
costs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QKeyEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from gui.qt_util import FlowLayout
from gui.thumbnails import ThumbnailLoader
from gui.widgets.crop_view import CROP_MIME, crop_mime
from gui.workers import Job, JobRunner, guarded

PAGE = 256
#: Pages kept in memory (about 50,000 records); the farthest from the last used are dropped first.
MAX_PAGES = 200
CropRole = Qt.ItemDataRole.UserRole + 1
CELL = QSize(92, 176)
THUMB = QSize(64, 128)


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery shows.

    Attributes:
        camera_id: Only this camera.
        identity_id: Only this identity.
        unlabelled: Only crops without an identity.
        attribute: Only crops with this attribute (its name in the schema): known from their identity's
            labels, or predicted by the interpreter ``predicted_by``.
        predicted_by: The interpreter whose stored predictions (probability >= ``PREDICTED_AT``) decide
            ``attribute``; ``None``: the identities' known attributes decide.
        group_by_identity: Order crops by identity name (unlabelled last) instead of import order.
    """

    camera_id: int | None = None
    identity_id: int | None = None
    unlabelled: bool = False
    attribute: str | None = None
    predicted_by: int | None = None
    group_by_identity: bool = False

    @property
    def needs_id_list(self) -> bool:
        return self.attribute is not None or self.group_by_identity


#: A crop has a predicted attribute from this probability on.
PREDICTED_AT = 0.5


def gallery_source(
    ws: Any, flt: GalleryFilter, should_stop: Callable[[], bool]
) -> tuple[int, list[int] | None]:
    """(number of crops, their ids in display order or ``None`` when the store pages them itself).

    Runs on a worker: grouping and the known-attribute filter read one id list per identity, the
    predicted-attribute filter reads the interpreter's stored predictions.
    """
    if not flt.needs_id_list:
        return ws.crops.count(
            camera_id=flt.camera_id, identity_id=flt.identity_id, unlabelled=flt.unlabelled
        ), None
    predicted = flt.attribute is not None and flt.predicted_by is not None
    allowed: set[int] | None = None
    if predicted:
        ids = ws.crops.predicted_ids(
            flt.predicted_by,
            flt.attribute,
            PREDICTED_AT,
            camera_id=flt.camera_id,
            identity_id=flt.identity_id,
            unlabelled=flt.unlabelled,
        )
        if not flt.group_by_identity:
            return len(ids), ids
        allowed = set(ids)
    identities = ws.identities.list()
    if flt.identity_id is not None:
        identities = [i for i in identities if i.id == flt.identity_id]
    if flt.attribute is not None and not predicted:
        identities = [i for i in identities if _has_attribute(i.attributes, flt.attribute)]
    ids = []
    if not flt.unlabelled:
        for identity in identities:
            if should_stop():
                return 0, []
            ids.extend(ws.crops.ids(camera_id=flt.camera_id, identity_id=identity.id))
    if (flt.attribute is None or predicted) and flt.identity_id is None:
        # Unlabelled crops last (a known attribute belongs to an identity, so it never selects them).
        ids.extend(ws.crops.ids(camera_id=flt.camera_id, unlabelled=True))
    if allowed is not None:
        ids = [i for i in ids if i in allowed]
    return len(ids), ids


def _has_attribute(attributes: dict[str, Any] | None, name: str) -> bool:
    values = (attributes or {}).get("values") or {}
    return values.get(name) == 1


def fetch_page(ws: Any, flt: GalleryFilter, ids: list[int] | None, page: int) -> list[Any]:
    """The crop records of one page (runs on a worker)."""
    offset = page * PAGE
    if ids is not None:
        return ws.crops.get_many(ids[offset : offset + PAGE])
    return ws.crops.page(
        offset, PAGE, camera_id=flt.camera_id, identity_id=flt.identity_id, unlabelled=flt.unlabelled
    )


def crop_caption(crop: Any) -> str:
    return crop.identity or "unlabelled"


def crop_tooltip(crop: Any) -> str:
    lines = [
        f"crop {crop.id}  ({crop.width}x{crop.height} {crop.format})",
        f"camera: {crop.camera or '-'}",
        f"identity: {crop.identity or 'unlabelled'}",
    ]
    if crop.time_text:
        lines.append(f"time: {crop.time_text}")
    box = getattr(crop, "box", None)
    if box is not None:
        x, y, w, h = box
        lines.append(f"frame {crop.frame}, box {w}x{h} at ({x}, {y})")
    lines.append(crop.source_path)
    return "\n".join(lines)


class GalleryModel(QAbstractListModel):
    """Crops of a workspace, paged in on demand.

    Args:
        runner: Runs the page queries.
        thumbnails: Supplies the thumbnails.

    Signals:
        count_changed(int): the number of crops under the current filter is known.
        loading_changed(bool): pages are being fetched.
        failed(str): the crops under the filter could not be listed (the message says why).
    """

    count_changed = Signal(int)
    loading_changed = Signal(bool)
    failed = Signal(str)

    def __init__(self, runner: JobRunner, thumbnails: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.thumbnails = thumbnails
        self.thumbnails.loaded.connect(self._on_thumbnails_loaded)
        self.ws: Any = None
        self.filter = GalleryFilter()
        self._count = 0
        #: The crops under the filter are being counted (the row count is not known yet).
        self.loading = False
        self._ids: list[int] | None = None
        self._pages: OrderedDict[int, list[Any]] = OrderedDict()
        self._requested: set[int] = set()
        self._generation = 0
        self._row_of_sha: dict[str, int] = {}

    # -- source -------------------------------------------------------------------------------------------
    def set_workspace(self, ws: Any) -> None:
        self.ws = ws
        self.set_filter(GalleryFilter())

    def set_filter(self, flt: GalleryFilter) -> None:
        """Show the crops under ``flt``: the count comes first (on a worker), the records page by page."""
        self.filter = flt
        self._generation += 1
        self.beginResetModel()
        self._count, self._ids = 0, None
        self._pages.clear()
        self._requested.clear()
        self._row_of_sha.clear()
        self.endResetModel()
        if self.ws is None:
            self.loading = False
            self.count_changed.emit(0)
            return
        job = Job(gallery_source, self.ws, flt, name="gallery")
        g = self._generation
        job.signals.succeeded.connect(guarded(self, lambda result, g=g: self._on_source(result, g)))
        job.signals.failed.connect(guarded(self, lambda message, g=g: self._on_source_failed(message, g)))
        self.loading = True
        self.loading_changed.emit(True)
        self.runner.start("gallery-source", job)

    def refresh(self) -> None:
        """Re-read the records (identities changed) keeping the rows and the scroll position."""
        if self.filter.needs_id_list or self.filter.identity_id is not None or self.filter.unlabelled:
            self.set_filter(self.filter)
            return
        # The old records stay on screen until their page comes back: no flicker.
        self._generation += 1
        self._requested.clear()
        for page in list(self._pages):
            self._request(page)

    def _on_source(self, result: tuple[int, list[int] | None], generation: int) -> None:
        if generation != self._generation:
            return
        count, ids = result
        self.beginResetModel()
        self._count, self._ids = count, ids
        self.endResetModel()
        self.loading = False
        self.loading_changed.emit(False)
        self.count_changed.emit(count)

    def _on_source_failed(self, message: str, generation: int) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self.loading_changed.emit(False)
        self.count_changed.emit(0)
        self.failed.emit(message)

    def _request(self, page: int) -> None:
        if page in self._requested or self.ws is None:
            return
        self._requested.add(page)
        job = Job(fetch_page, self.ws, self.filter, self._ids, page, name="gallery page")
        g = self._generation
        job.signals.succeeded.connect(guarded(self, lambda crops, g=g, p=page: self._on_page(p, crops, g)))
        # One key per page: pages of one screen load together, none cancels another.
        self.runner.start(f"gallery-page-{g}-{page}", job)

    def _on_page(self, page: int, crops: list[Any], generation: int) -> None:
        if generation != self._generation:
            return
        self._requested.discard(page)
        self._pages[page] = crops
        self._pages.move_to_end(page)
        while len(self._pages) > MAX_PAGES:
            old, dropped = self._pages.popitem(last=False)
            for crop in dropped:
                self._row_of_sha.pop(crop.sha256, None)
        first = page * PAGE
        for i, crop in enumerate(crops):
            self._row_of_sha[crop.sha256] = first + i
        if crops:
            self.dataChanged.emit(self.index(first), self.index(min(first + len(crops), self._count) - 1))

    def _on_thumbnails_loaded(self, shas: list[str]) -> None:
        rows = [self._row_of_sha[s] for s in shas if s in self._row_of_sha]
        if rows:
            role = [Qt.ItemDataRole.DecorationRole]
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)), role)

    # -- access -------------------------------------------------------------------------------------------
    def crop(self, row: int) -> Any:
        """The record of ``row``, or ``None`` while its page is loading (the page is requested)."""
        if not 0 <= row < self._count:
            return None
        page = row // PAGE
        crops = self._pages.get(page)
        if crops is None:
            self._request(page)
            return None
        self._pages.move_to_end(page)
        offset = row - page * PAGE
        return crops[offset] if offset < len(crops) else None

    def crops(self, rows: Sequence[int]) -> list[Any]:
        return [c for c in (self.crop(r) for r in rows) if c is not None]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        crop = self.crop(index.row())
        if crop is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return crop_caption(crop)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(crop.sha256, crop.format)
        if role == Qt.ItemDataRole.ToolTipRole:
            return crop_tooltip(crop)
        if role == CropRole:
            return crop
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [CROP_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        crops = [c for c in (self.crop(i.row()) for i in indexes) if c is not None]
        return crop_mime(crops[0].sha256) if crops else QMimeData()

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction


class CropItemDelegate(QStyledItemDelegate):
    """Paints a thumbnail with its caption in a fixed cell (no per-item layout work)."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        painter.save()
        rect: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect.adjusted(1, 1, -1, -1), option.palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect.adjusted(1, 1, -1, -1), QColor(0, 0, 0, 18))
        thumb = QRect(
            rect.x() + (rect.width() - THUMB.width()) // 2, rect.y() + 6, THUMB.width(), THUMB.height()
        )
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None and not pixmap.isNull():
            scaled = pixmap.size().scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(thumb.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(thumb, QColor(225, 225, 228))
        crop = index.data(CropRole)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        colour = option.palette.color(role)
        metrics = option.fontMetrics
        line = metrics.height()
        width = rect.width() - 6
        top = thumb.bottom() + 3
        painter.setPen(colour)
        name = index.data(Qt.ItemDataRole.DisplayRole) or ""
        centre = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        painter.drawText(
            QRect(rect.x() + 3, top, width, line),
            centre,
            metrics.elidedText(name, Qt.TextElideMode.ElideRight, width),
        )
        if crop is not None and crop.camera:
            # The camera in a quieter colour under the identity: the identity is what is read first.
            colour.setAlpha(150)
            painter.setPen(colour)
            camera = metrics.elidedText(crop.camera, Qt.TextElideMode.ElideRight, width)
            painter.drawText(QRect(rect.x() + 3, top + line, width, line), centre, camera)
        painter.restore()


class CropGridView(QListView):
    """A wrapping grid of crops; Enter asks for a comparison, dropped files ask for an import.

    Signals:
        compare_requested(): Enter or Return was pressed.
        files_dropped(list): files or folders were dropped from outside.
    """

    compare_requested = Signal()
    files_dropped = Signal(list)
    #: Keys handled in :meth:`keyPressEvent`, for Help > Keyboard shortcuts.
    KEY_HELP = (("Compare the two selected crops", (Qt.Key.Key_Return, Qt.Key.Key_Enter)),)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        # Static movement keeps the list-mode layout engine, which lays out uniform items lazily.
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setGridSize(CELL)
        self.setIconSize(THUMB)
        self.setSpacing(0)
        self.setWrapping(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setItemDelegate(CropItemDelegate(self))
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        # Drops land on the viewport, which does not inherit the view's setting.
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL.height() // 3)
        #: What the window is doing to fill an empty grid ("Opening ..."): said in place of "No workspace".
        self.busy_text = ""

    def set_busy_text(self, text: str) -> None:
        self.busy_text = text
        self.viewport().update()

    def placeholder_text(self) -> str:
        """What the empty grid says: why it is empty and what to do ("" while crops are shown or counted)."""
        model = self.model()
        if model is not None and model.rowCount() > 0:
            return ""
        if not isinstance(model, GalleryModel) or model.ws is None:
            return self.busy_text or "No workspace open.\nFile > New workspace or File > Open workspace."
        if model.loading:
            return ""
        flt = model.filter
        if flt != GalleryFilter(group_by_identity=flt.group_by_identity):  # grouping hides no crop
            return "No crops match the filters."
        return "This workspace has no crops yet.\nDrop images or folders here, or File > Import images."

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.compare_requested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        text = self.placeholder_text()
        if text:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(120, 120, 120))
            rect = self.viewport().rect().adjusted(8, 8, -8, -8)
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(rect, int(flags), text)
            painter.end()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.source() is None and event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.source() is None and event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            # A crop dragged inside the gallery is not moved anywhere.
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        if event.source() is None and event.mimeData().hasUrls():
            paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
            event.acceptProposedAction()
            if paths:
                self.files_dropped.emit(paths)
            return
        event.ignore()

    def selected_rows(self) -> list[int]:
        rows = sorted({i.row() for i in self.selectionModel().selectedIndexes()})
        current = self.currentIndex()
        if not rows and current.isValid():
            rows = [current.row()]
        return rows


class GalleryWidget(QWidget):
    """Filters above the crop grid.

    Signals:
        filter_changed(GalleryFilter): the analyst changed a filter.
    """

    filter_changed = Signal(object)

    def __init__(self, model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.camera_box = QComboBox()
        self.camera_box.setMinimumContentsLength(10)
        self.identity_box = QComboBox()
        self.identity_box.setMinimumContentsLength(12)
        self.attribute_box = QComboBox()
        self.attribute_box.setMinimumContentsLength(14)
        self.source_box = QComboBox()
        self.source_box.setMinimumContentsLength(8)
        self.source_box.setToolTip(
            "known: the attribute labels of the crop's identity\n"
            f"predicted: the interpreter's probability is {PREDICTED_AT:g} or more"
        )
        self.group_box = QCheckBox("Group by identity")
        self.count_label = QLabel("")
        for box in (self.camera_box, self.identity_box, self.attribute_box, self.source_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.currentIndexChanged.connect(self._on_filter_edited)
        self.group_box.toggled.connect(self._on_filter_edited)
        # Each label stays with its box; the bar wraps to a second row on a narrow window.
        self.filter_bar = QWidget()
        bar = FlowLayout(self.filter_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        for widgets in (
            (QLabel("Camera"), self.camera_box),
            (QLabel("Identity"), self.identity_box),
            (QLabel("Attribute"), self.attribute_box, self.source_box),
            (self.group_box,),
            (self.count_label,),
        ):
            group = QWidget()
            row = QHBoxLayout(group)
            row.setContentsMargins(0, 0, 6, 0)
            for w in widgets:
                row.addWidget(w)
            bar.addWidget(group)
        self.view = CropGridView()
        self.view.setModel(model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.view, 1)
        model.count_changed.connect(self._on_count_changed)
        self.set_choices([], [], [])
        self.set_predictor(None)

    def set_choices(
        self,
        cameras: Sequence[tuple[str, int]],
        identities: Sequence[tuple[str, int]],
        attributes: Sequence[tuple[str, str]],
    ) -> None:
        """Fill the filter boxes, keeping the current choice when it is still offered."""
        for box, items, first in (
            (self.camera_box, cameras, [("All cameras", None)]),
            (self.identity_box, identities, [("All identities", None), ("Unlabelled", -1)]),
            (self.attribute_box, attributes, [("Any attribute", None)]),
        ):
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            for text, data in [*first, *items]:
                box.addItem(text, data)
            pos = box.findData(current) if current is not None else 0
            box.setCurrentIndex(max(pos, 0))
            box.blockSignals(False)

    def set_predictor(self, interpreter_id: int | None, reason: str = "") -> None:
        """Offer the filter by predicted attribute with this interpreter's stored predictions (or not).

        Args:
            interpreter_id: The interpreter, or ``None`` when no predictions are stored.
            reason: Why there are none, for the tooltip of the disabled choice.
        """
        current = self.source_box.currentIndex()
        self.source_box.blockSignals(True)
        self.source_box.clear()
        self.source_box.addItem("known", None)
        self.source_box.addItem("predicted", interpreter_id)
        item = self.source_box.model().item(1)
        item.setEnabled(interpreter_id is not None)
        item.setToolTip(
            f"the interpreter's probability is {PREDICTED_AT:g} or more"
            if interpreter_id is not None
            else reason or "no attribute predictions are stored in this workspace"
        )
        self.source_box.setCurrentIndex(1 if current == 1 and interpreter_id is not None else 0)
        self.source_box.blockSignals(False)
        if current == 1 and interpreter_id is None:
            self._on_filter_edited()

    def show_predicted(self, attribute: str | None) -> bool:
        """Filter by the predicted ``attribute`` (``None``: any); false when predictions are not available."""
        if self.source_box.itemData(1) is None:
            return False
        pos = self.attribute_box.findData(attribute) if attribute is not None else 0
        if pos < 0:
            return False
        for box in (self.source_box, self.attribute_box):
            box.blockSignals(True)
        self.source_box.setCurrentIndex(1)
        self.attribute_box.setCurrentIndex(pos)
        for box in (self.source_box, self.attribute_box):
            box.blockSignals(False)
        self._on_filter_edited()
        return True

    def current_filter(self) -> GalleryFilter:
        identity = self.identity_box.currentData()
        attribute = self.attribute_box.currentData()
        return GalleryFilter(
            camera_id=self.camera_box.currentData(),
            identity_id=identity if identity not in (None, -1) else None,
            unlabelled=identity == -1,
            attribute=attribute,
            predicted_by=self.source_box.currentData() if attribute is not None else None,
            group_by_identity=self.group_box.isChecked(),
        )

    def filter_state(self) -> dict[str, Any]:
        """The filters as plain data, to be kept between sessions (see :meth:`restore_filter_state`).

        ``identity`` is -1 for "Unlabelled"; ``source`` is ``known`` or ``predicted``.
        """
        return {
            "camera": self.camera_box.currentData(),
            "identity": self.identity_box.currentData(),
            "attribute": self.attribute_box.currentData(),
            "source": "predicted" if self.source_box.currentIndex() == 1 else "known",
            "group": self.group_box.isChecked(),
        }

    def restore_filter_state(self, state: dict[str, Any]) -> GalleryFilter:
        """Set the filters from :meth:`filter_state`'s data and show the crops they select.

        A camera, identity or attribute that is no longer offered falls back to "all", and "predicted"
        to "known" when no predictions are stored; a filter missing from ``state`` is reset.

        Returns:
            The filter now in force.
        """
        boxes = (self.camera_box, self.identity_box, self.attribute_box, self.source_box, self.group_box)
        for box in boxes:
            box.blockSignals(True)
        try:
            for box, key in (
                (self.camera_box, "camera"),
                (self.identity_box, "identity"),
                (self.attribute_box, "attribute"),
            ):
                value = state.get(key)
                pos = box.findData(value) if value is not None else 0
                box.setCurrentIndex(max(pos, 0))
            predicted = state.get("source") == "predicted" and self.source_box.itemData(1) is not None
            self.source_box.setCurrentIndex(1 if predicted else 0)
            self.group_box.setChecked(bool(state.get("group", False)))
        finally:
            for box in boxes:
                box.blockSignals(False)
        flt = self.current_filter()
        if flt != self.model.filter:  # the same filter is not loaded twice (pages would be dropped)
            self._on_filter_edited()
        return flt

    def show_identity(self, identity_id: int | None) -> None:
        pos = self.identity_box.findData(identity_id)
        if pos >= 0:
            self.identity_box.setCurrentIndex(pos)

    def _on_filter_edited(self, *_: object) -> None:
        flt = self.current_filter()
        self.model.set_filter(flt)
        self.filter_changed.emit(flt)

    def _on_count_changed(self, count: int) -> None:
        self.count_label.setText(f"{count:,} crops")
        self.view.viewport().update()

    def selected_crops(self) -> list[Any]:
        return self.model.crops(self.view.selected_rows())
