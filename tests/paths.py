"""Where the tests find the checkout's own files and `../shared` beside it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
