"""Training runs kept in a workspace, without Qt: the form's checks, export, run records, resume, register."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from cli.training_jobs import (
    RunControl,
    RunProgress,
    TrainingForm,
    TrainingFormError,
    create_run,
    evaluation_rows,
    execute_run,
    export_workspace_dataset,
    form_defaults,
    list_runs,
    load_exported_dataset,
    read_log,
    register_run,
    validate_form,
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from amd.synth.writer import SynthConfig, write_dataset

    root = tmp_path_factory.mktemp("synth") / "data"
    write_dataset(
        root, SynthConfig(train_ids=6, test_ids=3, per_id=4, cameras=2, height=64, width=32, seed=5)
    )
    return root


@pytest.fixture()
def ws(tmp_path: Path):
    from db.workspace import Workspace

    workspace = Workspace.open(tmp_path / "ws", create=True)
    yield workspace
    workspace.close()


def small_form(data: Path, **changes: str) -> TrainingForm:
    base = TrainingForm(data=str(data), size="64x32", epochs="2", p="3", k="2", eval_every="1", log_every="1",
                        device="cpu")  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_the_defaults_of_each_kind_are_valid_once_the_data_is_chosen(synth: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.pt"
    target.write_bytes(b"x")
    assert validate_form(dataclasses.replace(form_defaults("target"), data=str(synth))) == {}
    interp = dataclasses.replace(form_defaults("interpreter"), data=str(synth), target=str(target))
    assert interp.size == "" and interp.epochs == "60" and interp.lr == "0.0001"
    assert validate_form(interp) == {}


def test_each_bad_field_gets_its_reason(synth: Path, tmp_path: Path) -> None:
    form = small_form(tmp_path / "missing", size="12x", lr="-1", p="1", epochs="two", triplet_weight="a",
                      device="cuda")  # fmt: skip
    errors = validate_form(form, cuda_available=False)
    assert errors == {
        "data": "folder not found",
        "size": "write it as HEIGHTxWIDTH, e.g. 256x128",
        "lr": "must be in (0, 1]",
        "p": "must be between 2 and 256",
        "epochs": "must be a whole number",
        "triplet_weight": "must be a number",
        "device": "no CUDA GPU is available",
    }
    assert validate_form(small_form(tmp_path))["data"].startswith("no bounding_box_train folder:")
    assert validate_form(small_form(synth, format="csv"))["data"] == "no index.csv: not a CSV layout"
    # The command line's range (amd.train.config.SIZE_BOUNDS): 16 to 2048 pixels a side.
    assert "size" not in validate_form(small_form(synth, size="16x2048"))
    assert (
        validate_form(small_form(synth, size="15x16"))["size"]
        == "height and width must be between 16 and 2048"
    )
    interp = small_form(synth, kind="interpreter", target=str(tmp_path / "none.pt"), md_weight="0")
    assert validate_form(interp) == {"target": "file not found", "md_weight": "must be in (0, 1000]"}
    assert validate_form(small_form(synth, format="workspace"), labelled_identities=1) == {
        "data": "1 labelled identities in the workspace; 2 or more needed"
    }
    assert validate_form(small_form(synth, format="workspace"))["data"] == "open a workspace first"


def test_a_bad_form_is_refused_before_anything_is_recorded(ws, tmp_path: Path) -> None:
    with pytest.raises(TrainingFormError) as info:
        create_run(ws, small_form(tmp_path / "missing"))
    assert info.value.errors == {"data": "folder not found"}
    assert ws.runs.list() == []


def test_a_cancelled_run_resumes_from_its_saved_epoch_and_registers(ws, synth: Path) -> None:
    run = create_run(ws, small_form(synth, eval_every="2"))  # evaluated once, at the end
    assert run.status == "queued" and Path(run.output_dir).parent == ws.root / "training"
    control = RunControl()
    events: list[dict] = []

    def cancel_in_second_epoch(event) -> None:
        events.append(dict(event))
        if event["type"] == "step" and event["iteration"] == 2:
            control.cancel()  # the first step of epoch 2: the checkpoint of epoch 1 is on disk

    outcome = execute_run(ws, run.id, control, on_event=cancel_in_second_epoch)
    assert outcome.stopped and outcome.epochs_done == 1 and outcome.run.status == "cancelled"
    assert events[0] == {"type": "start", "epoch": 0, "iteration": 0, "max_epochs": 2, "iters_per_epoch": 2}
    (row,) = list_runs(ws)
    assert row.status == "cancelled" and row.resumable and row.epochs == "1/2" and not row.registered
    assert list_runs(ws, live=[run.id])[0].resumable is False  # not while this program runs it

    resumed: list[dict] = []
    outcome = execute_run(ws, run.id, RunControl(), on_event=resumed.append)
    assert resumed[0] == {"type": "start", "epoch": 1, "iteration": 2, "max_epochs": 2, "iters_per_epoch": 2}
    assert [e["iteration"] for e in resumed if e["type"] == "step"] == [2, 3]
    assert not outcome.stopped and outcome.epochs_done == 2 and outcome.run.status == "finished"
    stored = ws.runs.get(run.id).metrics
    assert [h["epoch"] for h in stored["history"]] == [2] and 0 <= stored["final"]["mAP"] <= 1
    # The log holds one step per iteration (the step cancelled in epoch 2 was logged again on resume).
    steps = [e for e in read_log(ws.runs.get(run.id)) if e["type"] == "step"]
    assert [e["iteration"] for e in steps] == [0, 1, 2, 3]
    row = list_runs(ws)[0]
    assert row.status == "finished" and not row.resumable and row.model_file and "mAP" in row.metrics

    model = register_run(ws, run.id)
    assert model.kind == "target" and model.name.endswith("(resnet18)") and model.file_path == row.model_file
    assert ws.runs.get(run.id).model_id == model.id and register_run(ws, run.id).id == model.id
    assert [m.id for m in ws.models.list("target")] == [model.id]


def test_a_run_that_fails_says_why(ws, synth: Path) -> None:
    run = create_run(ws, small_form(synth, p="50"))
    from amd.errors import AmdError

    with pytest.raises(AmdError, match="cannot build P x K batches"):
        execute_run(ws, run.id)
    stored = ws.runs.get(run.id)
    assert stored.status == "failed" and "50 identities" in stored.metrics["error"]


def test_pause_blocks_the_trainer_between_steps_until_continued() -> None:
    import threading
    import time

    control = RunControl()
    seen: list[bool] = []
    control.on_pause = seen.append
    control.pause()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (control.should_stop(), done.set()))
    thread.start()
    assert not done.wait(0.3) and control.paused
    control.resume()
    assert done.wait(2.0) and seen == [True, False] and control.paused_s >= 0.3
    control.pause()
    start = time.monotonic()
    control.cancel()  # cancelling ends a pause at once
    assert control.should_stop() is True and time.monotonic() - start < 0.5
    thread.join()


def test_workspace_labels_export_to_a_loadable_layout(tmp_path: Path) -> None:
    from cli.demo import build_demo_workspace
    from db.workspace import Workspace

    root = tmp_path / "demo"
    build_demo_workspace(root, tmp_path / "none.pt", tmp_path / "none.pt", identities=8, per_id=4, cameras=3)
    with Workspace.open(root) as ws:
        # One unlabelled crop is not exported.
        first = ws.crops.page(0, 1)[0]
        ws.crops.set_identity([first.id], None)
        summary = export_workspace_dataset(ws, tmp_path / "export", need_attributes=True, seed=0)
    assert (summary.identities, summary.held_out, summary.schema) == (8, 2, "market1501")
    assert (summary.train, summary.query, summary.gallery, summary.skipped) == (23, 2, 6, 0)
    dataset = load_exported_dataset(tmp_path / "export")
    assert len(dataset.schema) == 26 and len(dataset.train) == 23 and len(dataset.query) == 2
    assert all(r.attributes.shape == (26,) and Path(r.path).is_file() for r in dataset.train)
    assert {r.pid for r in dataset.query} == {r.pid for r in dataset.gallery}
    assert not {r.pid for r in dataset.query} & {r.pid for r in dataset.train}
    with (tmp_path / "export" / "index.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert header[:4] == ["path", "identity", "camera", "split"] and len(header) == 4 + 26


def test_progress_gives_throughput_and_eta_excluding_pauses() -> None:
    progress = RunProgress()
    progress.update(
        {"type": "start", "epoch": 1, "iteration": 10, "max_epochs": 4, "iters_per_epoch": 10}, now=100.0
    )
    assert progress.eta_s() is None and progress.text().endswith("ETA -")
    for i in range(10, 20):
        progress.update(
            {"type": "step", "epoch": 1, "iteration": i, "images_per_s": 50.0}, now=102.0 + i - 10
        )
    # 10 steps in 11 s, 1 s of it paused: 1 s a step, 20 steps left.
    progress.paused_s = 1.0
    assert progress.eta_s() == pytest.approx(20.0)
    assert progress.text() == "epoch 2/4 · iteration 20/40 · 50 images/s · ETA 20 s"


def test_evaluation_table_has_one_column_per_evaluation() -> None:
    header, rows = evaluation_rows(
        [{"epoch": 1, "mAP": 0.5, "rank1": 0.25}, {"epoch": 2, "mAP": 0.75, "rank1": 0.5}]
    )
    assert header == ["metric", "epoch 1", "epoch 2"]
    assert rows == [["mAP", "0.5", "0.75"], ["Rank-1", "0.25", "0.5"]]
