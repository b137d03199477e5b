"""The lean wheel install against the editable install with training, side by side in one run.

For each install: a fresh venv in a temporary folder, timed with its `pip install` (pip's cache and this
machine's pip configuration as they are, so a warm cache is what is measured), its size on disk (`du`),
the cold start of each runtime command from another folder (median of --repeats runs, after one run that
writes the bytecode), and `benchmarks/latency.py` run by that venv's Python, alternating between the two.

- lean: `python -m build --sdist`, `pip wheel --no-deps` of that sdist, `pip install moodring-*.whl`
  (the README's server install);
- editable with training: `pip install -e ".[dev,train]"` (the README's development install).

Run from anywhere: python benchmarks/install.py [--repeats 5] [--latency-runs 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
COMMANDS = {
    "--help": ["--help"],
    "predict": ["predict", str(ASTRONAUT)],
    "recommend": ["recommend", str(ASTRONAUT)],
    "bot (no token, exit 2)": ["bot"],
}


def timed(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of one command, which must exit as expected (0, or 2 for the bot without a token)."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return seconds, result


def du_mb(path: Path) -> int:
    """Size on disk in MiB, as `du -sm` counts it."""
    return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def new_venv(path: Path, install: list[str]) -> float:
    """Seconds to create a venv at `path` and pip-install `install` into it."""
    start = time.perf_counter()
    venv.create(path, with_pip=True)
    timed([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *install], check=True)
    return time.perf_counter() - start


def lean_wheel(work: Path) -> Path:
    """The wheel built from the sdist, as a release builds it."""
    dist = work / "dist"
    timed([sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), str(ROOT)], check=True)
    (sdist,) = dist.glob("moodring-*.tar.gz")
    timed([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(sdist)], check=True)
    return next(dist.glob("moodring-*.whl"))


def latency_640(python: Path, runs: int) -> tuple[float, float]:
    """(wall p50, CPU p50) in ms at 640x480 from `benchmarks/latency.py` run by `python`."""
    _, result = timed([str(python), str(ROOT / "benchmarks" / "latency.py"), "--runs", str(runs)], cwd=ROOT.parent)
    row = next(line for line in result.stdout.splitlines() if line.startswith("640x480"))
    fields = row.split()
    return float(fields[2]), float(fields[4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each command (default 5)")
    parser.add_argument("--latency-runs", type=int, default=50, help="--runs for benchmarks/latency.py (default 50)")
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them (default: a temporary folder)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="moodring-install-"))
    work.mkdir(parents=True, exist_ok=True)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    env = {name: value for name, value in os.environ.items() if name not in {"DISCORD_TOKEN", "MOODRING_MODEL"}}
    env["MOODRING_PLAYLIST_STORE"] = str(work / "playlists.json")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")

    wheel = lean_wheel(work)
    installs = {
        "lean wheel": (work / "lean", [str(wheel)]),
        "editable [dev,train]": (work / "full", ["-e", f"{ROOT}[dev,train]"]),
    }
    seconds, size = {}, {}
    for name, (path, install) in installs.items():
        shutil.rmtree(path, ignore_errors=True)
        seconds[name] = new_venv(path, install)
        size[name] = du_mb(path)
        print(f"{name:<22} install {seconds[name]:6.1f} s (venv + pip install)   size {size[name]:5d} MiB")

    print(f"\ncold start, median of {args.repeats} runs from another folder (s):")
    print(f"{'command':<26}" + "".join(f"{name:>24}" for name in installs))
    for label, command in COMMANDS.items():
        medians = []
        for path, _ in installs.values():
            run = [str(path / "bin" / "moodring"), *command]
            timed(run, cwd=elsewhere, env=env)  # writes the bytecode a first run leaves behind
            medians.append(statistics.median(timed(run, cwd=elsewhere, env=env)[0] for _ in range(args.repeats)))
        print(f"{label:<26}" + "".join(f"{median:>24.2f}" for median in medians))

    print(f"\nbenchmarks/latency.py at 640x480, alternating, --runs {args.latency_runs} (wall p50 / CPU p50 ms):")
    for _ in range(2):
        for name, (path, _) in installs.items():
            wall, cpu = latency_640(path / "bin" / "python", args.latency_runs)
            print(f"{name:<22} {wall:6.1f} / {cpu:6.1f}")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
