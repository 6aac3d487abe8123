"""Jobs on worker threads: which results reach the UI thread."""

from __future__ import annotations

import threading

from gui.workers import Job, JobRunner


def _run_on_a_thread(job: Job) -> None:
    """Run ``job`` to its end on a plain thread: its signals are then queued, not yet delivered."""
    worker = threading.Thread(target=job.run)
    worker.start()
    worker.join()


def _record(job: Job) -> dict[str, list]:
    seen: dict[str, list] = {"succeeded": [], "failed": [], "finished": []}
    job.signals.succeeded.connect(seen["succeeded"].append)
    job.signals.failed.connect(seen["failed"].append)
    job.signals.finished.connect(lambda: seen["finished"].append(True))
    return seen


def test_a_finished_job_delivers_its_result_on_the_ui_thread(qtbot) -> None:
    job = Job(lambda: 42)
    seen = _record(job)
    _run_on_a_thread(job)
    assert seen["succeeded"] == []  # queued until the UI thread runs its events
    qtbot.waitUntil(lambda: seen["finished"] == [True], timeout=2000)
    assert seen["succeeded"] == [42]
    assert seen["failed"] == []


def test_a_result_queued_before_its_job_was_replaced_is_dropped(qtbot) -> None:
    # The worker has finished and queued its result; then a newer job under the same key replaces it,
    # before the UI thread delivered the result. The newer job's result is the only one shown.
    runner = JobRunner()
    gate = threading.Event()
    old = Job(lambda: gate.wait(5) and "old")
    old_seen = _record(old)
    runner.start("search", old)
    gate.set()
    assert old.wait(5)
    assert old_seen["succeeded"] == []  # its result is still in the queue
    new = Job(lambda: "new")
    new_seen = _record(new)
    runner.start("search", new)
    assert old.cancelled
    qtbot.waitUntil(lambda: new_seen["finished"] == [True] and old_seen["finished"] == [True], timeout=5000)
    assert old_seen["succeeded"] == []
    assert new_seen["succeeded"] == ["new"]
    runner.shutdown()


def test_a_cancelled_job_still_reports_its_end_and_its_failure(qtbot) -> None:
    def broken() -> None:
        raise RuntimeError("disk gone")

    job = Job(broken)
    seen = _record(job)
    _run_on_a_thread(job)
    job.cancel()
    qtbot.waitUntil(lambda: seen["finished"] == [True], timeout=2000)
    assert seen["failed"] == ["unexpected RuntimeError: disk gone"]
    assert seen["succeeded"] == []


def test_a_job_that_keeps_its_partial_result_delivers_it_when_cancelled_but_not_when_replaced(qtbot) -> None:
    runner = JobRunner()
    gate = threading.Event()
    stopped = Job(
        lambda should_stop: gate.wait(5) and ("stopped" if should_stop() else "done"), partial_result=True
    )
    seen = _record(stopped)
    runner.start("import", stopped)
    stopped.cancel()  # Cancel pressed: the job stops and says what it did
    gate.set()
    qtbot.waitUntil(lambda: seen["finished"] == [True], timeout=5000)
    assert seen["succeeded"] == ["stopped"]

    gate.clear()
    replaced = Job(lambda: gate.wait(5) and "old", partial_result=True)
    replaced_seen = _record(replaced)
    runner.start("import", replaced)
    newer = Job(lambda: "new")
    newer_seen = _record(newer)
    runner.start("import", newer)  # a newer job under the key: the old one's result is nobody's
    gate.set()
    qtbot.waitUntil(
        lambda: replaced_seen["finished"] == [True] and newer_seen["finished"] == [True], timeout=5000
    )
    assert replaced_seen["succeeded"] == [] and newer_seen["succeeded"] == ["new"]

    # Closing a workspace drops every result, partial or not.
    gate.clear()
    closing = Job(lambda: gate.wait(5) and "late", partial_result=True)
    closing_seen = _record(closing)
    runner.start("import", closing)
    runner.cancel_all()
    gate.set()
    qtbot.waitUntil(lambda: closing_seen["finished"] == [True], timeout=5000)
    assert closing_seen["succeeded"] == []
    runner.shutdown()


def test_a_result_that_is_not_delivered_is_handed_to_discard(qtbot) -> None:
    runner = JobRunner()
    gate = threading.Event()
    discarded: list[str] = []
    old = Job(lambda: gate.wait(5) and "old workspace", discard=discarded.append)
    old_seen = _record(old)
    runner.start("open", old)
    newer = Job(lambda: "new workspace", discard=discarded.append)
    newer_seen = _record(newer)
    runner.start("open", newer)  # opened before the first one got there
    gate.set()
    qtbot.waitUntil(lambda: old_seen["finished"] == [True] and newer_seen["finished"] == [True], timeout=5000)
    assert newer_seen["succeeded"] == ["new workspace"] and old_seen["succeeded"] == []
    assert discarded == ["old workspace"]  # closed, not left to the garbage collector

    # Replaced while its result waits in the queue: discarded where it arrives.
    queued = Job(lambda: "queued", discard=discarded.append)
    queued_seen = _record(queued)
    _run_on_a_thread(queued)
    queued.supersede()
    qtbot.waitUntil(lambda: queued_seen["finished"] == [True], timeout=5000)
    assert queued_seen["succeeded"] == [] and discarded == ["old workspace", "queued"]
    runner.shutdown()
