"""The desktop application: ``run()`` opens the main window (``python main.py`` with no arguments).

Settings live in the platform's usual place (QSettings), or in ``settings.ini`` in the data folder
when ``AMD_WORKBENCH_HOME`` names one (tests and portable installs). The data folder holds the demo
workspace built on the first start.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QApplication, QWidget

from gui.compat import freeze_heap
from gui.dialogs import show_error

ORGANISATION = "AMD"
APPLICATION = "AMD Workbench"
HOME_ENV = "AMD_WORKBENCH_HOME"


def data_home() -> Path:
    """The user's data folder for the workbench (``AMD_WORKBENCH_HOME`` overrides it)."""
    env = os.environ.get(HOME_ENV)
    if env:
        path = Path(env).expanduser()
    else:
        path = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_settings() -> QSettings:
    if os.environ.get(HOME_ENV):
        return QSettings(str(data_home() / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings()


def is_user_error(exc: BaseException) -> bool:
    """Errors caused by the user's input or files (shown as a message), as opposed to bugs."""
    from amd.errors import AmdError
    from db.errors import StoreError

    return isinstance(exc, (AmdError, StoreError, OSError))


def install_excepthook(parent_of: Callable[[], QWidget | None]) -> None:
    """Show exceptions raised in slots as a dialog instead of a traceback on the console.

    A user error shows its message; anything else is a bug: the dialog says so and carries the
    traceback in its details, and the traceback is also printed for a bug report.
    """

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        parent = parent_of()
        if is_user_error(exc):
            show_error(parent, "Cannot do that", str(exc))
            return
        details = "".join(traceback.format_exception(kind, exc, tb))
        print(details, file=sys.stderr)
        show_error(
            parent,
            "Unexpected error",
            f"Something went wrong inside the workbench ({kind.__name__}: {exc}). "
            "Your workspace is safe; the details below help to report it.",
            details,
        )

    sys.excepthook = hook


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    return app  # type: ignore[return-value]


def run(argv: Sequence[str] | None = None) -> int:
    """Open the main window and run until it is closed; returns the exit status."""
    app = create_application(argv)
    from gui.main_window import MainWindow

    window = MainWindow(make_settings(), data_home())
    freeze_heap()
    install_excepthook(lambda: window)
    window.show()
    window.schedule_start()
    return int(app.exec())
