"""Progress of the long jobs in the status bar, each cancellable."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from gui.workers import Job, guarded


class JobProgressWidget(QWidget):
    """Shows the newest running job (its message and progress) with a Cancel button; hidden when idle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.jobs: list[tuple[Job, str]] = []
        self._last: dict[int, tuple[int, int, str]] = {}
        self.setVisible(False)

    def track(self, job: Job, title: str) -> None:
        self.jobs.append((job, title))
        job.signals.progress_changed.connect(
            guarded(self, lambda d, t, m, j=job: self._on_progress_changed(j, d, t, m))
        )
        job.signals.finished.connect(guarded(self, lambda j=job: self._on_job_finished(j)))
        self._show()

    def current(self) -> Job | None:
        return self.jobs[-1][0] if self.jobs else None

    def _on_progress_changed(self, job: Job, done: int, total: int, message: str) -> None:
        self._last[id(job)] = (done, total, message)
        if job is self.current():
            self._show()

    def _on_job_finished(self, job: Job) -> None:
        self.jobs = [(j, t) for j, t in self.jobs if j is not job]
        self._last.pop(id(job), None)
        self._show()

    def _on_cancel_clicked(self) -> None:
        job = self.current()
        if job is not None:
            job.cancel()
            self.label.setText(f"{self.jobs[-1][1]}: cancelling...")

    def _show(self) -> None:
        if not self.jobs:
            self.setVisible(False)
            return
        job, title = self.jobs[-1]
        done, total, message = self._last.get(id(job), (0, 0, ""))
        more = f" (+{len(self.jobs) - 1} more)" if len(self.jobs) > 1 else ""
        self.label.setText(f"{message or title}{more}")
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)  # busy indicator until the job knows its size
        self.cancel_button.setEnabled(not job.cancelled)
        self.setVisible(True)
