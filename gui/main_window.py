"""The main window: gallery, query results, comparison, identities, and the jobs behind them.

Threads: ``runner`` runs the heavy jobs (models, search, import, explanations), ``io`` the light ones
(gallery pages, thumbnails, lists) so that browsing stays quick while a model runs, and ``writer``
runs store changes one at a time in order (undo depends on it). Results reach the window only as
queued signals; no worker touches a widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QScrollArea,
    QTabWidget,
    QWidget,
)

from cli import workbench as wb
from gui import video_ingest
from gui.cases import install_case_panel
from gui.compare import CompareWidget
from gui.compat import GuiThreadCollector, freeze_heap
from gui.dialogs import show_error, show_message
from gui.gallery import GalleryModel, GalleryWidget
from gui.help import install_help_menu
from gui.identities import (
    AssignCommand,
    DeleteCommand,
    IdentitiesWidget,
    MergeCommand,
    RenameCommand,
    StoreWriter,
    list_identities,
)
from gui.progress import JobProgressWidget
from gui.results import NO_QUERY, ResultsWidget
from gui.thumbnails import ThumbnailLoader
from gui.workers import Job, JobRunner, guarded

MAX_RECENT = 8
DEMO_FOLDER = "demo-workspace"
#: How many results get their largest shares worked out (about 0.04 s each on a CPU).
SHARES_LIMIT = 100


# ---------------------------------------------------------------------- worker functions (no Qt)


def open_workbench(
    root: str, create: bool = False, prefer: tuple[str, str | None] | None = None
) -> wb.Workbench:
    """Open a workspace; a new one without models gets the demo models when they are present.

    Args:
        root: The workspace folder.
        create: Make a new workspace there.
        prefer: The file hashes of the models chosen for it before (see :func:`cli.workbench.find_models`).
    """
    from cli.demo import demo_model_paths, missing_demo_models

    bench = wb.Workbench.open(root, create=create, prefer=prefer)
    if bench.models.target is None and not bench.ws.models.list() and not missing_demo_models():
        target, interpreter = demo_model_paths()
        wb.register_models(bench.ws, target, interpreter)
        bench.models = wb.find_models(bench.ws)
    return bench


def workspace_key(root: str | Path) -> str:
    """The settings group of one workspace: a digest of its absolute path (paths hold "/" and ":")."""
    import hashlib

    return "ws-" + hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]


def switch_models(bench: wb.Workbench, resolve: Any) -> tuple[wb.ModelPair, str]:
    """Load the pair that ``resolve(ws)`` names and make it the workbench's (runs on a worker)."""
    pair = resolve(bench.ws)
    return pair, bench.use_models(pair)


@dataclass(frozen=True)
class FilterChoices:
    """What the gallery's filters and the identity list offer.

    Attributes:
        cameras: (text, camera id) pairs.
        identities: (text, identity id) pairs.
        attributes: (label, attribute name) pairs, sorted by label: the identities' labelled attributes
            and the interpreter's.
        records: The identity records (with crop counts).
        predictor: The interpreter whose attribute predictions are stored, or ``None``.
        predictor_note: Why there are no predictions ("" when there are).
    """

    cameras: list[tuple[str, int]]
    identities: list[tuple[str, int]]
    attributes: list[tuple[str, str]]
    records: list[Any]
    predictor: int | None
    predictor_note: str


def filter_choices(ws: Any, interpreter: Any = None) -> FilterChoices:
    """Cameras, identities and attributes for the gallery's filters (runs on a worker).

    Args:
        ws: The workspace.
        interpreter: The interpreter's record, whose stored predictions the attribute filter can use.
    """
    cameras = [(f"{c.name} ({c.crop_count})", c.id) for c in ws.cameras.list()]
    identities = list_identities(ws)
    names = [(f"{i.name} ({i.crop_count})", i.id) for i in identities]
    labels: dict[str, str] = {}
    for attribute in (interpreter.attribute_schema or {}).get("attributes", []) if interpreter else []:
        labels[str(attribute["name"])] = str(attribute.get("label") or attribute["name"])
    labelled = next((i.attributes for i in identities if i.attributes and i.attributes.get("values")), None)
    if labelled:
        known: dict[str, str] = {}
        try:
            from amd.schema import load_schema

            schema = load_schema(str(labelled.get("schema")))
            known = dict(zip(schema.names, schema.labels, strict=True))
        except Exception:  # an unknown schema still filters, by raw names
            known = {}
        for name in labelled["values"]:
            labels.setdefault(name, known.get(name, name))
    attributes = sorted(((label, name) for name, label in labels.items()), key=lambda p: p[0].lower())
    predictor, note = None, ""
    if interpreter is None:
        note = "no interpreter is registered in this workspace"
    elif ws.embeddings.count(interpreter.id) == 0:
        note = "no attribute predictions are stored yet: Query > Index the workspace now"
    else:
        predictor = interpreter.id
    return FilterChoices(cameras, names, attributes, identities, predictor, note)


def record_pair_verdict(
    ws: Any, bench: wb.Workbench, path_a: str, path_b: str, verdict: str | None, notes: str, explanation: Any
) -> tuple[Any, Any, Any]:
    item = bench.record_verdict(path_a, path_b, verdict, notes, explanation)
    return item, bench.crop_for_file(path_a), bench.crop_for_file(path_b)


