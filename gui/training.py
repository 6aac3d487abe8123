"""The training panel: configure, start, pause, cancel and resume training runs, watch them learn, register
the result.

The work is done by :mod:`cli.training_jobs` on a worker thread; its events (run created, start, step,
evaluation, log lines) reach this window only as queued signals and are drawn by a 10 Hz timer, so a fast
run cannot flood the UI thread. The window opens its own connection to the workspace, so that it keeps
working while the main window switches workspaces, and closing it (or the main window) cancels a live run,
which can then be resumed from its last finished epoch.
"""

from __future__ import annotations

import dataclasses
import html
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QEvent, QModelIndex, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cli import training_jobs as tj
from gui.qt_util import ListTableModel, rgb_to_pixmap
from gui.workers import Job, JobRunner, guarded

#: How often the curves, the progress line and the log are redrawn while a run sends events.
REFRESH_MS = 100
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
#: Evaluation figures drawn on the metrics plot (ADRE, a percentage, has its own plot).
PLOTTED_METRICS = ("mAP", "rank1", "target_mAP", "interpreter_mAP", "x_map_e", "x_map_c")
ERROR_STYLE = "color: #c62828;"
#: A required field not filled in yet is a hint, not an error.
HINT_STYLE = "color: #6b6b6b;"
#: Fields whose reason, while they are blank, only says what to choose.
CHOOSE_FIELDS = {"data": "the dataset folder", "target": "the target model"}
#: The loss term drawn against its own axis (on the right): it is the weighted sum of the others, often
#: ten times larger, and would flatten them on a shared axis.
TOTAL_LOSS = "total"

# ---------------------------------------------------------------------- worker functions (no Qt)


def open_panel_workspace(root: str) -> tuple[Any, int, list[tuple[str, str]]]:
    """The workspace, its number of labelled identities and its registered targets (name, file)."""
    from db.workspace import Workspace

    ws = Workspace.open(root)
    try:
        labelled = sum(1 for i in ws.identities.list() if i.crop_count)
        targets = [
            (m.name, m.file_path)
            for m in reversed(ws.models.list("target"))
            if m.file_path and Path(m.file_path).is_file()
        ]
    except BaseException:
        ws.close()
        raise
    return ws, labelled, targets


def run_job(
    ws: Any,
    control: tj.RunControl,
    emit: Any,
    log: Any,
    form: tj.TrainingForm | None = None,
    labelled: int | None = None,
    cuda: bool = False,
    run_id: int | None = None,
) -> tj.RunOutcome:
    """Create a run from ``form`` (or take run ``run_id`` to resume it), replay its log so far, and run it."""
    if run_id is None:
        run = tj.create_run(ws, form, labelled, cuda)
        log(f"run {run.id} recorded in {run.output_dir}")
    else:
        run = ws.runs.get(run_id)
        log(f"resuming run {run.id} ({run.output_dir})")
    emit({"type": "created", "run_id": run.id, "kind": run.kind})
    emit({"type": "history", "events": tj.read_log(run)})
    return tj.execute_run(ws, run.id, control, on_event=emit, on_log=log)


def run_details(ws: Any, run_id: int) -> tuple[Any, list[dict[str, Any]]]:
    """A run's record and its logged events (for showing a run that is not live)."""
    run = ws.runs.get(run_id)
    return run, tj.read_log(run)


# ---------------------------------------------------------------------- models


