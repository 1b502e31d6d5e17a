"""A throwaway PostgreSQL cluster that a test may stop and restart.

`initdb` and `pg_ctl` from /usr/lib/postgresql/<version>/bin, run as the
`postgres` OS user (the tests run as root, and PostgreSQL refuses to), in a
temporary directory owned by that user, on a free loopback port. The shared
cluster at 127.0.0.1:5432 is never touched.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.fixtures.app import free_port

OS_USER = "postgres"


def binaries() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name or 0),
    )
    return Path(found[-1]).parent if found else None


def unavailable_reason() -> str | None:
    """Why a throwaway cluster cannot be made here (None: it can)."""
    if binaries() is None:
        return "no /usr/lib/postgresql/*/bin/pg_ctl on this machine"
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"no {OS_USER!r} OS user to run initdb and pg_ctl as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != OS_USER:
        return f"needs root (to run as {OS_USER!r}) or the {OS_USER!r} user"
    return None


class Cluster:
    """One private cluster: `start()`, `stop()`, `restart()`, `remove()`."""

    def __init__(self) -> None:
        bin_dir = binaries()
        assert bin_dir is not None, unavailable_reason()
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pgcluster-"))
        self.data = self.root / "data"
        self.log = self.root / "postgresql.log"
        user = pwd.getpwnam(OS_USER)
        os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    @property
    def server_url(self) -> str:
        """postgresql+asyncpg://postgres@127.0.0.1:PORT (no database)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _run(self, tool: str, *args: str) -> str:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}"
                f"\n{self.server_log()}"
            )
        return done.stdout

    def server_log(self) -> str:
        """The cluster's log so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
        )

    def stop(self) -> None:
        """Stop the server (fast: open sessions are ended, as in a failover)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")

    def restart(self) -> None:
        """Stop and start again."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate")
            except RuntimeError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
