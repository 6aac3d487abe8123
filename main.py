"""Explainable person re-identification workbench.

``python main.py`` opens the desktop application; ``python main.py --help`` lists the headless
subcommands (they need no display).
"""

from __future__ import annotations

import sys

from cli.main import main

if __name__ == "__main__":
    sys.exit(main())
