"""A throwaway PostgreSQL cluster on 127.0.0.1 (tests and benchmarks)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class PgUnavailable(RuntimeError):
    pass


IN_USE = "Address already in use"


def free_port() -> int:
    """A loopback port free now, released before it is returned: whoever binds it next may
    find it taken (start_pg_cluster tries a fresh one then); a port that must stay dead is
    ``closed_port``'s."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens, held (bound, never listening) so that nobody
    else can listen there meanwhile: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(versions[0]) if versions else None


@dataclass
class PgCluster:
    url_base: str  # postgresql://postgres@127.0.0.1:PORT
    directory: Path | None
    _stop: Callable[[], None] | None

    def url(self, database: str) -> str:
        return f"{self.url_base}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"authd_test_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}")
        return name


ATTEMPTS = 5


def start_pg_cluster(root: Path, pick_port: Callable[[], int] = free_port) -> PgCluster:
    """A throwaway cluster as the ``postgres`` user on 127.0.0.1 (initdb refuses root), on a
    port of ``pick_port`` (asked again when another process took its port first)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise PgUnavailable("PostgreSQL server binaries not installed (Debian package postgresql)")
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
    data = root / "pgdata"
    root.mkdir(parents=True, exist_ok=True)
    if run_as:
        shutil.chown(root, "postgres")
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-instructions"], check=True, capture_output=True)
    # PostgreSQL binds its port itself: when another process took it first, a fresh one.
    log = root / "pg.log"
    for attempt in range(ATTEMPTS):
        port = pick_port()
        opts = (f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                "-c shared_buffers=128MB")
        log.unlink(missing_ok=True)
        started = subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", opts, "-l", str(log),
                                  "-w", "start"], capture_output=True)
        if started.returncode == 0:
            break
        said = log.read_text(errors="replace") if log.exists() else ""
        if IN_USE not in said or attempt == ATTEMPTS - 1:
            raise subprocess.CalledProcessError(started.returncode, started.args,
                                                started.stdout, started.stderr + said.encode())

    def stop() -> None:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False)

    return PgCluster(f"postgresql://postgres@127.0.0.1:{port}", data, stop)


