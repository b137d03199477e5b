"""A throwaway PostgreSQL 15 cluster on a free loopback port; used by `tests/store/` and `benchmarks/fleet.py`.

`initdb` into a fresh temporary folder (trust authentication, fsync off: nothing here must survive), then
`pg_ctl start` on 127.0.0.1 only. PostgreSQL refuses to run as root, so as root the cluster runs as the
`postgres` user and the folder is given to it. `stop()`/`start()` let a test take the server away mid-run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("MOODRING_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "moodring"
RUN_AS = "postgres"
"""The system account the server runs as when the tests run as root."""


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None if it can."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        return f"PostgreSQL 15 not found in {PG_BIN} (install postgresql-15, or set MOODRING_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root, and there is no {RUN_AS!r} user to run PostgreSQL as"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """One running cluster; `url(database)` is a plain URL as MOODRING_DATABASE_URL takes it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="moodring-pg-"))  # not pytest's tmp: postgres must enter it
        self.data = self.folder / "data"
        self.port = free_port()
        self._databases = 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, text=True)

    def init(self) -> PostgresCluster:
        """Create the cluster's files and start it.

        The tests' two processes each start a cluster at about the same time: should the other one take the free
        port first, this one starts again on another.
        """
        if os.geteuid() == 0:
            shutil.chown(self.folder, RUN_AS, RUN_AS)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "--no-sync")
        for attempt in range(3):
            try:
                self.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                self.port = free_port()
        return self

    def start(self) -> None:
        """Start (or restart) the server on 127.0.0.1:port; returns once it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        log = self.folder / "server.log"
        self._run(str(PG_BIN / "pg_ctl"), "start", "-w", "-D", str(self.data), "-l", str(log), "-o", options)

    def stop(self) -> None:
        """Stop the server at once (connections are cut), keeping its files."""
        self._run(str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", str(self.data))

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its plain URL."""
        self._databases += 1
        name = name or f"moodring_{self._databases}"
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name],
            check=True,
            capture_output=True,
            text=True,
        )
        return self.url(name)

    def url(self, database: str) -> str:
        """The plain URL of `database` on this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        """Stop the server if it runs, and delete its files."""
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.init()

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()