class CountAxis(pg.AxisItem):
    """An axis of counts (iterations, epochs): ticks only on whole numbers, never at 1.5 epochs."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802, N803
        levels = [
            (spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1
        ]
        return levels or [(1.0, 0.0)]


class RunTableModel(ListTableModel):
    """The workspace's training runs (:class:`cli.training_jobs.RunRow`), newest first."""

    HEADERS = ("Run", "Kind", "Status", "Epochs", "Metrics", "Created", "Registered")

    def row(self, index: int) -> tj.RunRow | None:
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.row(index.row())
        if r is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            values = (r.name, r.kind, r.status, r.epochs, r.metrics, r.created, "yes" if r.registered else "")
            return values[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            # The figures are elided in a narrow column: their tooltip has them in full.
            return f"{r.metrics}\n{r.folder}" if index.column() == 4 and r.metrics else r.folder
        return None


# ---------------------------------------------------------------------- the window


class _Signals(QObject):
    """Emitted from the training thread, delivered queued to the window."""

    event_received = Signal(object)
    log_received = Signal(str)


def pair_picture(a: np.ndarray, b: np.ndarray, height: int = 128) -> np.ndarray:
    """Two crops side by side at one height with a white gap (nearest-neighbour scaling)."""

    def scaled(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        width = max(1, round(w * height / h))
        rows = np.minimum((np.arange(height) * h / height).astype(int), h - 1)
        cols = np.minimum((np.arange(width) * w / width).astype(int), w - 1)
        return img[rows][:, cols]

    gap = np.full((height, 6, 3), 255, dtype=np.uint8)
    return np.concatenate([scaled(a), gap, scaled(b)], axis=1)


class TrainingWindow(QWidget):
    """Train target models and distil interpreters in a workspace.

    Args:
        root: The workspace folder (``None``: none yet; see :meth:`set_workspace`).
        parent: The main window (the panel is a window of its own).

    Signals:
        workspace_ready(str): the workspace is open and its runs are listed.
        run_finished(object): a run ended (a :class:`cli.training_jobs.RunOutcome`, stopped or not).
        run_failed(str): a run failed; the reason.
        model_registered(object): a run's model was added to the workspace (a ``ModelInfo``).
        samples_ready(list): sample explanations of an interpreter run are shown.
    """

    workspace_ready = Signal(str)
    run_finished = Signal(object)
    run_failed = Signal(str)
    model_registered = Signal(object)
    samples_ready = Signal(list)

    def __init__(self, root: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("TrainingWindow")
        self.setWindowTitle("Training")
        self.ws: Any = None
        self.root: str | None = None
        self.labelled: int | None = None
        self.cuda = self._cuda_available()
        self.runner = JobRunner(self, max_threads=2)
        self.control: tj.RunControl | None = None
        self.job: Job | None = None
        self.live_run: int | None = None
        self.live_kind = "target"
        self.shown_run: int | None = None
        self.progress = tj.RunProgress()
        self.signals = _Signals(self)
        self.signals.event_received.connect(self._on_event_received)
        self.signals.log_received.connect(self._on_log_received)
        self._pending: list[dict[str, Any]] = []
        self._pending_log: list[str] = []
        self._pause_started: float | None = None
        self.steps: list[dict[str, Any]] = []
        self.evals: list[dict[str, Any]] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._proposed_targets: set[str] = set()
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._flush)
        self.timer.start()
        self.set_form(tj.form_defaults("target"))
        if root is not None:
            self.set_workspace(str(root))

    @staticmethod
    def _cuda_available() -> bool:
        import torch

        return bool(torch.cuda.is_available())

    # ------------------------------------------------------------------ construction

    def _build(self) -> None:
        self.fields: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self._rows: dict[str, list[QWidget]] = {}
        form_box = QGroupBox("New run")
        grid = QGridLayout(form_box)
        grid.setColumnStretch(1, 1)

        def combo(items: list[tuple[str, str]]) -> QComboBox:
            box = shrinkable(QComboBox())
            for label, value in items:
                box.addItem(label, value)
            return box

        def shrinkable(box: QComboBox) -> QComboBox:
            # A box as wide as its longest entry would set the form's (and the window's) minimum width.
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
            return box

        self.kind_box = combo([("target model", "target"), ("interpreter", "interpreter")])
        self.format_box = combo([(tj.FORMAT_LABELS[f], f) for f in tj.FORMATS])
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("dataset folder")
        self.data_browse = QPushButton("Browse...")
        self.data_browse.clicked.connect(self._on_browse_data)
        self.arch_box = combo([(a, a) for a in tj.backbones()])
        self.size_edit = QLineEdit()
        self.target_edit = QLineEdit()
        self.target_edit.setPlaceholderText("target model file")
        self.target_box = shrinkable(QComboBox())
        self.target_box.setToolTip("the workspace's registered target models")
        self.target_box.activated.connect(self._on_target_chosen)
        self.target_browse = QPushButton("Browse...")
        self.target_browse.clicked.connect(self._on_browse_target)
        self.map_box = combo([(m, m) for m in tj.map_modes()])
        devices = [("auto", "auto"), ("CPU", "cpu")] + ([("CUDA GPU", "cuda")] if self.cuda else [])
        self.device_box = combo(devices)
        edits = {name: QLineEdit() for name in (
            "epochs", "p", "k", "lr", "triplet_weight", "label_smoothing", "md_weight", "prior_weight",
            "aux_weight", "eval_every", "log_every", "workers",
        )}  # fmt: skip
        self.edits = edits

        def pair(*widgets: QWidget) -> QWidget:
            box = QWidget()
            lay = QHBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            for w in widgets:
                lay.addWidget(w, 1 if isinstance(w, QLineEdit | QComboBox) else 0)
            return box

        layout = [
            ("kind", "Kind", self.kind_box, self.kind_box),
            ("format", "Dataset", self.format_box, self.format_box),
            ("data", "Folder", pair(self.data_edit, self.data_browse), self.data_edit),
            ("arch", "Backbone", self.arch_box, self.arch_box),
            ("size", "Input size", self.size_edit, self.size_edit),
            ("target", "Target model", pair(self.target_box, self.target_browse), self.target_edit),
            ("map_mode", "Maps", self.map_box, self.map_box),
            ("epochs", "Epochs", edits["epochs"], edits["epochs"]),
            ("p", "Identities per batch (P)", edits["p"], edits["p"]),
            ("k", "Images per identity (K)", edits["k"], edits["k"]),
            ("lr", "Learning rate", edits["lr"], edits["lr"]),
            ("triplet_weight", "Triplet loss weight", edits["triplet_weight"], edits["triplet_weight"]),
            ("label_smoothing", "Label smoothing", edits["label_smoothing"], edits["label_smoothing"]),
            ("md_weight", "Distillation weight", edits["md_weight"], edits["md_weight"]),
            ("prior_weight", "Prior weight", edits["prior_weight"], edits["prior_weight"]),
            ("aux_weight", "Attribute classifier weight", edits["aux_weight"], edits["aux_weight"]),
            ("eval_every", "Evaluate every (epochs)", edits["eval_every"], edits["eval_every"]),
            ("log_every", "Log every (steps)", edits["log_every"], edits["log_every"]),
            ("workers", "Data loading processes", edits["workers"], edits["workers"]),
            ("device", "Device", self.device_box, self.device_box),
        ]
        row = 0
        for name, text, widget, value_widget in layout:
            label = QLabel(text)
            error = QLabel()
            error.setStyleSheet(ERROR_STYLE)
            error.setObjectName(f"error_{name}")
            error.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            error.setWordWrap(True)
            grid.addWidget(label, row, 0)
            grid.addWidget(widget, row, 1)
            if name == "target":
                row += 1
                grid.addWidget(self.target_edit, row, 1)
            # The reason spans the row under its field, wrapped when the form is narrow.
            grid.addWidget(error, row + 1, 0, 1, 2)
            error.setVisible(False)
            self.fields[name] = value_widget
            self.errors[name] = error
            self._rows[name] = [label, widget, error] + ([self.target_edit] if name == "target" else [])
            row += 2
        for w in (*edits.values(), self.data_edit, self.size_edit, self.target_edit):
            w.textChanged.connect(self._on_form_changed)
        for box in (self.format_box, self.arch_box, self.map_box, self.device_box):
            box.currentIndexChanged.connect(self._on_form_changed)
        self.kind_box.currentIndexChanged.connect(self._on_kind_changed)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.cancel_button):
            buttons.addWidget(b)
        self.form_message = QLabel()
        self.form_message.setWordWrap(True)

        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setWidget(form_box)
        # The form scrolls up and down only: the pane is never narrower than the form needs.
        form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form_scroll.setMinimumWidth(
            form_box.minimumSizeHint().width()
            + form_scroll.verticalScrollBar().sizeHint().width()
            + 2 * form_scroll.frameWidth()
        )
        self.form_scroll = form_scroll

        self.runs_model = RunTableModel(self)
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.verticalHeader().setVisible(False)
        runs_header = self.runs_view.horizontalHeader()
        runs_header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The figures take what is left (elided, in full in their tooltip) rather than pushing columns out.
        runs_header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.runs_view.setWordWrap(False)
        self.runs_view.selectionModel().selectionChanged.connect(self._on_run_selected)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume_selected)
        self.register_button = QPushButton("Register")
        self.register_button.setToolTip("add the run's model to the workspace, for search and comparison")
        self.register_button.clicked.connect(self.register_selected)
        self.explain_button = QPushButton("Explain samples")
        self.explain_button.clicked.connect(self.explain_selected)
        run_buttons = QHBoxLayout()
        for b in (self.resume_button, self.register_button, self.explain_button):
            run_buttons.addWidget(b)
        runs_box = QGroupBox("Runs in this workspace")
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.addWidget(self.runs_view)
        runs_layout.addLayout(run_buttons)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(form_scroll, 3)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.form_message)
        left_layout.addWidget(runs_box, 2)

        # Plots: items are created once per curve and then only fed with setData. Each plot's title and
        # legend are a line of text above it, so that the legend never covers a curve.
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.legends: dict[str, QLabel] = {}
        self.hints: dict[str, pg.TextItem] = {}
        self.loss_plot, loss_panel = self._plot_panel(
            "loss", "Losses", "iteration", "Start a run, or choose one below, to see its losses here"
        )
        # The total has its own view box and axis on the right (see TOTAL_LOSS).
        item = self.loss_plot.getPlotItem()
        self.total_view = pg.ViewBox()
        item.scene().addItem(self.total_view)
        item.getAxis("right").linkToView(self.total_view)
        item.getAxis("right").setLabel(TOTAL_LOSS)
        self.total_view.setXLink(item)
        item.vb.sigResized.connect(lambda: self.total_view.setGeometry(item.vb.sceneBoundingRect()))
        self.metric_plot, metric_panel = self._plot_panel(
            "metric", "Evaluation", "epoch", "The evaluations of the run appear here"
        )
        self.adre_plot, self.adre_panel = self._plot_panel("adre", "ADRE (%)", "epoch", "")
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(metric_panel)
        lower.addWidget(self.adre_panel)
        lower.setSizes([600, 300])

        self.status_label = QLabel("no run")
        self.status_label.setObjectName("training_status")
        self.progress_label = QLabel("")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.eval_table = QTableWidget(0, 1)
        self.eval_table.verticalHeader().setVisible(False)
        self.eval_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.samples = QListWidget()
        self.samples.setIconSize(QSize(160, 128))
        self.samples.setWordWrap(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.log_view, "Log")
        self.tabs.addTab(self.eval_table, "Evaluation")
        self.tabs.addTab(self.samples, "Explanations")

        right = QSplitter(Qt.Orientation.Vertical)
        head = QWidget()
        head_layout = QVBoxLayout(head)
        head_layout.setContentsMargins(0, 0, 0, 0)
        head_layout.addWidget(self.status_label)
        head_layout.addWidget(self.progress_label)
        head_layout.addWidget(loss_panel, 1)
        right.addWidget(head)
        right.addWidget(lower)
        right.addWidget(self.tabs)
        right.setSizes([340, 220, 220])

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        # The form keeps its width when the window changes size; the plots take the rest.
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setCollapsible(0, False)
        self.split = split
        outer = QVBoxLayout(self)
        outer.addWidget(split)
        free = self.screen().availableGeometry()
        width, height = min(1280, free.width()), min(860, free.height())
        self.resize(width, height)
        left_width = max(left.minimumSizeHint().width(), min(470, width * 2 // 5))
        split.setSizes([left_width, max(width - left_width, 1)])
        self._draw()

    def _plot_panel(self, key: str, title: str, x_label: str, hint: str) -> tuple[pg.PlotWidget, QWidget]:
        """A plot under a line with its title and legend, on one white panel; ``hint`` shows while it is empty."""
        plot = pg.PlotWidget(axisItems={"bottom": CountAxis("bottom")})
        plot.setLabel("bottom", x_label)
        plot.showGrid(x=True, y=True, alpha=0.2)
        legend = QLabel(f"<b>{title}</b>")
        legend.setObjectName(f"legend_{key}")
        legend.setWordWrap(True)
        legend.setContentsMargins(8, 4, 8, 0)
        legend.setStyleSheet("color: black;")
        self.legends[key] = legend
        if hint:
            text = pg.TextItem(hint, color=(110, 110, 110), anchor=(0.5, 0.5))
            plot.addItem(text, ignoreBounds=True)
            self.hints[key] = text
        panel = QWidget()
        panel.setAutoFillBackground(True)
        palette = panel.palette()
        palette.setColor(panel.backgroundRole(), Qt.GlobalColor.white)
        panel.setPalette(palette)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(legend)
        layout.addWidget(plot, 1)
        return plot, panel

    # ------------------------------------------------------------------ the form

    def form(self) -> tj.TrainingForm:
        """The form's current values."""
        values = {name: edit.text() for name, edit in self.edits.items()}
        return tj.TrainingForm(
            kind=self.kind_box.currentData(),
            format=self.format_box.currentData(),
            data=self.data_edit.text(),
            arch=self.arch_box.currentData(),
            size=self.size_edit.text(),
            target=self.target_edit.text(),
            map_mode=self.map_box.currentData(),
            device=self.device_box.currentData(),
            **values,
        )

    def set_form(self, form: tj.TrainingForm) -> None:
        """Fill the form (e.g. with a kind's defaults, or a run's settings)."""
        self._filling = True
        try:
            for box, value in (
                (self.kind_box, form.kind),
                (self.format_box, form.format),
                (self.arch_box, form.arch),
                (self.map_box, form.map_mode),
                (self.device_box, form.device),
            ):
                i = box.findData(value)
                if i >= 0:
                    box.setCurrentIndex(i)
            self.data_edit.setText(form.data)
            self.size_edit.setText(form.size)
            self.target_edit.setText(form.target)
            for name, edit in self.edits.items():
                edit.setText(getattr(form, name))
        finally:
            self._filling = False
        self._update_rows()
        self.validate()

    def _update_rows(self) -> None:
        kind = self.kind_box.currentData()
        hidden = {"target": {"target", "map_mode", "md_weight", "prior_weight", "aux_weight"},
                  "interpreter": {"arch", "triplet_weight", "label_smoothing"}}[kind]  # fmt: skip
        if self.format_box.currentData() == "workspace":
            hidden = hidden | {"data"}
        for name, widgets in self._rows.items():
            for w in widgets:
                if w is self.errors[name]:
                    # The workspace's labelled identities replace the folder: their reason still shows.
                    shown = name not in hidden or (
                        name == "data" and self.format_box.currentData() == "workspace"
                    )
                    w.setVisible(shown and bool(w.text()))
                else:
                    w.setVisible(name not in hidden)
        self.size_edit.setPlaceholderText("HEIGHTxWIDTH" if kind == "target" else "blank: the target's size")

    def validate(self) -> dict[str, str]:
        """Check the form, show each reason beside its field, and enable Start only for a valid form."""
        errors = tj.validate_form(self.form(), self.labelled if self.ws is not None else None, self.cuda)
        choose = self._still_to_choose(errors)
        for name, label in self.errors.items():
            label.setText(errors.get(name, ""))
            label.setStyleSheet(HINT_STYLE if name in choose else ERROR_STYLE)
        self._update_rows()
        self._update_buttons(errors)
        return errors

    def _update_buttons(self, errors: dict[str, str] | None = None) -> None:
        if errors is None:
            errors = tj.validate_form(self.form(), self.labelled if self.ws is not None else None, self.cuda)
        live = self.job is not None
        self.start_button.setEnabled(not errors and not live and self.ws is not None)
        self.pause_button.setEnabled(live and self.control is not None and not self.control.cancelled)
        self.cancel_button.setEnabled(live and self.control is not None and not self.control.cancelled)
        self.pause_button.setText("Continue" if self.control is not None and self.control.paused else "Pause")
        row = self.selected_run()
        self.resume_button.setEnabled(not live and row is not None and row.resumable)
        self.register_button.setEnabled(
            row is not None and row.status == "finished" and not row.registered and row.model_file is not None
        )
        self.explain_button.setEnabled(
            row is not None
            and row.kind == "interpreter"
            and row.status == "finished"
            and row.model_file is not None
        )
        choose = self._still_to_choose(errors)
        if self.ws is None:
            self.form_message.setText("Open a workspace to train: runs are kept in it.")
        elif errors and set(errors) == set(choose):
            self.form_message.setText(f"Choose {' and '.join(choose.values())} to start.")
        elif errors:
            self.form_message.setText(f"{len(errors)} field(s) to correct before starting.")
        else:
            self.form_message.setText("")

    def _still_to_choose(self, errors: dict[str, str]) -> dict[str, str]:
        """The fields of ``errors`` that are only blank (a folder or a model not chosen yet), with what to choose."""
        blank = {"data": self.data_edit.text(), "target": self.target_edit.text()}
        return {
            name: what
            for name, what in CHOOSE_FIELDS.items()
            if name in errors and not blank[name].strip() and self._row_shown(name)
        }

    def _row_shown(self, name: str) -> bool:
        if name == "target":
            return self.kind_box.currentData() == "interpreter"
        return self.format_box.currentData() != "workspace"

    def _on_form_changed(self, *_: Any) -> None:
        if not getattr(self, "_filling", False):
            self.validate()

    def _on_kind_changed(self, *_: Any) -> None:
        if getattr(self, "_filling", False):
            return
        # Each kind has its own defaults for the schedule; the dataset and the device stay.
        old = self.form()
        new = tj.form_defaults(old.kind)
        keep = {
            f: getattr(old, f)
            for f in ("data", "format", "device", "target", "eval_every", "log_every", "workers")
        }
        self.set_form(dataclasses.replace(new, **keep))

    def _on_browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.data_edit.text())
        if folder:
            self.data_edit.setText(folder)

    def _on_browse_target(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Target model", "", "Model files (*.pt);;All files (*)")
        if path:
            self.target_edit.setText(path)

    def _on_target_chosen(self, index: int) -> None:
        path = self.target_box.itemData(index)
        if path:
            self.target_edit.setText(path)

    # ------------------------------------------------------------------ workspace and runs

    def set_workspace(self, root: str) -> Job | None:
        """Work in the workspace ``root`` (refused while a run is live: it would lose its store)."""
        if self.job is not None:
            self._log(f"the panel stays on {self.root} while its run is live")
            return None
        if self.ws is not None and self.root == str(Path(root).resolve()):
            return None
        self._close_workspace()
        self.root = str(Path(root).resolve())
        self.setWindowTitle(f"Training - {Path(root).name}")
        job = Job(open_panel_workspace, self.root, name="open workspace")
        job.signals.succeeded.connect(guarded(self, self._on_workspace_opened))
        job.signals.failed.connect(guarded(self, lambda msg: self._log(f"cannot open the workspace: {msg}")))
        self.runner.start("open", job)
        return job

    def _on_workspace_opened(self, result: tuple[Any, int, list[tuple[str, str]]]) -> None:
        ws, labelled, targets = result
        if self.root != str(Path(ws.root).resolve()):
            ws.close()
            return
        self.ws, self.labelled = ws, labelled
        self.target_box.clear()
        self.target_box.addItem("registered targets..." if targets else "no registered target", None)
        for name, path in targets:
            self.target_box.addItem(name, path)
        # An interpreter is distilled from one of the workspace's targets: the newest is proposed, unless
        # the analyst chose another file (a target of the workspace left before is replaced).
        chosen = self.target_edit.text().strip()
        if targets and (not chosen or chosen in self._proposed_targets):
            self.target_box.setCurrentIndex(1)
            self.target_edit.setText(targets[0][1])
        self._proposed_targets = {path for _, path in targets}
        self.validate()
        self.refresh_runs()

    def _close_workspace(self) -> None:
        if self.ws is not None:
            self.runner.pool.waitForDone(10000)
            self.ws.close()
            self.ws = None

    def refresh_runs(self) -> Job | None:
        """List the workspace's runs again (on a worker)."""
        if self.ws is None:
            return None
        live = [self.live_run] if self.live_run is not None else []
        job = Job(tj.list_runs, self.ws, live, name="runs")
        job.signals.succeeded.connect(guarded(self, self._on_runs_listed))
        job.signals.failed.connect(guarded(self, lambda msg: self._log(f"cannot list the runs: {msg}")))
        self.runner.start("runs", job)
        return job

    def _on_runs_listed(self, rows: list[tj.RunRow]) -> None:
        selected = self.selected_run()
        wanted = self.live_run if self.live_run is not None else (selected.id if selected else None)
        self.runs_model.set_rows(rows)
        for i, r in enumerate(rows):
            if r.id == wanted:
                self.runs_view.selectRow(i)
        self._update_buttons()
        if self.root is not None:
            self.workspace_ready.emit(self.root)

    def selected_run(self) -> tj.RunRow | None:
        indexes = self.runs_view.selectionModel().selectedRows()
        return self.runs_model.row(indexes[0].row()) if indexes else None

    def _on_run_selected(self, *_: Any) -> None:
        row = self.selected_run()
        self._update_buttons()
        if row is None or row.id == self.live_run or row.id == self.shown_run or self.ws is None:
            return
        job = Job(run_details, self.ws, row.id, name="run")
        job.signals.succeeded.connect(guarded(self, self._on_run_details))
        self.runner.start("details", job)

    def _on_run_details(self, result: tuple[Any, list[dict[str, Any]]]) -> None:
        run, events = result
        if self.job is not None:  # a run started meanwhile: the view is its own
            return
        self.shown_run, self.live_kind = run.id, run.kind
        self._reset_view()
        self._add_events(events)
        metrics = run.metrics or {}
        self._show_evaluation(metrics.get("history") or [])
        self.status_label.setText(f"run {Path(run.output_dir or '').name}: {self.runs_model_status(run.id)}")
        if metrics.get("error"):
            self._log(f"run {run.id} failed: {metrics['error']}")

    def runs_model_status(self, run_id: int) -> str:
        return next((r.status for r in self.runs_model.rows if r.id == run_id), "?")

    # ------------------------------------------------------------------ running

    def start(self) -> Job | None:
        """Start a new run with the form's settings."""
        if self.validate() or self.ws is None or self.job is not None:
            return None
        return self._launch(form=self.form(), labelled=self.labelled, cuda=self.cuda)

    def resume_selected(self) -> Job | None:
        """Continue the selected interrupted or cancelled run from its last finished epoch."""
        row = self.selected_run()
        if row is None or not row.resumable or self.job is not None:
            return None
        return self._launch(run_id=row.id)

    def _launch(self, **kwargs: Any) -> Job:
        self.control = tj.RunControl()
        self._reset_view()
        self.samples.clear()
        self.eval_table.setRowCount(0)
        self.progress = tj.RunProgress()
        self.status_label.setText("starting...")
        emit, log = self.signals.event_received.emit, self.signals.log_received.emit
        job = Job(run_job, self.ws, self.control, emit, log, name="training", **kwargs)
        job.signals.succeeded.connect(guarded(self, self._on_run_done))
        job.signals.failed.connect(guarded(self, self._on_run_error))
        job.signals.finished.connect(guarded(self, self._on_job_finished))
        self.job = job
        self.runner.start("train", job)
        self._update_buttons()
        return job

    def toggle_pause(self) -> None:
        """Pause the live run between two steps (its state stays in memory), or let it continue."""
        if self.control is None or self.job is None:
            return
        if self.control.paused:
            if self._pause_started is not None:
                self.progress.paused_s += time.monotonic() - self._pause_started
                self._pause_started = None
            self.control.resume()
            self.status_label.setText(f"run {self.live_run}: running")
        else:
            self._pause_started = time.monotonic()
            self.control.pause()
            self.status_label.setText(f"run {self.live_run}: paused (after the current step)")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the live run after its current step; it can be resumed from its last finished epoch."""
        if self.control is None or self.job is None:
            return
        self.control.cancel()
        self.status_label.setText(f"run {self.live_run}: cancelling...")
        self._update_buttons()

    def _on_run_done(self, outcome: tj.RunOutcome) -> None:
        self._flush()
        state = "cancelled (resumable)" if outcome.stopped else "finished"
        self.status_label.setText(f"run {outcome.run.id}: {state} after {outcome.epochs_done} epoch(s)")
        self._log(f"run {outcome.run.id} {state} after {outcome.epochs_done} epoch(s)")
        history = (outcome.run.metrics or {}).get("history") or []
        self._show_evaluation(history)
        if not outcome.stopped:
            self.tabs.setCurrentWidget(self.eval_table)
            if outcome.run.kind == "interpreter":
                self._explain(outcome.run.id)
        self.run_finished.emit(outcome)

    def _on_run_error(self, message: str) -> None:
        self._flush()
        self.status_label.setText(f"run {self.live_run if self.live_run is not None else ''} failed")
        self._log(f"failed: {message}")
        self.tabs.setCurrentWidget(self.log_view)
        self.run_failed.emit(message)

    def _on_job_finished(self) -> None:
        self.job = None
        self.control = None
        self.shown_run = self.live_run
        self.live_run = None
        self._pause_started = None
        self.refresh_runs()
        self._update_buttons()

    # ------------------------------------------------------------------ results

    def register_selected(self) -> Job | None:
        """Add the selected finished run's model to the workspace."""
        row = self.selected_run()
        if row is None or self.ws is None or row.status != "finished":
            return None
        job = Job(tj.register_run, self.ws, row.id, name="register")
        job.signals.succeeded.connect(guarded(self, self._on_registered))
        job.signals.failed.connect(guarded(self, lambda msg: self._log(f"cannot register: {msg}")))
        self.runner.start("register", job)
        return job

    def _on_registered(self, model: Any) -> None:
        self._log(
            f"registered {model.kind} model {model.name!r} (id {model.id}); search and compare can use it"
        )
        self.refresh_runs()
        self.model_registered.emit(model)

    def explain_selected(self) -> Job | None:
        row = self.selected_run()
        if row is None or row.kind != "interpreter":
            return None
        return self._explain(row.id)

    def _explain(self, run_id: int) -> Job | None:
        if self.ws is None:
            return None
        ws = self.ws

        def work() -> list[tj.SamplePair]:
            return tj.sample_explanations(ws.runs.get(run_id), count=4)

        self._log("explaining a few validation pairs...")
        job = Job(work, name="samples")
        job.signals.succeeded.connect(guarded(self, self._on_samples))
        job.signals.failed.connect(guarded(self, lambda msg: self._log(f"cannot explain samples: {msg}")))
        self.runner.start("samples", job)
        return job

    def _on_samples(self, samples: list[tj.SamplePair]) -> None:
        self.samples.clear()
        for s in samples:
            item = QListWidgetItem(QIcon(rgb_to_pixmap(pair_picture(s.overlay_a, s.overlay_b))), s.text())
            item.setToolTip(f"{s.path_a}\n{s.path_b}")
            self.samples.addItem(item)
        if not samples:
            self.samples.addItem("no validation pair to explain")
        self.tabs.setCurrentWidget(self.samples)
        self.samples_ready.emit(samples)

    def _show_evaluation(self, history: list[dict[str, Any]]) -> None:
        header, rows = tj.evaluation_rows(history)
        header = [h[:1].upper() + h[1:] for h in header]  # capitalised like every other table's headers
        self.eval_table.clear()
        self.eval_table.setColumnCount(len(header))
        self.eval_table.setHorizontalHeaderLabels(header)
        self.eval_table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.eval_table.setItem(r, c, item)

    # ------------------------------------------------------------------ live view

    def _on_event_received(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "created":
            self.live_run, self.live_kind = int(event["run_id"]), event["kind"]
            self.shown_run = self.live_run
            self.refresh_runs()
            return
        if kind == "start":
            # Steps after the checkpoint are done again by a resumed run: their old points go.
            start = int(event["iteration"])
            self._pending = [
                e for e in self._pending if not (e.get("type") == "step" and int(e["iteration"]) >= start)
            ]
            self.steps = [e for e in self.steps if int(e["iteration"]) < start]
            self.evals = [e for e in self.evals if int(e["iteration"]) <= start]
            self._dirty = True
            self.progress.update(event, time.monotonic())
            self.status_label.setText(f"run {self.live_run}: running")
            self._log(f"training from epoch {event['epoch'] + 1} of {event['max_epochs']} "
                      f"({event['iters_per_epoch']} steps per epoch)")  # fmt: skip
            return
        if kind == "history":
            self._add_events(event["events"])
            return
        if kind == "evidence_cache":
            self._log(f"evidence classifier on cached features: pass {event['epoch']} of {event['epochs']}, "
                      f"loss {event['loss']:.4f}")  # fmt: skip
            return
        if kind == "step":
            self.progress.update(event, time.monotonic())
        self._pending.append(event)

    def _on_log_received(self, text: str) -> None:
        self._log(text)

    def _log(self, text: str) -> None:
        self._pending_log.append(f"{time.strftime('%H:%M:%S')}  {text}")

    def _reset_view(self) -> None:
        self.steps, self.evals, self._pending = [], [], []
        for curve in self.curves.values():
            curve.setData([], [])
        self._dirty = True

    def _add_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            (self.steps if e.get("type") == "step" else self.evals).append(e)
        self._dirty = True

    def _curve(self, plot: pg.PlotWidget, key: str, label: str) -> pg.PlotDataItem:
        curve = self.curves.get(key)
        if curve is None:
            kind, name = key.split(":", 1)
            colour = CURVE_COLOURS[len([k for k in self.curves if k.split(":")[0] == kind]) % 8]
            total = kind == "loss" and name == TOTAL_LOSS
            style = Qt.PenStyle.DashLine if total else Qt.PenStyle.SolidLine
            curve = pg.PlotDataItem([], [], name=label, pen=pg.mkPen(colour, width=2, style=style),
                                    symbol="o" if kind == "metric" else None, symbolSize=5, symbolBrush=colour,
                                    symbolPen=colour)  # fmt: skip
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            (self.total_view if total else plot).addItem(curve)
            self.curves[key] = curve
        return curve

    def _show_legend(self, key: str, title: str, curves: list[tuple[str, str]]) -> None:
        """The line above a plot: its title, then a sample of each curve's pen with its name."""
        entries = [f"<b>{title}</b>"]
        for curve_key, label in curves:
            pen = self.curves[curve_key].opts["pen"]
            sample = "\u254d\u254d" if pen.style() == Qt.PenStyle.DashLine else "\u2501\u2501"
            colour = pen.color().name()
            entries.append(f'<span style="color:{colour}">{sample}</span>&nbsp;{html.escape(label)}')
        # Non-breaking inside an entry, breakable between entries: a narrow plot wraps its legend.
        self.legends[key].setText("&nbsp;&nbsp; ".join(entries))

    def _show_hint(self, key: str, empty: bool) -> None:
        hint = self.hints.get(key)
        if hint is None:
            return
        hint.setVisible(empty)
        if empty:
            (x0, x1), (y0, y1) = hint.getViewBox().viewRange() if hint.getViewBox() else ((0, 1), (0, 1))
            hint.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def _flush(self) -> None:
        """Move the queued events into the curves, the progress line and the log (runs on the timer)."""
        if self._pending:
            for e in self._pending:
                if e.get("type") == "step":
                    self.steps.append(e)
                    # The log pane gets one line in ten logged steps; the curves get them all.
                    if len(self.steps) % 10 == 1:
                        losses = ", ".join(f"{k} {v:.4g}" for k, v in e["losses"].items())
                        self._log(f"epoch {e['epoch'] + 1} step {e['iteration'] + 1}: {losses}")
                elif e.get("type") == "eval":
                    self.evals.append(e)
                    figures = ", ".join(
                        f"{tj.METRIC_LABELS.get(k, k)} {v:.4g}" for k, v in e["metrics"].items()
                    )
                    self._log(f"evaluation after epoch {e['epoch']}: {figures}")
                    self._show_evaluation([{"epoch": x["epoch"], **x["metrics"]} for x in self.evals])
            self._pending = []
            self._dirty = True
        if getattr(self, "_dirty", False):
            self._draw()
            self._dirty = False
        if self.job is not None and self.progress.max_epochs:
            paused = self.progress.paused_s
            if self._pause_started is not None:
                self.progress.paused_s = paused + time.monotonic() - self._pause_started
            self.progress_label.setText(self.progress.text())
            self.progress.paused_s = paused
        if self._pending_log:
            self.log_view.appendPlainText("\n".join(self._pending_log))
            self._pending_log = []

    def _draw(self) -> None:
        names: list[str] = []
        for e in self.steps:
            names.extend(k for k in e["losses"] if k not in names)
        # The terms first, the total (on its own axis) last.
        names.sort(key=lambda n: n == TOTAL_LOSS)
        for name in names:
            xs = [int(e["iteration"]) + 1 for e in self.steps if name in e["losses"]]
            ys = [float(e["losses"][name]) for e in self.steps if name in e["losses"]]
            label = f"{name} (right axis)" if name == TOTAL_LOSS else name
            self._curve(self.loss_plot, f"loss:{name}", label).setData(xs, ys)
        self.loss_plot.getPlotItem().showAxis("right", TOTAL_LOSS in names)
        evals = self.evals
        keys: list[str] = []
        for e in evals:
            keys.extend(k for k in e["metrics"] if k not in keys)
        for key in keys:
            if key not in PLOTTED_METRICS and key != "adre":
                continue
            xs = [int(e["epoch"]) for e in evals if key in e["metrics"]]
            ys = [float(e["metrics"][key]) for e in evals if key in e["metrics"]]
            plot = self.adre_plot if key == "adre" else self.metric_plot
            self._curve(plot, f"metric:{key}", tj.METRIC_LABELS.get(key, key)).setData(xs, ys)
        # ADRE is a figure of interpreters only; a target run's panel has no use for its plot.
        self.adre_panel.setVisible("adre" in keys or self.live_kind == "interpreter")
        plotted = [k for k in keys if k in PLOTTED_METRICS]
        self._show_legend(
            "loss", "Losses", [(f"loss:{n}", f"{n} (right axis)" if n == TOTAL_LOSS else n) for n in names]
        )
        self._show_legend(
            "metric", "Evaluation", [(f"metric:{k}", tj.METRIC_LABELS.get(k, k)) for k in plotted]
        )
        self._show_hint("loss", not names)
        self._show_hint("metric", not plotted)
        for key, curve in self.curves.items():
            kind, name = key.split(":", 1)
            if (kind == "loss" and name not in names) or (kind == "metric" and name not in keys):
                curve.setData([], [])

    # ------------------------------------------------------------------ closing

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The main window closing closes the panel first, so that a live run stops and is recorded.
        if event.type() == QEvent.Type.Close and watched is self.parent():
            self.close()
        return False

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Cancel a live run (it stays resumable), wait for the workers, close the workspace."""
        if self.control is not None:
            self.control.cancel()
        done = self.runner.shutdown(timeout_ms)
        self.timer.stop()
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        return done

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


def show_training_window(
    parent: QWidget, window: TrainingWindow | None, root: str | Path | None
) -> TrainingWindow:
    """Show the training panel of ``parent`` (the main window), creating it on first use.

    The panel follows the main window's workspace (``workspace_opened``) while no run is live, and closes
    with it.
    """
    stale = window is not None and (
        not shiboken6.isValid(window) or (window.ws is None and not window.isVisible())
    )
    if stale and shiboken6.isValid(window):
        window.deleteLater()
    if window is None or stale:
        window = TrainingWindow(root, parent)
        parent.installEventFilter(window)
        opened = getattr(parent, "workspace_opened", None)
        if opened is not None:
            opened.connect(guarded(window, window.set_workspace))
    elif root is not None:
        window.set_workspace(str(root))
    window.show()
    window.raise_()
    window.activateWindow()
    return window
