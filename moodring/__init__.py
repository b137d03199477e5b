"""Moodring: read the emotion on a selfie and answer with music for it.

This package is the application shell: settings, errors and the `moodring` command line. The work is done
by its subpackages, each a top-level folder of the source tree (`pyproject.toml` maps them): `moodring.emotion`,
`moodring.recommender`, `moodring.bot`, `moodring.training`, and the shipped model in `moodring.models`.
"""

import os

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013's seven classes, in label order (0..6). Every model and table uses this order."""

__version__ = "0.1.0"

# TensorFlow reads these once, at import; every part of Moodring imports this package first, and a user's own
# setting wins. oneDNN made CNN training 2.2x faster on this project's 2-core CPUs (training/EXPERIMENTS.md).
# TensorFlow's C++ log lines ("I0000 ... oneDNN custom operations are on", "E0000 ... oneDNN supports DT_HALF only
# on platforms with AVX-512" for every float16-storage model) look like errors and ask nothing of the user:
# level 3 silences them, where level 2 still lets them through; `moodring -v` shows them.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
