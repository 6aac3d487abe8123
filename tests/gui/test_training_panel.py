"""The training panel: a run from the form to its end, the live curves, pause, cancel, resume, register."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from cli import training_jobs as tj


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from amd.synth.writer import SynthConfig, write_dataset

    root = tmp_path_factory.mktemp("synth") / "data"
    write_dataset(
        root, SynthConfig(train_ids=6, test_ids=3, per_id=4, cameras=2, height=64, width=32, seed=7)
    )
    return root


@pytest.fixture(autouse=True)
def full_priority(monkeypatch):
    # Workers run niced so that the UI thread comes first; on a CI machine shared with other jobs a niced
    # training thread gets a few percent of a core, so these tests run it at normal priority.
    import gui.workers

    monkeypatch.setattr(gui.workers, "lower_thread_priority", lambda: None)


@pytest.fixture()
def ws_root(tmp_path: Path) -> Path:
    from db.workspace import Workspace

    Workspace.open(tmp_path / "ws", create=True).close()
    return tmp_path / "ws"


@pytest.fixture()
def panel(qtbot, ws_root: Path):
    from gui.training import TrainingWindow

    win = TrainingWindow(ws_root)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.ws is not None, timeout=10000)
    yield win
    win.shutdown()


def fill(win, form: tj.TrainingForm) -> None:
    win.set_form(form)
    assert win.validate() == {}, win.validate()


def small(data: Path, **changes: str) -> tj.TrainingForm:
    base = tj.TrainingForm(data=str(data), size="64x32", epochs="1", p="3", k="2", eval_every="1", log_every="1",
                           device="cpu")  # fmt: skip
    return dataclasses.replace(base, **changes)


def logged_steps(run_dir: Path) -> list[dict]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "step"]


def test_a_bad_field_shows_its_reason_and_disables_start(qtbot, panel, synth: Path) -> None:
    fill(panel, small(synth))
    assert panel.start_button.isEnabled()
    panel.edits["lr"].setText("fast")
    assert panel.errors["lr"].text() == "must be a number" and panel.errors["lr"].isVisibleTo(panel)
    assert not panel.start_button.isEnabled()
    assert panel.form_message.text() == "1 field(s) to correct before starting."
    panel.edits["lr"].setText("0.001")
    panel.size_edit.setText("64")
    assert panel.errors["size"].text() == "write it as HEIGHTxWIDTH, e.g. 256x128"
    assert not panel.errors["lr"].isVisibleTo(panel) and not panel.start_button.isEnabled()
    panel.size_edit.setText("64x32")
    # Interpreter: the target model is asked for, and the target's own fields are hidden.
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("interpreter"))
    assert panel.edits["epochs"].text() == "60" and panel.errors["target"].text().startswith(
        "choose the target"
    )
    assert not panel.fields["arch"].isVisibleTo(panel) and panel.target_edit.isVisibleTo(panel)
    assert not panel.start_button.isEnabled()
    panel.grab().save(str(Path(panel.ws.root) / "panel_invalid.png"))


def test_a_short_run_reaches_its_end_with_one_point_per_logged_step(qtbot, panel, synth: Path) -> None:
    fill(panel, small(synth))
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as done:
        panel.start()
        assert not panel.start_button.isEnabled()  # one run at a time
    outcome = done.args[0]
    assert not outcome.stopped and outcome.epochs_done == 1 and outcome.run.status == "finished"
    qtbot.waitUntil(lambda: panel.job is None and panel.runs_model.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: panel.runs_model.rows[0].status == "finished", timeout=5000)
    row = panel.runs_model.rows[0]
    assert row.epochs == "1/1" and "mAP" in row.metrics and row.model_file
    panel._flush()
    steps = logged_steps(Path(outcome.run.config["job"]["run_dir"]))
    assert len(steps) == 2  # 6 identities // P=3 = 2 steps per epoch, every step logged
    for term in ("id", "triplet", "total"):
        xs, ys = panel.curves[f"loss:{term}"].getData()
        assert list(xs) == [1, 2] and list(ys) == pytest.approx([e["losses"][term] for e in steps])
    xs, ys = panel.curves["metric:mAP"].getData()
    assert list(xs) == [1] and list(ys) == pytest.approx([outcome.metrics["mAP"]])
    # The evaluation table: one column per evaluation, the figures of the run's record.
    table = panel.eval_table
    assert table.columnCount() == 2 and table.horizontalHeaderItem(1).text() == "Epoch 1"
    assert table.item(0, 0).text() == "mAP"
    assert float(table.item(0, 1).text()) == pytest.approx(outcome.metrics["mAP"], abs=1e-3)
    assert "iteration 2/2" in panel.progress_label.text() and "images/s" in panel.progress_label.text()
    assert not panel.adre_plot.isVisible()  # a target run has no ADRE
    assert "finished after 1 epoch(s)" in panel.status_label.text()

    panel.runs_view.selectRow(0)
    assert panel.register_button.isEnabled() and not panel.resume_button.isEnabled()
    with qtbot.waitSignal(panel.model_registered, timeout=10000) as reg:
        panel.register_selected()
    model = reg.args[0]
    assert model.kind == "target" and model.file_path == row.model_file
    qtbot.waitUntil(lambda: panel.runs_model.rows[0].registered, timeout=5000)
    assert [m.id for m in panel.ws.models.list("target")] == [model.id]
    assert not panel.register_button.isEnabled()
    panel.grab().save(str(Path(panel.ws.root) / "panel_finished.png"))


def test_pause_holds_the_run_and_cancel_stops_it_within_seconds(qtbot, panel, synth: Path) -> None:
    fill(panel, small(synth, epochs="200", eval_every="100"))
    panel.start()
    qtbot.waitUntil(lambda: len(panel.steps) >= 2, timeout=30000)
    panel.toggle_pause()
    assert panel.pause_button.text() == "Continue"
    # The trainer stops at the end of its current step and records the pause.
    qtbot.waitUntil(
        lambda: (panel.ws.runs.get(panel.live_run).metrics or {}).get("paused") is True, timeout=20000
    )
    qtbot.wait(300)  # that step's event is drawn
    held = len(panel.steps)
    qtbot.wait(1000)
    assert len(panel.steps) == held and panel.job is not None
    panel.toggle_pause()
    qtbot.waitUntil(lambda: len(panel.steps) > held, timeout=10000)
    start = time.monotonic()
    with qtbot.waitSignal(panel.run_finished, timeout=10000) as done:
        panel.cancel()
    # It stops after the step under way: within a few seconds, however loaded the machine (6 images a step).
    slowest_step = max(6 / e["images_per_s"] for e in panel.steps)
    assert time.monotonic() - start < 2.0 + slowest_step
    assert done.args[0].stopped and done.args[0].run.status == "cancelled"
    qtbot.waitUntil(
        lambda: panel.job is None and panel.runs_model.rows[0].status == "cancelled", timeout=5000
    )


def test_an_interrupted_run_resumes_from_its_saved_epoch(qtbot, panel, synth: Path) -> None:
    # A run cancelled after its first epoch, as if the program had been closed then.
    run = tj.create_run(panel.ws, small(synth, epochs="2"))
    control = tj.RunControl()
    tj.execute_run(
        panel.ws, run.id, control, on_event=lambda e: control.cancel() if e["type"] == "eval" else None
    )
    panel.refresh_runs()
    qtbot.waitUntil(lambda: panel.runs_model.rowCount() == 1, timeout=5000)
    panel.runs_view.selectRow(0)
    assert panel.runs_model.rows[0].status == "cancelled" and panel.resume_button.isEnabled()
    starts: list[dict] = []
    panel.signals.event_received.connect(lambda e: starts.append(e) if e.get("type") == "start" else None)
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as done:
        panel.resume_selected()
    assert starts == [{"type": "start", "epoch": 1, "iteration": 2, "max_epochs": 2, "iters_per_epoch": 2}]
    assert not done.args[0].stopped and done.args[0].epochs_done == 2
    panel._flush()
    # The curve keeps the first session's points and continues: one point per step, none twice.
    xs, _ = panel.curves["loss:total"].getData()
    assert list(xs) == [1, 2, 3, 4]
    qtbot.waitUntil(lambda: panel.job is None and panel.runs_model.rows[0].status == "finished", timeout=5000)


def test_an_interpreter_run_shows_sample_explanations_and_registers(
    qtbot, panel, synth: Path, tiny_models
) -> None:
    form = small(synth, kind="interpreter", target=str(tiny_models["target"]), size="", map_mode="localising")
    fill(panel, form)
    with qtbot.waitSignal(panel.samples_ready, timeout=90000) as ready:
        panel.start()
    samples = ready.args[0]
    assert len(samples) == 4 and [s.same for s in samples] == [True, False, True, False]
    assert panel.samples.count() == 4 and "same person, distance" in panel.samples.item(0).text()
    assert samples[0].overlay_a.shape == (64, 32, 3) and len(samples[0].top) == 3
    panel._flush()
    assert {"loss:distillation", "loss:prior", "loss:total"} <= set(panel.curves)
    assert (
        len(panel.curves["metric:x_map_e"].getData()[0]) == 1
        and len(panel.curves["metric:adre"].getData()[0]) == 1
    )
    qtbot.waitUntil(lambda: panel.job is None and panel.runs_model.rows[0].status == "finished", timeout=5000)
    panel.runs_view.selectRow(0)
    with qtbot.waitSignal(panel.model_registered, timeout=10000) as reg:
        panel.register_selected()
    assert reg.args[0].kind == "interpreter"
    assert [m.kind for m in panel.ws.models.list()] == ["target", "interpreter"]
    panel.grab().save(str(Path(panel.ws.root) / "panel_interpreter.png"))


def test_the_main_window_opens_the_panel_on_its_workspace(qtbot, window) -> None:
    action = next(a for a in window.menuBar().actions() if a.text() == "&Training")
    entry = action.menu().actions()[0]
    assert entry.text() == "&Training panel..."
    entry.trigger()
    panel = window.training_window
    qtbot.waitUntil(lambda: panel.ws is not None, timeout=10000)
    assert Path(panel.ws.root).resolve() == window.bench.root.resolve() and panel.labelled == 6
    panel.format_box.setCurrentIndex(panel.format_box.findData("workspace"))
    assert not panel.fields["data"].isVisibleTo(panel) and "data" not in panel.validate()
    window.close()
    assert panel.ws is None  # closed with the main window


def test_evidence_pretraining_progress_is_logged_not_plotted(qtbot, panel) -> None:
    panel._on_event_received({"type": "evidence_cache", "epoch": 3, "epochs": 8, "loss": 0.21875})
    qtbot.waitUntil(lambda: "pass 3 of 8, loss 0.2188" in panel.log_view.toPlainText(), timeout=5000)
    assert panel.evals == [] and panel.steps == []


def test_the_form_fits_a_1024_by_640_window(qtbot, panel, synth: Path) -> None:
    from PySide6.QtCore import QPoint, QRect, Qt

    assert panel.minimumSizeHint().width() <= 1024
    panel.resize(1024, 640)
    qtbot.waitUntil(lambda: panel.width() == 1024, timeout=5000)
    qtbot.wait(50)
    viewport = panel.form_scroll.viewport()

    def inside(widget) -> bool:
        rect = QRect(widget.mapTo(viewport, QPoint(0, 0)), widget.size())
        return 0 <= rect.left() and rect.right() < viewport.width()

    # Nothing of the form is cut on the right: the Browse button, the boxes and the reasons are whole.
    for widget in (
        panel.data_browse,
        panel.data_edit,
        panel.format_box,
        panel.kind_box,
        panel.errors["data"],
    ):
        assert inside(widget), widget.objectName() or type(widget).__name__
    assert panel.data_browse.width() >= panel.data_browse.sizeHint().width()
    # A long reason wraps within the form (at its narrowest) instead of running past its edge.
    panel.split.setSizes([1, 2000])
    panel.data_edit.setText(str(synth.parent))  # a folder, but not a Market-1501 layout
    error = panel.errors["data"]
    qtbot.wait(50)
    assert error.text().startswith("no bounding_box_train folder")
    assert error.fontMetrics().horizontalAdvance(error.text()) > error.width()  # it needs two lines
    assert error.isVisibleTo(panel) and inside(error)
    assert error.height() >= 2 * error.fontMetrics().height()
    assert inside(panel.data_browse)
    # The runs table's headers are capitalised like the other tables'.
    model = panel.runs_model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == ["Run", "Kind", "Status", "Epochs", "Metrics", "Created", "Registered"]


def test_a_blank_folder_is_a_hint_a_wrong_one_an_error(qtbot, panel, synth: Path) -> None:
    from gui.training import ERROR_STYLE, HINT_STYLE

    panel.set_form(tj.form_defaults("target"))
    assert panel.errors["data"].styleSheet() == HINT_STYLE
    assert panel.form_message.text() == "Choose the dataset folder to start."
    panel.kind_box.setCurrentIndex(panel.kind_box.findData("interpreter"))
    # No target is registered in this workspace: it is asked for, as a choice still to make.
    assert panel.form_message.text() == "Choose the dataset folder and the target model to start."
    assert panel.errors["target"].styleSheet() == HINT_STYLE
    panel.data_edit.setText(str(synth / "missing"))
    assert panel.errors["data"].styleSheet() == ERROR_STYLE
    assert panel.form_message.text() == "2 field(s) to correct before starting."


def test_the_workspace_target_is_proposed_for_an_interpreter(qtbot, ws_root: Path, tiny_models) -> None:
    from cli import workbench as wb
    from db.workspace import Workspace
    from gui.training import TrainingWindow

    ws = Workspace.open(ws_root)
    try:
        target = wb.register_models(ws, tiny_models["target"], tiny_models["interpreter"]).target
    finally:
        ws.close()
    win = TrainingWindow(ws_root)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.ws is not None, timeout=10000)
    win.kind_box.setCurrentIndex(win.kind_box.findData("interpreter"))
    assert win.target_edit.text() == target.file_path
    assert win.target_box.currentData() == target.file_path
    assert "target" not in win.validate()
    # A file the analyst chose stays chosen when the workspace is read again.
    win.target_edit.setText(str(tiny_models["folder"] / "other.pt"))
    win._on_workspace_opened((win.ws, win.labelled, [(target.name, target.file_path)]))
    assert win.target_edit.text().endswith("other.pt")
    win.shutdown()


def test_legends_sit_above_the_plots_and_the_total_has_its_own_axis(qtbot, panel) -> None:
    assert panel.hints["loss"].isVisible() and panel.hints["metric"].isVisible()
    assert panel.hints["loss"].toPlainText().startswith("Start a run")
    steps = [
        {"type": "step", "epoch": 0, "iteration": i,
         "losses": {"distillation": 0.6 - i / 100, "prior": 0.5 - i / 200, "total": 5.6 - i / 20}}
        for i in range(20)
    ]  # fmt: skip
    evals = [{"type": "eval", "epoch": 1, "iteration": 20, "metrics": {"x_map_e": 0.6, "adre": 1.5}}]
    panel._add_events(steps + evals)
    panel._draw()
    assert not panel.hints["loss"].isVisible() and not panel.hints["metric"].isVisible()
    for key, plot in (("loss", panel.loss_plot), ("metric", panel.metric_plot)):
        legend = panel.legends[key]
        assert legend.parent() is plot.parent()
        assert legend.geometry().bottom() < plot.geometry().top()  # above the plot, never over a curve
    text = panel.legends["loss"].text()
    assert "distillation" in text and "prior" in text and "total (right axis)" in text
    assert "X-mAP_e" in panel.legends["metric"].text()
    # The terms share the left axis, the total has the right one: the terms are not flattened by it.
    assert panel.curves["loss:total"].getViewBox() is panel.total_view
    assert panel.curves["loss:prior"].getViewBox() is panel.loss_plot.getViewBox()
    assert panel.loss_plot.getPlotItem().getAxis("right").isVisible()
    panel.loss_plot.getViewBox().autoRange()
    low, high = panel.loss_plot.getViewBox().viewRange()[1]
    assert high < 1.0 and low > 0.2


def test_the_form_shows_the_command_lines_ranges(qtbot, panel, synth: Path) -> None:
    from amd.train.config import BOUNDS, SIZE_BOUNDS

    fill(panel, small(synth))
    lo, hi = int(SIZE_BOUNDS.minimum), int(SIZE_BOUNDS.maximum)
    panel.size_edit.setText(f"{lo}x{hi}")
    assert "size" not in panel.validate() and panel.start_button.isEnabled()
    panel.size_edit.setText(f"{hi}x{hi + 1}")
    assert panel.errors["size"].text() == f"height and width must be between {lo} and {hi}"
    assert panel.errors["size"].isVisibleTo(panel) and not panel.start_button.isEnabled()
    panel.size_edit.setText("64x32")
    # Each reason in the form's words, with the numbers of the command line's range.
    workers = BOUNDS["workers"]
    for name, text, reason in (
        ("workers", f"{workers.maximum + 1:g}", f"must be between 0 and {workers.maximum:g}"),
        ("eval_every", "0", f"must be at least {BOUNDS['eval_every'].minimum:g}"),
        ("label_smoothing", "1", "must be in [0, 1)"),
        ("lr", "0", "must be in (0, 1]"),
    ):
        panel.edits[name].setText(text)
        assert panel.errors[name].text() == reason and panel.errors[name].isVisibleTo(panel)
    assert not panel.start_button.isEnabled()
    assert panel.form_message.text() == "4 field(s) to correct before starting."


def test_the_form_accepts_exactly_what_the_command_line_accepts(qtbot, panel, synth: Path) -> None:
    """At both ends of every numeric field's range, and just beyond, the form and the command line's
    check (:func:`amd.train.config.check_config`) agree."""
    from amd.train.config import BOUNDS, SIZE_BOUNDS, ConfigValueError, check_config

    def cli_accepts(config, **change) -> bool:
        try:
            check_config(dataclasses.replace(config, **change))
        except ConfigValueError:
            return False
        return True

    def edges(name: str, whole: bool) -> list[float]:
        b = BOUNDS[name]
        ends = [e for e in (b.minimum, b.maximum, b.above, b.below) if e is not None]
        step = 1 if whole else 1e-6
        return sorted({v for e in ends for v in (e - step, e, e + step)} | ({1e6} if whole else set()))

    compared = 0
    for kind, fields in (
        ("target", ("epochs", "p", "k", "lr", "triplet_weight", "label_smoothing", "eval_every", "log_every",
                    "workers")),
        ("interpreter", ("md_weight", "prior_weight", "aux_weight")),
    ):  # fmt: skip
        form = small(synth, kind=kind, map_mode="faithful", target=str(synth / "index.csv"))
        config = tj.form_to_config(form, str(synth), "market1501", "out.pt", "run")
        for name in fields:
            whole = isinstance(getattr(config, name), int)
            for value in edges(name, whole):
                text = f"{int(value)}" if whole else repr(value)
                panel.set_form(dataclasses.replace(form, **{name: text}))
                form_accepts = name not in panel.validate()
                cast = int(value) if whole else float(value)
                assert form_accepts == cli_accepts(config, **{name: cast}), (kind, name, text)
                compared += 1
        if kind == "target":
            lo, hi = int(SIZE_BOUNDS.minimum), int(SIZE_BOUNDS.maximum)
            for h, w in ((lo, hi), (lo - 1, 64), (64, hi + 1), (hi, lo)):
                panel.set_form(dataclasses.replace(form, size=f"{h}x{w}"))
                assert ("size" not in panel.validate()) == cli_accepts(config, size=(h, w)), (h, w)
                compared += 1
    assert compared > 60


def test_epochs_and_iterations_are_ticked_on_whole_numbers_only(qtbot, panel) -> None:
    evals = [{"type": "eval", "epoch": e, "iteration": 4 * e, "metrics": {"mAP": 0.1 * e}} for e in range(1, 7)]
    panel._add_events(evals)
    panel._draw()
    for plot in (panel.loss_plot, panel.metric_plot, panel.adre_plot):
        axis = plot.getAxis("bottom")
        # Six epochs across the plot: a plain axis adds ticks at 1.5, 2.5, ... and at every tenth.
        ticks = [v for _, values in axis.tickValues(1, 6, 800) for v in values]
        assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        many = [v for _, values in axis.tickValues(0, 2000, 800) for v in values]
        assert len(many) > 6 and all(v == int(v) for v in many)
