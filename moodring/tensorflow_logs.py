"""TensorFlow's C++ log lines, kept off a user's stderr.

`moodring/__init__.py` sets `TF_CPP_MIN_LOG_LEVEL=3`, which silences what TensorFlow's C++ code logs once it runs
(e.g. "E0000 ... oneDNN supports DT_HALF only on platforms with AVX-512" on every float16-storage model). Two
lines per start escape it: "I0000 ... port.cc:153] oneDNN custom operations are on", logged through absl before
absl is initialised, whenever `TF_ENABLE_ONEDNN_OPTS` is set, as Moodring sets it for speed. Those go straight to
file descriptor 2, past Python, so `dropped()` puts a pipe there for the duration of a command and passes on every
line but TensorFlow's. Nothing they say asks anything of a user, and an "E0000" line reads as an error;
`moodring -v` leaves them all in place.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

TENSORFLOW_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\))"
)
"""absl's C++ log prefix (severity, date, time, thread, file:line), and absl's note that it is not initialised."""


@contextlib.contextmanager
def dropped() -> Iterator[None]:
    """Drop TensorFlow's C++ log lines from file descriptor 2 inside the block; all else passes, in order."""
    sys.stderr.flush()
    stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(stderr, "wb", buffering=0, closefd=False) as out:
            for line in pipe:
                if not TENSORFLOW_LINE.match(line):
                    out.write(line)

    reader = threading.Thread(target=forward, name="tensorflow-log-filter", daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)  # closes the pipe's last write end: the reader reads to the end and stops
        reader.join(timeout=10)
        os.close(stderr)
