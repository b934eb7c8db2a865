"""A throwaway PostgreSQL server on loopback for tests and benchmarks.

The server binaries come from the system package (`make test` installs it where it
is missing); the cluster lives in a temporary folder and is removed on stop. As root,
the server runs as the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """Start with :meth:`start`, get URLs from :meth:`url`, stop with :meth:`stop`."""

    def __init__(self, *, durable: bool) -> None:
        self.durable = durable
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="tapereader-pg-"))
        self.user = "tapereader"
        self._as_root = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_root else list(argv)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> "PostgresServer":
        """initdb a fresh cluster and start it on 127.0.0.1:<free port>."""
        bindir = find_pg_bin()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        if self._as_root:
            shutil.chown(self.base, "postgres", "postgres")
        data = self.base / "data"
        self._run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        if not self.durable:
            # Tests prove behaviour, not durability across power cuts: skip fsync.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.base / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def dsn(self, dbname: str) -> str:
        """A libpq connection string."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> None:
        """Create a database (autocommit, as CREATE DATABASE requires)."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def create_schema(self, dbname: str, schema: str) -> None:
        """Create a schema, so each test gets tables of its own."""
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')

    def url(self, dbname: str, schema: str | None = None) -> str:
        """A ``postgresql://`` URL for :meth:`EventStore.open`."""
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}{query}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        bindir = find_pg_bin()
        try:
            if bindir is not None and (self.base / "data" / "postmaster.pid").exists():
                self._run(
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.base / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
