"""Fixtures that cost seconds to make (a trained run, the parsed FER2013, a fresh venv) are made once per test run.

The tests run in two pytest-xdist worker processes (pyproject's `addopts`), and a session fixture is built in each
of them. `made_once` makes a folder once for the whole run instead: in the run's own temporary folder (each
worker's is inside it), under a lock, so the first worker that needs it makes it, and another that needs it
meanwhile waits for it and then reads the same files. Without xdist it is the session's temporary folder.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """The folder `name` of this test run, filled by `make(folder)` the first time any worker asks for it.

    A `make` that fails leaves no mark of being done: the next test that asks runs it again, and fails alike.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's temporary folder is inside the run's
        root = root.parent
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder
