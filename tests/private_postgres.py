"""A throwaway PostgreSQL cluster of one test's own, which the test may stop, restart or kill without touching the
shared server other tests use (PROMPTLAB_TEST_PG_URL): Debian's binaries, a temporary data directory, a free port.

initdb and postgres refuse to run as root, so as root (CI) they run as the `postgres` user the Debian package
creates; as anyone else they run as that user.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid

import sqlalchemy as sa


def binaries() -> str | None:
    """The folder with initdb and pg_ctl (the newest installed major version), None when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[-3]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateCluster:
    """`start()`, then `url` (SQLAlchemy, psycopg); `restart()` / `stop()` / `start()` as a test needs; `remove()`
    at the end. Trust authentication on loopback only, fsync off (nothing here needs to survive a power cut)."""

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.as_postgres = os.geteuid() == 0
        self.root = tempfile.mkdtemp(prefix="promptlab-pg-")
        self.data = os.path.join(self.root, "data")
        # The server's output goes to a file: a pipe of ours it inherited would keep pg_ctl's caller waiting.
        self.log = os.path.join(self.root, "server.log")
        self.port = _free_port()
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://promptlab@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database in the cluster (started first if a test left it stopped); returns its URL."""
        if not self.running():
            self.start()
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
        finally:
            engine.dispose()
        return self.url_for(name)

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", self.data, "status")
        except RuntimeError:
            return False
        return True

    def _run(self, *args: str, timeout: float = 120) -> str:
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done.stdout

    def init(self) -> PrivateCluster:
        self._run("initdb", "-D", self.data, "-U", "promptlab", "--auth=trust", "--no-sync", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} " \
                  "-c fsync=off -c full_page_writes=off -c max_connections=50"
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop (`fast`: every session is ended, open transactions roll back) and start again on the same port."""
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-m", mode, "-w", "restart")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


class LostCommitAnswer:
    """A loopback TCP proxy in front of a PostgreSQL server that, once `armed`, lets the next COMMIT through and
    cuts the connection instead of passing the server's answer back: the transaction is committed, the client sees
    a dropped connection — what a server that stops right after a commit does, on cue."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed, self.cut = threading.Event(), threading.Event()
        threading.Thread(target=self._accept, name="lost-commit-proxy", daemon=True).start()

    def url_for(self, database: str) -> str:
        # No SSL or GSS negotiation: every byte the server sends is then a typed message (type, length, body).
        return (f"postgresql+psycopg://promptlab@127.0.0.1:{self.port}/{database}"
                "?sslmode=disable&gssencmode=disable")

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client), daemon=True).start()

    @staticmethod
    def _hang_up(*sockets: socket.socket) -> None:
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            pass
        finally:
            self._hang_up(client, server)

    def _answers(self, server: socket.socket, client: socket.socket) -> None:
        pending = b""
        try:
            while data := server.recv(65536):
                pending += data
                passed = b""
                while len(pending) >= 5 and len(pending) >= 1 + int.from_bytes(pending[1:5], "big"):
                    size = 1 + int.from_bytes(pending[1:5], "big")
                    message, pending = pending[:size], pending[size:]
                    if message[:1] == b"C" and message[5:].startswith(b"COMMIT") and self.armed.is_set():
                        self.armed.clear()
                        client.sendall(passed)
                        self.cut.set()
                        return  # committed on the server; the answer never reaches the client
                    passed += message
                client.sendall(passed)
        except OSError:
            pass
        finally:
            self._hang_up(client, server)
