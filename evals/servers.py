"""Real servers on loopback, for the tests and the benches: a Chroma server
(`chroma run` in a process) and a PostgreSQL cluster in a temporary folder
(Debian's binaries, run as an unprivileged user when we are root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "postgres"  # Debian's package creates it; initdb and pg_ctl refuse to run as root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout: float) -> None:
    """Stop a server process: SIGTERM, and SIGKILL when it has not gone within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def wait_until_ok(server, url: str, seconds: float, problem) -> None:
    """Poll ``url`` until it answers 200; when ``server.proc`` exits or ``seconds`` pass, stop the
    server and raise with ``problem()`` (called after the stop, so it may read what the server printed)."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            server.__exit__()
            raise RuntimeError(problem())
        time.sleep(0.2)


class ChromaServer:
    """`chroma run` on a free loopback port, storing in ``path``; ``url`` once it answers its heartbeat."""

    def __init__(self, path: Path):
        self.path, self.port = Path(path), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ChromaServer":
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn", "ANONYMIZED_TELEMETRY": "False"},
        )
        wait_until_ok(self, f"{self.url}/api/v2/heartbeat", 60, lambda: "chroma run did not answer its heartbeat")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a test may have paused it
            self.proc.terminate()
            self.proc.wait(timeout=20)


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL binaries folder holding initdb and pg_ctl, or None."""
    found = [Path(p) for p in glob.glob(PG_BIN_GLOB) if (Path(p) / "initdb").exists() and (Path(p) / "pg_ctl").exists()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def postgres_missing() -> str | None:
    """Why a PostgreSQL cluster cannot be started here (what to install), or None."""
    if postgres_bin() is None:
        return (f"PostgreSQL's binaries ({PG_BIN_GLOB}/initdb, pg_ctl) are missing: install Debian's PostgreSQL "
                "with `make postgresql` (apt-get install -y postgresql).")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return (f"running as root, PostgreSQL needs the unprivileged user {PG_USER!r} (Debian's postgresql "
                    "package creates it): `make postgresql`, or run the tests as another user.")
    return None


class PostgresServer:
    """A throw-away PostgreSQL cluster: ``initdb`` in a temporary folder, ``pg_ctl start`` on a free
    loopback port (trust authentication; fsync off unless ``durable``: test data only), stopped and deleted
    on exit.

    As root the binaries run as the ``postgres`` user (``runuser -u postgres --``) and the folder is
    theirs. ``url`` is the superuser's connection URL to the ``postgres`` database;
    ``create_database(name)`` makes another and returns its URL.
    """

    USER = "bouncebot"

    def __init__(self, bin_dir: Path | None = None, durable: bool = False):
        problem = None if bin_dir else postgres_missing()
        if problem:
            raise RuntimeError(problem)
        self.bin = Path(bin_dir or postgres_bin())
        self.port = free_port()
        self.url = f"postgresql://{self.USER}@127.0.0.1:{self.port}/postgres"
        self.root: Path | None = None
        self.running = False
        self.durable = durable  # True: PostgreSQL's default fsync and commit settings (for benches)

    # the folder and the commands, as the right user
    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, *argv: str, timeout: float = 120) -> None:
        r = subprocess.run(self._as_owner([str(self.bin / argv[0]), *argv[1:]]), capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, "LC_ALL": "C", "LANG": "C"})
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}\n"
                               f"{self.log_tail()}")

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-n:] if self.root else ""
        except OSError:
            return ""

    @staticmethod
    def _temp_parent() -> str | None:
        """The temp folder, unless (as root) the ``postgres`` user could not reach into it: then /tmp."""
        if os.geteuid() != 0:
            return None
        path = Path(tempfile.gettempdir()).resolve()
        reachable = all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])
        return None if reachable else "/tmp"

    def __enter__(self) -> "PostgresServer":
        self.root = Path(tempfile.mkdtemp(prefix="bouncebot-pg-", dir=self._temp_parent()))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", self.USER, "-A", "trust", "-E", "UTF8", "--no-locale",
                      "--no-sync")
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self) -> None:
        """Start (or start again, after ``stop``) on the same port and data; returns once it accepts connections."""
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                "-c max_connections=50")
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts, "-w", "-t", "60",
                  "start")
        self.running = True

    def stop(self) -> None:
        """Stop the server (``-m fast``: open connections are closed); its data stays for ``start``."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def __exit__(self, *exc) -> None:
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")
                self.running = False
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None


if __name__ == "__main__":  # a quick check: start, connect, stop
    with PostgresServer() as pg:
        import psycopg

        with psycopg.connect(pg.url) as c:
            print(pg.url, c.execute("SELECT version()").fetchone()[0])