class MainWindow(QMainWindow):
    """The workbench's main window.

    Args:
        settings: Where window layout, the last and recent workspaces and preferences are kept.
        data_home: The user's data folder (the demo workspace is built there).

    Signals:
        workspace_opened(str): a workspace is open and shown.
        search_finished(list): a query's results are on screen.
        results_explained(list): those results' largest shares are on screen too.
        models_changed(ModelPair): other models were loaded and are in use.
    """

    workspace_opened = Signal(str)
    search_finished = Signal(list)
    results_explained = Signal(list)
    models_changed = Signal(object)

    #: The demo workspace: persons, crops per person, cameras.
    demo_size: tuple[int, int, int] = (40, 8, 6)

    def __init__(self, settings: QSettings, data_home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.data_home = Path(data_home)
        self.bench: wb.Workbench | None = None
        self.query: tuple[str, Any] | None = None
        # The gallery's remembered filters are applied once, when the new workspace's choices arrive.
        self._restore_filters = False
        self.setWindowTitle("AMD Workbench")
        self.setObjectName("MainWindow")

        # Job threads must never run a garbage collection that could destroy Qt objects.
        self.collector = GuiThreadCollector(self)
        self.runner = JobRunner(self, max_threads=2)
        self.io = JobRunner(self, max_threads=2)
        self.writer = StoreWriter(lambda: self.bench.ws if self.bench else None, self)
        self.writer.written.connect(self._on_store_written)
        self.writer.failed.connect(lambda msg: self._on_job_failed("Change not saved", msg))
        self.undo_stack = QUndoStack(self)

        self.thumbnails = ThumbnailLoader(self.io, self._thumbnail_path, parent=self)
        self.gallery_model = GalleryModel(self.io, self.thumbnails, self)
        self.gallery = GalleryWidget(self.gallery_model)
        self.compare = CompareWidget(self._explain, self._resolve, self.runner)
        self.results = ResultsWidget(self.thumbnails)
        self.identities = IdentitiesWidget()

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.gallery, "Gallery")
        # The comparison needs more width than the gallery: on a narrow window it scrolls, so that the
        # window still fits a small screen with its docks shown.
        self.compare_page = QScrollArea()
        self.compare_page.setObjectName("compare_page")
        self.compare_page.setWidgetResizable(True)
        self.compare_page.setFrameShape(QScrollArea.Shape.NoFrame)
        self.compare_page.setWidget(self.compare)
        self.tabs.addTab(self.compare_page, "Compare")
        self.setCentralWidget(self.tabs)
        self.identity_dock = self._dock("Identities", self.identities, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.results_dock = self._dock("Results", self.results, Qt.DockWidgetArea.RightDockWidgetArea)

        self.workspace_label = QLabel("no workspace")
        self.model_label = QLabel("no model")
        self.device_label = QLabel("device: -")
        self.count_label = QLabel("0 crops")
        self.progress = JobProgressWidget()
        bar = self.statusBar()
        for label in (self.workspace_label, self.model_label, self.device_label, self.count_label):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addWidget(label)
        bar.addPermanentWidget(self.progress)

        self._build_menus()
        self._connect()
        # Before the layout is restored, so that the case dock gets its saved place.
        self.case_panel = install_case_panel(self)
        self.case_panel.item_verdict_saved.connect(self._on_item_verdict_saved)
        # Last, so that Help is the menu bar's last menu.
        self.help_menu = install_help_menu(self)
        self._restore_layout()

    # ------------------------------------------------------------------ construction

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu: Any, text: str, slot: Any, shortcut: QKeySequence | str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&New workspace...", self.new_workspace, QKeySequence.StandardKey.New)
        self.open_action = self._action(file, "&Open workspace...", self.choose_workspace, "Ctrl+O")
        self.recent_menu = file.addMenu("Open &recent")
        self._action(file, "Open the &demo workspace", self.open_demo)
        file.addSeparator()
        self._action(file, "&Import images...", self.choose_import_files, "Ctrl+I")
        self._action(file, "Import a &folder...", self.choose_import_folder)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        # Ctrl+Shift+Z everywhere (as the README says), besides the platform's own (Ctrl+Y on some).
        redo_keys = [QKeySequence("Ctrl+Shift+Z")]
        redo_keys += [k for k in QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) if k not in redo_keys]
        redo.setShortcuts(redo_keys)
        # Their text names the command they would undo; the shortcut list (Help) uses these fixed names.
        undo.setIconText("Undo")
        redo.setIconText("Redo")
        edit.addAction(undo)
        edit.addAction(redo)

        query = bar.addMenu("&Query")
        self.search_action = self._action(
            query, "&Search with the selected crop", self.search_selected, "Ctrl+F"
        )
        self._action(query, "&Compare the selection", self.compare_selected)
        self._action(query, "&Index the workspace now", self.index_now)
        self._action(query, "Cancel the current &job", self._cancel_current_job, "Esc")

        identity = bar.addMenu("&Identity")
        self._action(identity, "&New identity from the selection...", self.new_identity, "Ctrl+Shift+N")
        self._action(identity, "&Assign the selection...", self.assign_selection, "Ctrl+E")
        self._action(identity, "&Merge the selected identities", self.merge_identities)
        self._action(identity, "&Split the selection off...", self.split_selection)
        self._action(identity, "&Rename...", self.rename_identity)
        self._action(identity, "&Unlabel the selection", self.unlabel_selection)
        self._action(identity, "&Delete the selected identities", self.delete_identities)
        identity.addSeparator()
        self.keep_empty_action = QAction("&Keep identities left without crops", self)
        self.keep_empty_action.setCheckable(True)
        self.keep_empty_action.setToolTip(
            "Off: an identity that a merge, split or assignment empties is deleted with it (undo restores it)"
        )
        self.keep_empty_action.setChecked(self.settings.value("identities/keep_empty", False, type=bool))
        self.keep_empty_action.toggled.connect(lambda on: self.settings.setValue("identities/keep_empty", on))
        identity.addAction(self.keep_empty_action)

        view = bar.addMenu("&View")
        view.addAction(self.identity_dock.toggleViewAction())
        view.addAction(self.results_dock.toggleViewAction())
        self._action(view, "&Gallery", lambda: self.tabs.setCurrentWidget(self.gallery), "Ctrl+1")
        self._action(view, "&Compare", self.show_compare, "Ctrl+2")
        training = bar.addMenu("&Training")
        self._action(training, "&Training panel...", self.show_training_panel)
        models = bar.addMenu("&Models")
        self._action(models, "&Use model...", self.show_models_dialog, "Ctrl+M")
        self._action(models, "&Import a model file...", self.show_import_model_dialog)
        self._rebuild_recent_menu()

    def _connect(self) -> None:
        view = self.gallery.view
        view.doubleClicked.connect(lambda index: self.search_crop(self.gallery_model.crop(index.row())))
        view.compare_requested.connect(self.compare_selected)
        view.files_dropped.connect(self.drop_paths)
        self.gallery_model.count_changed.connect(self._on_gallery_count_changed)
        self.gallery.filter_changed.connect(self._save_gallery_filters)
        self.gallery_model.failed.connect(lambda msg: self.statusBar().showMessage(f"Gallery: {msg}", 10000))
        self.results.compare_requested.connect(self._on_results_compare_requested)
        self.results.query_dropped.connect(self._on_query_dropped)
        self.results.search_requested.connect(self._on_search_again)
        self.compare.verdict_changed.connect(self._on_verdict_changed)
        self.compare.add_to_case_requested.connect(self._on_add_to_case_requested)
        self.identities.identity_activated.connect(self._on_identity_activated)
        self.identities.new_requested.connect(self.new_identity)
        self.identities.assign_requested.connect(self.assign_selection)
        self.identities.merge_requested.connect(self.merge_identities)
        self.identities.split_requested.connect(self.split_selection)
        self.identities.rename_requested.connect(self.rename_identity)
        self.identities.unlabel_requested.connect(self.unlabel_selection)
        self.identities.delete_requested.connect(self.delete_identities)

    def size_docks(self) -> None:
        """Give the side docks their first-start widths, in proportion to the window's width.

        About a seventh on the left and a quarter on the right (at most 230 and 430 pixels, and at least
        290 on the right, for the case's table): on a 1280 pixel screen the comparison in the middle keeps
        about 750 pixels, on a 1024 pixel one about 570, its crops and figures side by side either way.
        """
        width = self.width()
        self.resizeDocks(
            [self.identity_dock, self.results_dock],
            [min(230, width * 15 // 100), min(430, max(290, width // 4))],
            Qt.Orientation.Horizontal,
        )

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            # At most the screen's free area: a window larger than a small screen cannot be used.
            free = self.screen().availableGeometry()
            self.resize(min(1600, free.width()), min(1000, free.height()))
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        else:
            self.size_docks()
        top = self.settings.value("search/top")
        if top is not None:
            self.results.top_box.setValue(int(top))
        opacity = self.settings.value("compare/opacity")
        if opacity is not None:
            self.compare.opacity.setValue(int(opacity))
        cmap = self.settings.value("compare/colours")
        if cmap and self.compare.cmap_box.findText(str(cmap)) >= 0:
            self.compare.cmap_box.setCurrentText(str(cmap))
        splitter = self.settings.value("compare/splitter")
        if isinstance(splitter, QByteArray):
            self.compare.splitter.restoreState(splitter)

    # ------------------------------------------------------------------ start and workspaces

    def start(self) -> None:
        """Open the last workspace, or build and open the demo workspace on the first start."""
        last = self.settings.value("workspace/last")
        if last and (Path(str(last)) / "workspace.json").is_file():
            self.open_workspace(str(last))
        else:
            self.open_demo()

    def demo_root(self) -> Path:
        return self.data_home / DEMO_FOLDER

    def open_demo(self) -> None:
        """Open the demo workspace, building (or finishing) it first with a progress dialog."""
        from cli.demo import demo_state, missing_demo_models

        root = self.demo_root()
        state = demo_state(root)
        missing = missing_demo_models()
        if state == "indexed" or (state == "crops" and missing):
            self.open_workspace(str(root))
            if missing:
                self._warn_missing_models(missing)
            return
        self.build_demo(root, missing)

    def build_demo(self, root: Path, missing: list[Path]) -> Job:
        from cli.demo import build_demo_workspace

        dialog = QProgressDialog("Building the demo workspace...", "Cancel", 0, 1000, self)
        dialog.setWindowTitle("First start")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setMinimumWidth(520)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        self.demo_dialog = dialog
        note = (
            ""
            if not missing
            else "\nThe demo models are missing: the crops are imported but cannot be searched."
        )
        identities, per_id, cameras = self.demo_size
        job = Job(
            build_demo_workspace,
            str(root),
            identities=identities,
            per_id=per_id,
            cameras=cameras,
            name="demo",
        )

        def on_progress(done: int, total: int, message: str) -> None:
            dialog.setMaximum(max(total, 1))
            dialog.setValue(done)
            dialog.setLabelText(f"Building the demo workspace in {root}\n{message}{note}")

        job.signals.progress_changed.connect(on_progress)
        job.signals.succeeded.connect(guarded(self, lambda summary: self._on_demo_built(summary, dialog)))
        # A cancelled job reports no result (the worker contract): its end is handled here.
        job.signals.finished.connect(
            guarded(self, lambda: self._on_demo_cancelled(dialog) if job.cancelled else None)
        )
        job.signals.failed.connect(
            guarded(self, lambda msg: (dialog.hide(), self._on_job_failed("Demo workspace", msg)))
        )
        dialog.canceled.connect(job.cancel)
        dialog.canceled.connect(lambda: dialog.setLabelText("Cancelling..."))
        self._say_busy(job, f"Building the demo workspace in {root}...")
        self.runner.start("demo", job)
        dialog.show()
        return job

    def _on_demo_cancelled(self, dialog: QProgressDialog) -> None:
        # hide(), not close(): closing a progress dialog emits canceled, which would cancel the job.
        dialog.hide()
        self.last_message = show_message(
            self,
            "Demo workspace",
            "Building the demo workspace was cancelled. What was done is kept: "
            "File > Open the demo workspace finishes it.",
        )

    def _on_demo_built(self, summary: Any, dialog: QProgressDialog) -> None:
        dialog.hide()
        if summary.cancelled:
            self._on_demo_cancelled(dialog)
            return
        self.open_workspace(summary.root)
        if summary.missing_models:
            self._warn_missing_models([Path(p) for p in summary.missing_models])

    def _warn_missing_models(self, missing: list[Path]) -> None:
        files = "\n".join(f"  {p}" for p in missing)
        show_message(
            self,
            "Demo models missing",
            "The demo models are not installed, so the demo crops can be browsed but not searched or "
            f"compared.\n\nMissing:\n{files}\n\nTrain them with `python scripts/train_demo_models.py`, "
            "then use File > Open the demo workspace.",
            icon=QMessageBox.Icon.Warning,
        )

    def new_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New workspace: choose an empty folder")
        if folder:
            self.open_workspace(folder, create=True)

    def choose_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open workspace")
        if folder:
            self.open_workspace(folder)

    def open_workspace(self, root: str, create: bool = False) -> Job:
        """Open a workspace on a worker (with the models chosen for it before) and show it when it is ready."""
        # Replaced by another opening before it is shown, the workspace is closed again.
        job = Job(open_workbench, root, create, self.remembered_models(root), name="open", discard=wb.Workbench.close)
        job.signals.succeeded.connect(self._on_workbench_opened)
        job.signals.failed.connect(
            guarded(self, lambda msg: self._on_job_failed("Cannot open the workspace", msg))
        )
        self.progress.track(job, f"opening {root}")
        self._say_busy(job, f"Opening {root}...")
        self.runner.start("open", job)
        return job

    def _say_busy(self, job: Job, text: str) -> None:
        """Let the empty gallery say what ``job`` is doing until it ends (a workspace opened shows its crops)."""
        view = self.gallery.view
        view.set_busy_text(text)
        job.signals.finished.connect(guarded(self, lambda: view.set_busy_text("") if view.busy_text == text else None))

    def _on_workbench_opened(self, bench: wb.Workbench) -> None:
        # Notes typed on an open case item go to the old workspace before it closes.
        self.case_panel.flush_notes()
        self._close_workbench()
        self.bench = bench
        self.undo_stack.clear()
        self.query = None
        self.results.set_results([])
        self.results.set_query(NO_QUERY, None)
        self.thumbnails.clear(self._thumbnail_path)
        self.gallery_model.set_workspace(bench.ws)
        root = str(bench.root)
        self.setWindowTitle(f"AMD Workbench - {bench.root.name}")
        self.workspace_label.setText(f"workspace: {bench.root.name}")
        self.workspace_label.setToolTip(root)
        self._show_models(bench.models)
        self.device_label.setText("device: loading...")
        self._remember(root)
        freeze_heap()
        self._restore_filters = True
        self.reload_choices()
        self._warm_up()
        self.workspace_opened.emit(root)

    def _warm_up(self) -> None:
        bench = self.bench
        if bench is None:
            return
        if bench.models.target is None:
            self.device_label.setText("device: -")
            return
        job = Job(bench.warm_up, name="load models")
        job.signals.succeeded.connect(self._on_models_loaded)
        job.signals.failed.connect(
            guarded(self, lambda msg: self._on_job_failed("Cannot load the models", msg))
        )
        self.progress.track(job, "loading the models")
        self.runner.start("warm-up", job)
        threshold = Job(bench.threshold, name="threshold")
        threshold.signals.succeeded.connect(self._on_threshold)
        self.runner.start("threshold", threshold)

    def _on_models_loaded(self, device: str) -> None:
        freeze_heap()
        self.device_label.setText("device: GPU (CUDA)" if device.startswith("cuda") else "device: CPU")

    def _on_threshold(self, result: tuple[float | None, str]) -> None:
        value, how = result
        self.compare.threshold = value
        self.compare.reading_label.setToolTip(how)

    def _close_workbench(self) -> None:
        if self.bench is None:
            return
        # Jobs of the old workspace must finish before its database connections close.
        self.runner.cancel_all()
        self.io.cancel_all()
        self.runner.pool.waitForDone(10000)
        self.io.pool.waitForDone(10000)
        self.writer.wait(10000)
        self.bench.close()
        self.bench = None

    def _remember(self, root: str) -> None:
        self.settings.setValue("workspace/last", root)
        recent = [r for r in self._recent() if r != root]
        self.settings.setValue("workspace/recent", [root, *recent][:MAX_RECENT])
        self._rebuild_recent_menu()

    def _recent(self) -> list[str]:
        value = self.settings.value("workspace/recent") or []
        return [str(v) for v in ([value] if isinstance(value, str) else value)]

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for root in recent:
            action = self.recent_menu.addAction(root)
            action.triggered.connect(lambda _c=False, r=root: self.open_workspace(r))
        self.recent_menu.setEnabled(bool(recent))

    def reload_choices(self) -> None:
        """Re-read cameras, identities and attributes for the filters and the identity list."""
        if self.bench is None:
            return
        job = Job(filter_choices, self.bench.ws, self.bench.models.interpreter, name="lists")
        job.signals.succeeded.connect(self._on_choices)
        self.io.start("choices", job)

    def _on_choices(self, choices: FilterChoices) -> None:
        self.gallery.set_choices(choices.cameras, choices.identities, choices.attributes)
        self.gallery.set_predictor(choices.predictor, choices.predictor_note)
        self.identities.set_identities(choices.records)
        if self._restore_filters and self.bench is not None:
            self._restore_filters = False
            self.gallery.restore_filter_state(self._setting_json(self.bench.root, "gallery_filters") or {})

    def _on_gallery_count_changed(self, count: int) -> None:
        flt = self.gallery_model.filter
        filtered = any((flt.camera_id, flt.identity_id, flt.unlabelled, flt.attribute))
        self.count_label.setText(f"{count:,} crops{' (filtered)' if filtered else ''}")

    # ------------------------------------------------------------------ images

    def _thumbnail_path(self, sha256: str, fmt: str) -> str:
        # Runs on a worker (thumbnail files are made on first use when missing).
        bench = self.bench
        if bench is None:
            raise FileNotFoundError(sha256)
        return str(bench.ws.images.thumbnail(sha256, fmt))

    def _explain(self, path_a: str, path_b: str) -> Any:
        if self.bench is None:
            raise RuntimeError("no workspace is open")
        return self.bench.explain(path_a, path_b)

    def _resolve(self, kind: str, value: str) -> str:
        if kind == "crop" and self.bench is not None:
            return self.bench.path_of_sha256(value)
        return value

    def _path(self, crop: Any) -> str:
        return str(self.bench.image_path(crop)) if self.bench is not None else ""

    # ------------------------------------------------------------------ import

    def choose_import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import images", "", "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)"
        )
        if files:
            self.import_paths(files)

    def choose_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Import a folder (or a Market-1501 / DukeMTMC layout)"
        )
        if folder:
            self.import_paths([folder])

    def import_paths(self, paths: list[str]) -> Job | None:
        """Import files and folders on a worker and show what happened."""
        if self.bench is None:
            show_error(self, "Import", "Open or create a workspace first (File menu).")
            return None
        # Cancelled, the import still says how many crops it imported before it stopped (they are kept).
        job = Job(self.bench.ingest, list(paths), name="import", partial_result=True)
        job.signals.succeeded.connect(self._on_imported)
        job.signals.failed.connect(guarded(self, lambda msg: self._on_job_failed("Import failed", msg)))
        self.progress.track(job, "importing")
        self.runner.start("import", job)
        return job

    def _on_imported(self, summary: Any) -> None:
        self.gallery_model.set_filter(self.gallery.current_filter())
        self.reload_choices()
        lines = [
            f"{summary.added} new crop{'s' * (summary.added != 1)} imported",
            f"{summary.duplicates} already in the workspace",
            f"{len(summary.refused)} refused",
        ]
        if summary.cancelled:
            lines.append("cancelled: the crops imported so far are kept")
        details = "\n".join(f"{r.path}: {r.reason}" for r in summary.refused[:200]) or None
        self.statusBar().showMessage(", ".join(lines), 8000)
        self.last_import_box = show_message(
            self, "Import", "\n".join(lines) + f"\n({summary.seconds:.1f} s)", details
        )

    # ------------------------------------------------------------------ video

    def drop_paths(self, paths: list[str]) -> None:
        """Files dropped on the gallery: videos are tracked and filed, images and folders imported."""
        videos, others = video_ingest.split_drop(paths)
        if others:
            self.import_paths(others)
        if videos:
            self.ingest_video_files(videos)

    def ingest_video_files(self, paths: list[str]) -> Job | None:
        """Ask for the camera, then detect, track and file the people of ``paths`` on a worker."""
        if self.bench is None:
            show_error(self, "Ingest video", "Open or create a workspace first (File menu).")
            return None
        if self.runner.running(video_ingest.JOB_KEY) is not None:
            show_error(self, "Ingest video", "A video is being filed: wait for it, or cancel it first.")
            return None
        cameras = [c.name for c in self.bench.ws.cameras.list()]
        camera = video_ingest.ask_camera(self, paths, cameras)
        if camera is None:
            return None
        # The tracks' appearance comes from the target model in use (the workspace's newest without one).
        target = self.bench.models.target.file_path if self.bench.models.target is not None else None
        job = video_ingest.start_video_ingest(self.runner, self.bench.root, paths, camera, target)
        job.signals.succeeded.connect(guarded(self, self._on_videos_ingested))
        job.signals.failed.connect(guarded(self, lambda msg: self._on_job_failed("Video not filed", msg)))
        job.signals.finished.connect(guarded(self, self._on_videos_finished))
        self.progress.track(job, f"filing {Path(paths[0]).name}")
        return job

    def _on_videos_finished(self) -> None:
        # Also after a cancel or a failure: the tracks that ended before it are filed.
        self.gallery_model.set_filter(self.gallery.current_filter())
        self.reload_choices()

    def _on_videos_ingested(self, summaries: list[Any]) -> None:
        text = video_ingest.summary_text(summaries)
        self.statusBar().showMessage(text.splitlines()[0], 8000)
        self.last_video_box = show_message(self, "Ingest video", text)

    # ------------------------------------------------------------------ search

    def search_selected(self) -> None:
        crops = self.gallery.selected_crops()
        if crops:
            self.search_crop(crops[0])
        elif self.query is not None:
            self._on_search_again()
        else:
            self.statusBar().showMessage("select a crop in the gallery to search with", 5000)

    def search_crop(self, crop: Any) -> Job | None:
        if crop is None or self.bench is None:
            return None
        self.query = ("crop", crop)
        self.results.set_query(
            f"<b>Query</b>: crop {crop.id}<br>{crop.camera or '-'} · {crop.identity or 'unlabelled'}",
            self.thumbnails.get(crop.sha256, crop.format),
        )
        return self._run_search(crop.id)

    def search_file(self, path: str) -> Job | None:
        if self.bench is None:
            return None
        self.query = ("file", path)
        from PySide6.QtGui import QPixmap

        self.results.set_query(f"<b>Query</b>: {Path(path).name}", QPixmap(path))
        return self._run_search(path)

    def _run_search(self, query: int | str) -> Job:
        self.results_dock.show()
        self.results_dock.raise_()
        self.results.set_results([])
        top = self.results.top_box.value()
        self.settings.setValue("search/top", top)
        job = Job(self.bench.search, query, top, name="search")
        job.signals.succeeded.connect(self._on_search_results)
        job.signals.failed.connect(guarded(self, lambda msg: self._on_job_failed("Search failed", msg)))
        self.progress.track(job, "searching")
        self.runner.start("search", job)
        return job

    def _on_search_results(self, rows: list[Any]) -> None:
        self.results.set_results(rows)
        self.results.view.setFocus()
        self._explain_results(rows)
        self.search_finished.emit(rows)

    def _explain_results(self, rows: list[Any]) -> Job | None:
        """Work out, on a worker, which attributes carry most of each result's distance to the query
        (the results' last column); the first :data:`SHARES_LIMIT` results only."""
        if self.bench is None or self.bench.models.interpreter is None or not rows or self.query is None:
            return None
        kind, query = self.query
        source = query.id if kind == "crop" else query
        shown = list(rows[:SHARES_LIMIT])
        job = Job(self.bench.largest_shares, source, [r.crop for r in shown], name="largest shares")
        job.signals.succeeded.connect(guarded(self, lambda shares: self._on_largest_shares(rows, shares)))
        job.signals.failed.connect(guarded(self, lambda msg: self.results.model.set_shares_pending(False)))
        self.results.model.set_shares_pending(True)
        self.runner.start("largest-shares", job)
        return job

    def _on_largest_shares(self, rows: list[Any], shares: list[Any]) -> None:
        self.results.model.set_shares(rows, shares)
        self.results_explained.emit(rows)

    def _on_search_again(self) -> None:
        if self.query is None:
            self.search_selected()
        elif self.query[0] == "crop":
            self.search_crop(self.query[1])
        else:
            self.search_file(self.query[1])

    def _on_query_dropped(self, kind: str, value: str) -> None:
        if kind == "crop" and self.bench is not None:
            crop = self.bench.ws.crops.by_sha256(value)
            if crop is not None:
                self.search_crop(crop)
        elif kind == "file":
            self.search_file(value)

    def index_now(self) -> Job | None:
        if self.bench is None:
            return None
        job = Job(self.bench.index, name="index", partial_result=True)
        job.signals.succeeded.connect(self._on_indexed)
        job.signals.failed.connect(guarded(self, lambda msg: self._on_job_failed("Indexing failed", msg)))
        self.progress.track(job, "indexing")
        self.runner.start("index", job)
        return job

    def _on_indexed(self, summary: Any) -> None:
        cancelled = " (cancelled)" if summary.cancelled else ""
        self.statusBar().showMessage(
            f"indexed {summary.computed} crops in {summary.seconds:.1f} s{cancelled}", 8000
        )
        # The attribute predictions stored with the index make the "predicted" filter available.
        self.reload_choices()

    def _cancel_current_job(self) -> None:
        job = self.progress.current()
        if job is not None:
            job.cancel()

    # ------------------------------------------------------------------ compare

    def show_compare(self) -> None:
        """Bring the compare view to the front."""
        self.tabs.setCurrentWidget(self.compare_page)

    def compare_paths(self, path_a: str, path_b: str) -> None:
        self.show_compare()
        self.compare.set_pair(path_a, path_b)

    def compare_selected(self) -> None:
        """Enter: two selected crops side by side; one selected crop against the query (or on side A)."""
        crops = self.gallery.selected_crops()
        if len(crops) >= 2:
            self.compare_paths(self._path(crops[0]), self._path(crops[1]))
        elif len(crops) == 1 and self.query is not None:
            kind, query = self.query
            self.compare_paths(self._path(query) if kind == "crop" else query, self._path(crops[0]))
        elif len(crops) == 1:
            self.show_compare()
            self.compare.set_crop(0, self._path(crops[0]))
        else:
            self.statusBar().showMessage(
                "select two crops in the gallery to compare them, or one to compare with the query", 5000
            )

    def _on_results_compare_requested(self, crop: Any) -> None:
        if self.query is None:
            return
        kind, query = self.query
        self.compare_paths(self._path(query) if kind == "crop" else query, self._path(crop))

    def _on_verdict_changed(self, verdict: str, notes: str) -> None:
        if self.case_panel.record_item_verdict(self.compare, verdict, notes):
            return  # the comparison is an open case item: the verdict is that item's
        a, b = self.compare.paths
        if self.bench is None or not (a and b):
            return
        self.writer.submit(
            record_pair_verdict, self.bench, a, b, verdict, notes, self.compare.explanation,
            on_done=lambda result, v=verdict: self._on_verdict_saved(v, *result),
        )  # fmt: skip

    def _on_verdict_saved(self, verdict: str, item: Any, crop_a: Any, crop_b: Any) -> None:
        self.statusBar().showMessage(f"verdict '{verdict}' saved with the pair (case item {item.id})", 6000)
        if verdict == "match" and (crop_a.identity_id is None or crop_a.identity_id != crop_b.identity_id):
            self.offer_same_identity(crop_a, crop_b)

    def _on_item_verdict_saved(self, verdict: str, _item: Any, crop_a: Any, crop_b: Any) -> None:
        # A Match on an open case item makes the same offer as one on an unfiled pair.
        if verdict == "match" and (crop_a.identity_id is None or crop_a.identity_id != crop_b.identity_id):
            self.offer_same_identity(crop_a, crop_b)

    def offer_same_identity(self, crop_a: Any, crop_b: Any) -> QInputDialog:
        """After a Match: offer to put both crops under one identity (an existing one or a new name)."""
        names = [n for n in (crop_a.identity, crop_b.identity) if n]
        suggestion = names[0] if names else self._next_person_name()
        options = list(dict.fromkeys([suggestion, *names, *(i.name for i in self.identities.identities)]))
        dialog = QInputDialog(self)
        dialog.setObjectName("same_identity_dialog")
        dialog.setWindowTitle("Same person")
        dialog.setLabelText("Match: put both crops under one identity?")
        dialog.setComboBoxItems(options)
        dialog.setComboBoxEditable(True)
        dialog.setTextValue(suggestion)
        dialog.setOkButtonText("Assign both")
        dialog.setCancelButtonText("Not now")
        dialog.textValueSelected.connect(
            lambda name: (
                self.undo_stack.push(
                    AssignCommand(self.writer, [crop_a.id, crop_b.id], name.strip(), self._keep_empty())
                )
                if name.strip()
                else None
            )
        )
        dialog.open()
        self.same_identity_dialog = dialog
        return dialog

    def _on_add_to_case_requested(self) -> None:
        self.case_panel.add_pair(self.compare)

    # ------------------------------------------------------------------ identities

    def _selected_crop_ids(self) -> list[int]:
        return [c.id for c in self.gallery.selected_crops()]

    def _next_person_name(self) -> str:
        taken = {i.name for i in self.identities.identities}
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            if f"Person {letter}" not in taken:
                return f"Person {letter}"
        return f"Person {len(taken) + 1}"

    def _ask_name(self, title: str, label: str, default: str, options: list[str] | None = None) -> str | None:
        if options:
            name, ok = QInputDialog.getItem(self, title, label, options, 0, True)
        else:
            name, ok = QInputDialog.getText(self, title, label, text=default)
        name = name.strip() if ok else ""
        return name or None

    def new_identity(self) -> None:
        ids = self._selected_crop_ids()
        name = self._ask_name("New identity", "Name of the new identity:", self._next_person_name())
        if name is None:
            return
        if ids:
            self.undo_stack.push(AssignCommand(self.writer, ids, name, self._keep_empty()))
        else:
            self.writer.submit(wb.identity_named, name)

    def assign_selection(self) -> None:
        ids = self._selected_crop_ids()
        if not ids:
            self.statusBar().showMessage("select crops in the gallery first", 5000)
            return
        chosen = self.identities.selected()
        options = [i.name for i in chosen] + [i.name for i in self.identities.identities if i not in chosen]
        name = self._ask_name(
            "Assign", f"Put {len(ids)} crop(s) under:", "", options or [self._next_person_name()]
        )
        if name:
            self.undo_stack.push(AssignCommand(self.writer, ids, name, self._keep_empty()))

    def split_selection(self) -> None:
        ids = self._selected_crop_ids()
        if not ids:
            self.statusBar().showMessage("select the crops to split off in the gallery first", 5000)
            return
        name = self._ask_name(
            "Split", f"Move {len(ids)} crop(s) to the new identity:", self._next_person_name()
        )
        if name:
            self.undo_stack.push(AssignCommand(self.writer, ids, name, self._keep_empty()))

    def merge_identities(self) -> None:
        chosen = self.identities.selected()
        if len(chosen) < 2:
            self.statusBar().showMessage(
                "select two or more identities in the list (the first one is kept)", 5000
            )
            return
        self.undo_stack.beginMacro(f"merge into {chosen[0].name}")
        for other in chosen[1:]:
            self.undo_stack.push(MergeCommand(self.writer, other, chosen[0], self._keep_empty()))
        self.undo_stack.endMacro()

    def rename_identity(self) -> None:
        chosen = self.identities.selected()
        if not chosen:
            self.statusBar().showMessage("select an identity in the list first", 5000)
            return
        name = self._ask_name("Rename", f"New name for {chosen[0].name}:", chosen[0].name)
        if name and name != chosen[0].name:
            self.undo_stack.push(RenameCommand(self.writer, chosen[0], name))

    def unlabel_selection(self) -> None:
        ids = self._selected_crop_ids()
        if not ids:
            self.statusBar().showMessage("select the crops to unlabel in the gallery first", 5000)
            return
        self.undo_stack.push(AssignCommand(self.writer, ids, None, self._keep_empty()))

    def delete_identities(self) -> None:
        """Delete the identities selected in the list; their crops become unlabelled (Edit > Undo restores)."""
        chosen = self.identities.selected()
        if not chosen:
            self.statusBar().showMessage("select the identities to delete in the list first", 5000)
            return
        crops = sum(i.crop_count or 0 for i in chosen)
        self.undo_stack.push(DeleteCommand(self.writer, chosen))
        what = chosen[0].name if len(chosen) == 1 else f"{len(chosen)} identities"
        self.statusBar().showMessage(
            f"deleted {what}; {crops} crop{'s' * (crops != 1)} unlabelled (Edit > Undo restores)", 8000
        )

    def _keep_empty(self) -> bool:
        return self.keep_empty_action.isChecked()

    def _on_identity_activated(self, identity_id: int) -> None:
        self.tabs.setCurrentWidget(self.gallery)
        self.gallery.show_identity(identity_id)

    def _on_store_written(self) -> None:
        self.gallery_model.refresh()
        self.reload_choices()

    # ------------------------------------------------------------------ models

    def _setting_json(self, root: str | Path, name: str) -> Any:
        """A per-workspace setting stored as JSON (``None`` when absent or unreadable)."""
        import json

        text = self.settings.value(f"{workspace_key(root)}/{name}")
        try:
            return json.loads(str(text)) if text else None
        except ValueError:
            return None

    def _set_setting_json(self, root: str | Path, name: str, value: Any) -> None:
        import json

        group = workspace_key(root)
        self.settings.setValue(f"{group}/path", str(Path(root).resolve()))
        self.settings.setValue(f"{group}/{name}", json.dumps(value))

    def remembered_models(self, root: str | Path) -> tuple[str, str | None] | None:
        """The file hashes of the target and interpreter last chosen for the workspace in ``root``."""
        value = self._setting_json(root, "models")
        if isinstance(value, dict) and isinstance(value.get("target"), str):
            interpreter = value.get("interpreter")
            return value["target"], interpreter if isinstance(interpreter, str) else None
        return None

    def _save_gallery_filters(self, _flt: Any = None) -> None:
        if self.bench is not None and not self._restore_filters:
            self._set_setting_json(self.bench.root, "gallery_filters", self.gallery.filter_state())

    def _show_models(self, models: wb.ModelPair) -> None:
        if models.target is None:
            self.model_label.setText("model: none")
            self.model_label.setToolTip(models.problem)
        else:
            interp = models.interpreter.name if models.interpreter else "no interpreter"
            self.model_label.setText(f"model: {models.target.name} + {interp}")
            self.model_label.setToolTip(models.problem or models.target.file_path or "")

    def current_models(self) -> tuple[str, str | None] | None:
        if self.bench is None or self.bench.models.target is None:
            return None
        interpreter = self.bench.models.interpreter
        return self.bench.models.target.file_hash, interpreter.file_hash if interpreter else None

    def show_models_dialog(self) -> Job | None:
        """Models > Use model: list the registered pairs (read on a worker), then open the chooser."""
        if self.bench is None:
            show_error(self, "Use model", "Open or create a workspace first (File menu).")
            return None
        job = Job(wb.model_choices, self.bench.ws, name="models")
        job.signals.succeeded.connect(guarded(self, self._open_models_dialog))
        job.signals.failed.connect(guarded(self, lambda msg: self._on_job_failed("Models", msg)))
        self.io.start("model-choices", job)
        return job

    def _open_models_dialog(self, choices: list[wb.ModelChoice]) -> None:
        from gui.models_dialog import UseModelDialog

        dialog = UseModelDialog(choices, self.current_models(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.chosen.connect(
            lambda c: self.use_models(c.target.file_hash, c.interpreter and c.interpreter.file_hash)
        )
        dialog.open()
        self.models_dialog = dialog

    def use_models(self, target_hash: str, interpreter_hash: str | None) -> Job | None:
        """Load the registered target and interpreter with these file hashes on a worker and use them."""
        return self._switch_models(
            lambda ws: wb.select_models(ws, target_hash, interpreter_hash), "loading the chosen models"
        )

    def _switch_models(self, resolve: Any, title: str) -> Job | None:
        if self.bench is None:
            return None
        job = Job(switch_models, self.bench, resolve, name="models")
        job.signals.succeeded.connect(guarded(self, self._on_models_switched))
        job.signals.failed.connect(guarded(self, lambda msg: self._on_job_failed("Models not changed", msg)))
        self.progress.track(job, title)
        self.runner.start("switch-models", job)
        return job

    def _on_models_switched(self, result: tuple[wb.ModelPair, str]) -> None:
        pair, device = result
        bench = self.bench
        if bench is None:
            return
        self._set_setting_json(
            bench.root,
            "models",
            {
                "target": pair.target.file_hash,
                "interpreter": pair.interpreter.file_hash if pair.interpreter else None,
            },
        )
        self._show_models(pair)
        self._on_models_loaded(device)
        self.statusBar().showMessage(f"now using {self.model_label.text().removeprefix('model: ')}", 8000)
        # Distances from the old model no longer hold: the results go, the comparison is explained again
        # (a case item keeps its filed explanation) and the threshold is calibrated for the new target.
        self.results.set_results([])
        self.compare.threshold = None
        threshold = Job(bench.threshold, name="threshold")
        threshold.signals.succeeded.connect(self._on_threshold)
        self.runner.start("threshold", threshold)
        if self.compare.case_item is None and all(self.compare.paths):
            self.compare.run_explain()
        self.reload_choices()
        self.models_changed.emit(pair)

    def show_import_model_dialog(self) -> Any:
        """Models > Import a model file: check and register a target (and interpreter), then offer it."""
        from gui.models_dialog import ImportModelDialog

        if self.bench is None:
            return show_error(self, "Import a model file", "Open or create a workspace first (File menu).")
        dialog = ImportModelDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.import_requested.connect(lambda t, i: self.import_model_files(t, i, dialog))
        dialog.open()
        self.import_model_dialog = dialog
        return dialog

    def import_model_files(self, target: str, interpreter: str, dialog: Any = None) -> Job | None:
        """Check and register model files on a worker; a refusal is shown in ``dialog`` (or a message box)."""
        if self.bench is None:
            return None
        job = Job(wb.import_models, self.bench.ws, target or None, interpreter or None, name="import model")

        def refused(message: str) -> None:
            if dialog is not None and shiboken6.isValid(dialog) and dialog.isVisible():
                dialog.show_refusal(message)
            else:
                self._on_job_failed("Model not imported", message)

        def imported(pair: wb.ModelPair) -> None:
            if dialog is not None and shiboken6.isValid(dialog):
                dialog.accept()
            self.offer_model_switch(pair.interpreter or pair.target)

        job.signals.succeeded.connect(guarded(self, imported))
        job.signals.failed.connect(guarded(self, refused))
        self.progress.track(job, "checking the model files")
        self.runner.start("import-model", job)
        return job

    def offer_model_switch(self, model: Any) -> QMessageBox | None:
        """A model was registered (imported, or by the training panel): ask whether to use it now."""
        if self.bench is None or model is None:
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "New model",
            f"The {model.kind} model {model.name!r} is registered in this workspace.\n"
            "Use it for search and comparison now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("switch_model_box")
        box.button(QMessageBox.StandardButton.Yes).setText("Use it")
        box.button(QMessageBox.StandardButton.No).setText("Not now")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(
            lambda: self._switch_models(lambda ws: wb.pair_for_model(ws, model), f"loading {model.name}")
        )
        box.open()
        self.switch_model_box = box
        return box

    # ------------------------------------------------------------------ errors and closing

    def show_training_panel(self) -> None:
        from gui.training import show_training_window

        root = self.bench.root if self.bench is not None else None
        self.training_window = show_training_window(self, getattr(self, "training_window", None), root)
        if not self.training_window.property("models_offer"):
            # Once per panel (it is made anew after it was closed without a workspace).
            self.training_window.setProperty("models_offer", True)
            self.training_window.model_registered.connect(guarded(self, self.offer_model_switch))

    def _on_job_failed(self, title: str, message: str) -> None:
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        self.last_error = show_error(self, title, message)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("compare/opacity", self.compare.opacity.value())
        self.settings.setValue("compare/colours", self.compare.cmap_box.currentText())
        self.settings.setValue("compare/splitter", self.compare.splitter.saveState())
        self.settings.sync()
        self.case_panel.flush_notes()
        self.runner.cancel_all()
        self.io.cancel_all()
        self.runner.pool.waitForDone(5000)
        self.io.pool.waitForDone(5000)
        self.writer.wait(5000)
        if self.bench is not None:
            self.bench.close()
            self.bench = None
        self.collector.release()
        super().closeEvent(event)

    def schedule_start(self) -> None:
        """Start once the event loop runs, so that the window is on screen before any dialog."""
        QTimer.singleShot(0, self.start)
