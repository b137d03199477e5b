"""One place that creates LiteRT interpreters for the selfie pipeline."""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

from moodring.errors import ModelError

_first_lock = threading.Lock()
_first_done = False


@contextmanager
def _stderr_silenced():
    """Send file descriptor 2 to /dev/null: LiteRT's C++ banner bypasses Python's sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def new_interpreter(model: bytes, source: str, threads: int = 1):
    """A ready LiteRT interpreter (XNNPACK, `threads` threads) for a flatbuffer; `ModelError` if it is not one.

    LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." once per process, on
    the first interpreter's allocation; that one is made with stderr silenced, so `moodring predict`
    prints only results and errors. Later interpreters print nothing and need no silencing.
    """
    global _first_done
    from ai_edge_litert.interpreter import Interpreter

    def create():
        try:
            interpreter = Interpreter(model_content=model, num_threads=threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{source} is not a usable LiteRT model: {str(exc).splitlines()[0]}") from None
        return interpreter

    with _first_lock:
        if not _first_done:
            with _stderr_silenced():
                interpreter = create()
            _first_done = True
            return interpreter
    return create()
