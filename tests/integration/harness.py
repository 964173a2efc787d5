"""Harness for fastfn's integration tests: runs the built binaries on loopback or unix sockets.

Standard library only. It gives the test files:

- `Watchdog`: starts fastfn-watchdog in its own session (process group) with its stderr in a temp file,
  on a fresh unix socket (or a free tcp port), waits for `GET /_/health` to answer 200 by polling, and
  on close kills the watchdog, every process it started (and their process groups) and removes its
  temp dir, also when a test fails. `request()` / `connection()` talk HTTP/1.1 to it.
- `HttpConnection`: a small HTTP/1.1 client over one socket (unix or tcp), with keep-alive, request
  bodies from bytes or generators (sent by a thread while the response is read, so echo programs
  cannot deadlock), chunked responses with trailers, and streaming of response bodies to a callback.
  It is also the raw-socket helper: `send_raw()` sends arbitrary bytes and `read_response()` parses.
- `/proc` helpers: children, descendants, process-group members, zombies, fds, peak RSS.
- `wait_until()`: polling with a deadline, the only way tests synchronise.
- `free_port()`, `run_cli()` (runs the binary to completion with a timeout), fixtures paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
CGI_FIXTURES_DIR = FIXTURES_DIR / "cgi"

KIB = 1024
# Under AddressSanitizer (scripts/test exports ASAN_OPTIONS for that build) a process needs fds of
# its own to report, and its leak check runs at exit: tests that starve a server of fds skip there.
UNDER_ASAN = bool(os.environ.get("ASAN_OPTIONS"))
MIB = 1024 * 1024

# The watchdog's configuration variables (DESIGN.md). They are removed from the environment a test
# watchdog inherits, so the environment of whoever runs the tests cannot change what is tested.
WATCHDOG_ENV_VARS = (
    "format", "listen", "exec_timeout", "read_timeout", "write_timeout", "max_inflight", "max_body",
    "min_instances", "max_instances", "max_queue", "idle_timeout", "max_requests", "cgi_headers",
    "content_type", "combine_output", "workdir", "shutdown_timeout", "log_format", "function_name",
    "fprocess", "max_connections", "log_level", "port", "mode", "suppress_lock", "cgi_response",
    "healthcheck_interval", "upstream_url", "listen_socket", "start_timeout", "max_concurrency",
)


def watchdog_binary() -> str:
    """The fastfn-watchdog under test: $FASTFN_WATCHDOG, else <repo>/build/watchdog/fastfn-watchdog."""
    return os.environ.get("FASTFN_WATCHDOG") or str(REPO_ROOT / "build" / "watchdog" / "fastfn-watchdog")


def check_executable(path: Union[str, Path], what: str = "binary") -> None:
    """Raises a clear error when `path` is not an executable file (so the whole module errors out)."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise RuntimeError(f"{what} not found or not executable: {path} "
                           f"(build it with `ninja -C build`, or set FASTFN_WATCHDOG)")


def check_fixtures_executable(directory: Path = CGI_FIXTURES_DIR) -> None:
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and not os.access(entry, os.X_OK):
            raise RuntimeError(f"fixture {entry} lost its exec bit (chmod +x it)")


# --------------------------------------------------------------------------------------------------
# Polling


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02,
               message: Union[str, Callable[[], str]] = "") -> object:
    """Calls `predicate` until it returns a truthy value, which is returned. After `timeout` seconds
    raises AssertionError with `message` (a string or a callable giving one, evaluated only then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"condition not met within {timeout:.1f}s: {text} (last value: {value!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------------
# /proc


@dataclasses.dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    state: str  # R, S, D, Z, T, ...
    ppid: int
    pgrp: int
    session: int
    start_ticks: int  # since boot, in clock ticks


def process_age(pid: int) -> Optional[float]:
    """Seconds since the process started (10 ms resolution), or None when it is gone."""
    stat = proc_stat(pid)
    if stat is None:
        return None
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - stat.start_ticks / os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> Optional[ProcStat]:
    """The parsed /proc/PID/stat, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    head, _, tail = data.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    return ProcStat(pid=pid, comm=comm, state=fields[0], ppid=int(fields[1]), pgrp=int(fields[2]),
                    session=int(fields[3]), start_ticks=int(fields[19]))


def all_proc_stats() -> list[ProcStat]:
    stats = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None:
                stats.append(stat)
    return stats


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (zombies included)."""
    return sorted(s.pid for s in all_proc_stats() if s.ppid == pid)


def descendants(pid: int) -> list[ProcStat]:
    """Every process below `pid` in the process tree (zombies included)."""
    stats = all_proc_stats()
    by_parent: dict[int, list[ProcStat]] = {}
    for s in stats:
        by_parent.setdefault(s.ppid, []).append(s)
    found, todo = [], [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def processes_in_group(pgid: int, include_zombies: bool = False) -> list[int]:
    """Pids of the process group `pgid`. A zombie has already died (only its exit status is left for
    a parent to collect), so it is counted only with include_zombies."""
    return sorted(s.pid for s in all_proc_stats()
                  if s.pgrp == pgid and (include_zombies or s.state != "Z"))


def zombie_descendants(pid: int) -> list[int]:
    return sorted(s.pid for s in descendants(pid) if s.state == "Z")


def zombie_count(pid: int) -> int:
    """Zombies among the descendants of `pid` (children it has not reaped, and theirs)."""
    return len(zombie_descendants(pid))


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie."""
    stat = proc_stat(pid)
    return stat is not None and stat.state != "Z"


def fd_targets(pid: int) -> dict[int, str]:
    """Open fds of `pid` and what they point to (readlink of /proc/PID/fd/N)."""
    targets = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return {}
    for name in names:
        try:
            targets[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except (FileNotFoundError, ProcessLookupError):
            pass  # closed between listdir and readlink
    return targets


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict of field -> raw value."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _status_bytes(pid: int, field: str) -> int:
    value = proc_status(pid).get(field, "0 kB").split()
    return int(value[0]) * (1024 if len(value) > 1 and value[1] == "kB" else 1)


def vm_hwm_bytes(pid: int) -> int:
    """Peak resident set size of `pid` (VmHWM)."""
    return _status_bytes(pid, "VmHWM")


def vm_rss_bytes(pid: int) -> int:
    return _status_bytes(pid, "VmRSS")


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signals a process group if it still has live members; never our own group."""
    if pgid <= 1 or pgid == os.getpgrp() or not processes_in_group(pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# --------------------------------------------------------------------------------------------------
# Addresses and sockets


def free_port(host: str = "127.0.0.1") -> int:
    """A tcp port that was free a moment ago (bind to 0, read the port, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class Address:
    """Where a server listens: `unix:/path`, `tcp:HOST:PORT`, `HOST:PORT` or `:PORT`."""
    kind: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> "Address":
        if text.startswith("unix:"):
            return cls("unix", path=text[len("unix:"):])
        if text.startswith("tcp:"):
            text = text[len("tcp:"):]
        host, _, port = text.rpartition(":")
        return cls("tcp", host=host.strip("[]") or "127.0.0.1", port=int(port))

    @classmethod
    def unix(cls, path: Union[str, Path]) -> "Address":
        return cls("unix", path=str(path))

    @classmethod
    def tcp(cls, port: int, host: str = "127.0.0.1") -> "Address":
        return cls("tcp", host=host, port=port)

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"{self.host}:{self.port}"

    def host_header(self) -> str:
        return "localhost" if self.kind == "unix" else f"{self.host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        if self.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: object = self.path
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                                 socket.SOCK_STREAM)
            target = (self.host, self.port)
        sock.settimeout(timeout)
        try:
            sock.connect(target)
        except BaseException:
            sock.close()
            raise
        if self.kind == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def accepts_connections(self, timeout: float = 1.0) -> bool:
        """True when a connect() succeeds right now."""
        try:
            self.connect(timeout).close()
            return True
        except OSError:
            return False


# --------------------------------------------------------------------------------------------------
# HTTP/1.1


class Headers:
    """An ordered multi-map of header fields with case-insensitive names."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        self._items: list[tuple[str, str]] = list(items)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self._items if key.lower() == lname]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclasses.dataclass
class Response:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    trailers: Headers = dataclasses.field(default_factory=Headers)
    version: str = "HTTP/1.1"
    chunked: bool = False
    body_length: int = 0          # bytes of body received (also when streamed to on_body)
    keep_alive: bool = True       # False when the server closes the connection after it
    body_sent: bool = True        # False when the server answered before taking the whole request body
    send_error: Optional[BaseException] = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> object:
        return json.loads(self.body)

    def __repr__(self) -> str:
        body = self.body[:300]
        more = "..." if len(self.body) > 300 else ""
        return (f"<Response {self.status} {self.reason!r} headers={self.headers.items()!r} "
                f"trailers={self.trailers.items()!r} body={body!r}{more} length={self.body_length}>")


class ConnectionClosed(ConnectionError):
    """The peer closed the connection before a complete response."""


class ProtocolError(Exception):
    """The server sent something that is not valid HTTP/1.1."""


BodyType = Union[None, bytes, bytearray, memoryview, Iterable[bytes]]

_SMALL_BODY = 64 * KIB  # bodies up to this are sent inline; bigger ones by a writer thread


class _BodyWriter(threading.Thread):
    """Sends a request body while the caller reads the response (echo programs need both at once)."""

    def __init__(self, sock: socket.socket, body: BodyType, chunked: bool):
        super().__init__(daemon=True)
        self._sock, self._body, self._chunked = sock, body, chunked
        self.error: Optional[BaseException] = None
        self.completed = False

    def run(self) -> None:
        try:
            pieces = ([bytes(self._body[i:i + MIB]) for i in range(0, len(self._body), MIB)]
                      if isinstance(self._body, (bytes, bytearray, memoryview)) else self._body)
            for piece in pieces:
                if not piece:
                    continue
                if self._chunked:
                    self._sock.sendall(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
                else:
                    self._sock.sendall(piece)
            if self._chunked:
                self._sock.sendall(b"0\r\n\r\n")
            self.completed = True
        except BaseException as exc:  # reported on the Response, never lost
            self.error = exc


class HttpConnection:
    """One HTTP/1.1 connection (unix or tcp) that stays open between requests (keep-alive).

    `request()` sends a request and reads the whole response; `send_raw()` + `read_response()` let a
    test send arbitrary bytes. With auto_reconnect, a connection the server closed is opened again for
    the next request (`connects` counts how often it was opened); without it, the next request fails.
    """

    def __init__(self, address: Address, timeout: float = 10.0, auto_reconnect: bool = False):
        self.address = address
        self.timeout = timeout
        self.auto_reconnect = auto_reconnect
        self.sock: Optional[socket.socket] = None
        self.connects = 0
        self._buf = bytearray()
        self._peer_closed = False
        self._must_close = False
        self._connect()

    # -- lifecycle
    def _connect(self) -> None:
        self.sock = self.address.connect(self.timeout)
        self.connects += 1
        self._buf.clear()
        self._peer_closed = False
        self._must_close = False

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def __enter__(self) -> "HttpConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self.sock is not None and not self._must_close

    # -- raw bytes
    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None, "connection is closed"
        self.sock.sendall(data)

    def _recv(self, deadline: float) -> bytes:
        assert self.sock is not None, "connection is closed"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("response deadline passed")
        self.sock.settimeout(min(self.timeout, remaining))
        data = self.sock.recv(256 * KIB)
        if not data:
            self._peer_closed = True
        return data

    def _fill(self, deadline: float) -> None:
        data = self._recv(deadline)
        if not data:
            raise ConnectionClosed("connection closed by peer before a complete response")
        self._buf += data

    def _read_line(self, deadline: float, limit: int = 64 * KIB) -> bytes:
        while True:
            index = self._buf.find(b"\n")
            if index >= 0:
                line = bytes(self._buf[:index + 1])
                del self._buf[:index + 1]
                return line
            if len(self._buf) > limit:
                raise ProtocolError(f"line longer than {limit} bytes")
            self._fill(deadline)

    def _read_exact(self, n: int, deadline: float, sink: Callable[[bytes], None]) -> None:
        while n > 0:
            if not self._buf:
                self._fill(deadline)
            take = min(n, len(self._buf))
            sink(bytes(self._buf[:take]))
            del self._buf[:take]
            n -= take

    def read_until_close(self, timeout: float = 5.0) -> bytes:
        """Everything the peer sends until it closes; raises socket.timeout if it does not."""
        deadline = time.monotonic() + timeout
        while not self._peer_closed:
            data = self._recv(deadline)
            self._buf += data
        data, self._buf = bytes(self._buf), bytearray()
        return data

    def wait_closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (or resets) the connection within `timeout`; data is discarded."""
        try:
            self.read_until_close(timeout)
            return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    # -- responses
    def _read_headers(self, deadline: float) -> Headers:
        headers = Headers()
        total = 0
        while True:
            line = self._read_line(deadline)
            total += len(line)
            if total > 1 * MIB:
                raise ProtocolError("header block larger than 1 MiB")
            if line in (b"\r\n", b"\n"):
                return headers
            text = line.decode("latin-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"bad header line {text!r}")
            headers.add(name, value.strip())

    def read_response(self, method: str = "GET", on_body: Optional[Callable[[bytes], None]] = None,
                      timeout: Optional[float] = None) -> Response:
        """Reads one response (skipping 1xx interim ones). With on_body, body bytes go to it as they
        arrive instead of into Response.body."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            line = self._read_line(deadline).decode("latin-1").rstrip("\r\n")
            parts = line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ProtocolError(f"bad status line {line!r}")
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = self._read_headers(deadline)
            if 100 <= status < 200 and status != 101:
                continue
            break
        response = Response(status=status, reason=reason, headers=headers, version=version)
        connection = ",".join(headers.get_all("Connection")).lower()
        response.keep_alive = version == "HTTP/1.1" and "close" not in connection
        body = bytearray()

        def sink(data: bytes) -> None:
            response.body_length += len(data)
            if on_body is not None:
                on_body(data)
            else:
                body.extend(data)

        transfer = ",".join(headers.get_all("Transfer-Encoding")).lower()
        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in transfer:
            response.chunked = True
            self._read_chunked(response, deadline, sink)
        elif "Content-Length" in headers:
            lengths = {v.strip() for v in headers.get_all("Content-Length")}
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise ProtocolError(f"bad Content-Length {headers.get_all('Content-Length')!r}")
            self._read_exact(int(next(iter(lengths))), deadline, sink)
        else:
            response.keep_alive = False
            while not self._peer_closed:
                data = self._recv(deadline)
                if data:
                    sink(data)
            if self._buf:
                sink(bytes(self._buf))
                self._buf.clear()
        response.body = bytes(body)
        if not response.keep_alive:
            self._must_close = True
        return response

    def _read_chunked(self, response: Response, deadline: float, sink: Callable[[bytes], None]) -> None:
        while True:
            line = self._read_line(deadline).decode("latin-1").strip()
            size_text = line.split(";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {line!r}") from None
            if size == 0:
                response.trailers = self._read_headers(deadline)
                return
            self._read_exact(size, deadline, sink)
            if self._read_line(deadline) not in (b"\r\n", b"\n"):
                raise ProtocolError("chunk data not followed by CRLF")

    # -- requests
    def request(self, method: str, path: str, body: BodyType = None,
                headers: Optional[Union[dict[str, str], Sequence[tuple[str, str]]]] = None,
                timeout: Optional[float] = None,
                on_body: Optional[Callable[[bytes], None]] = None) -> Response:
        """Sends a request and reads its response.

        body: None (no body), bytes (sent with Content-Length), or an iterable of bytes (sent chunked
        unless `headers` has a Content-Length). Bodies over 64 KiB are sent by a thread while the
        response is read. Host is added unless given. `timeout` bounds the whole exchange.
        """
        timeout = timeout if timeout is not None else self.timeout
        deadline = time.monotonic() + timeout
        if not self.is_open:
            if not self.auto_reconnect:
                raise ConnectionClosed("the server closed this connection after the previous response")
            self.close()
            self._connect()
        items = list(headers.items() if isinstance(headers, dict) else (headers or []))
        names = {name.lower() for name, _ in items}
        if "host" not in names:
            items.insert(0, ("Host", self.address.host_header()))
        inline = body is None or (isinstance(body, (bytes, bytearray, memoryview))
                                  and len(body) <= _SMALL_BODY)
        chunked = False
        if isinstance(body, (bytes, bytearray, memoryview)):
            if "content-length" not in names and "transfer-encoding" not in names:
                items.append(("Content-Length", str(len(body))))
        elif body is not None and "content-length" not in names:
            chunked = True
            if "transfer-encoding" not in names:
                items.append(("Transfer-Encoding", "chunked"))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
        writer = None
        if inline:
            self.send_raw(head.encode("latin-1") + (bytes(body) if body else b""))
        else:
            self.send_raw(head.encode("latin-1"))
            writer = _BodyWriter(self.sock, body, chunked)
            writer.start()
        try:
            response = self.read_response(method, on_body=on_body,
                                          timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            self._abort_writer(writer)
            self.close()
            raise
        if writer is not None:
            writer.join(max(0.5, min(5.0, deadline - time.monotonic())))
            if writer.is_alive():  # the server answered without taking the whole body
                self._abort_writer(writer)
                self._must_close = True
            response.body_sent = writer.completed
            response.send_error = writer.error
            if not writer.completed:
                self._must_close = True
        return response

    def _abort_writer(self, writer: Optional[_BodyWriter]) -> None:
        if writer is None or not writer.is_alive():
            return
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # unblocks the writer's sendall
        writer.join(5.0)
        self._must_close = True


def offline_connection(data: bytes) -> "HttpConnection":
    """An HttpConnection with no socket whose received bytes are `data` and then a close, so its
    read_response() parses a recorded byte string."""
    conn = HttpConnection.__new__(HttpConnection)
    conn.address, conn.timeout, conn.auto_reconnect = Address("unix"), 1.0, False
    conn.sock, conn.connects, conn._buf = None, 0, bytearray(data)
    conn._peer_closed, conn._must_close = True, False
    conn._recv = lambda deadline: b""  # type: ignore[method-assign]
    return conn


def parse_responses(data: bytes, method: str = "GET") -> list[Response]:
    """Parses the responses in a byte string (e.g. what read_until_close returned)."""
    conn = offline_connection(data)
    responses = []
    while conn._buf:
        responses.append(conn.read_response(method))
    return responses


def raw_exchange(address: Address, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data` on a new connection, half-closes, and returns everything read until the peer
    closes (or `timeout` passes)."""
    with HttpConnection(address, timeout=timeout) as conn:
        conn.send_raw(data)
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
        try:
            return conn.read_until_close(timeout)
        except socket.timeout:
            return bytes(conn._buf)
        except ConnectionResetError:
            return bytes(conn._buf)


# --------------------------------------------------------------------------------------------------
# Running the watchdog


class WatchdogExited(AssertionError):
    """The watchdog exited while it was expected to serve."""


def _log_tail(text: str, lines: int = 40) -> str:
    tail = text.splitlines()[-lines:]
    return "\n".join("    | " + line for line in tail) if tail else "    | (empty)"


def _child_env(env: Optional[dict[str, Optional[str]]]) -> dict[str, str]:
    result = {k: v for k, v in os.environ.items() if k not in WATCHDOG_ENV_VARS}
    for key, value in (env or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


class Watchdog:
    """A fastfn-watchdog process for one test.

    command: the function's COMMAND [ARG...] (put after `--`), or None to give none (fprocess).
    options: watchdog options before `--`.
    env: variables added to the inherited environment (a value of None removes one); the watchdog's
        configuration variables are never inherited from the test runner.
    listen: "unix" (a socket in a fresh temp dir, the default), "tcp" (127.0.0.1 on a free port),
        an address string such as "tcp:127.0.0.1:PORT" (passed as is), or None to pass no --listen
        (the caller configures it; set `address` then so the harness can connect).
    listen_via_env: give the address in the `listen` variable instead of --listen.
    wait_healthy: after start, poll GET /_/health until 200 (raises with the log if it exits first).

    Use as a context manager, or call start() and register close() with addCleanup.
    """

    def __init__(self, command: Optional[Sequence[str]], options: Sequence[str] = (), *,
                 env: Optional[dict[str, Optional[str]]] = None, listen: Optional[str] = "unix",
                 listen_via_env: bool = False, address: Optional[Address] = None,
                 binary: Optional[str] = None, cwd: Optional[str] = None,
                 start_timeout: float = 15.0, wait_healthy: bool = True):
        self.binary = binary or watchdog_binary()
        self.command = list(command) if command is not None else None
        self.options = list(options)
        self.tmpdir = tempfile.mkdtemp(prefix="fastfn-wd-")
        self.start_timeout = start_timeout
        self.wait_healthy = wait_healthy
        self.cwd = cwd
        self.env = _child_env(env)
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self._log_path = os.path.join(self.tmpdir, "watchdog.stderr")
        self._out_path = os.path.join(self.tmpdir, "watchdog.stdout")
        self._saved_log: Optional[str] = None
        self._saved_out: Optional[str] = None
        self._closed = False
        if listen == "unix":
            self.address: Optional[Address] = Address.unix(os.path.join(self.tmpdir, "wd.sock"))
            listen_arg: Optional[str] = str(self.address)
        elif listen == "tcp":
            self.address = Address.tcp(free_port())
            listen_arg = str(self.address)
        elif listen is None:
            self.address, listen_arg = address, None
        else:
            self.address, listen_arg = Address.parse(listen), listen
        self.listen_arg = listen_arg
        if listen_arg is not None and listen_via_env:
            self.env["listen"] = listen_arg
            listen_arg = None
        self.argv = [self.binary]
        if listen_arg is not None:
            self.argv += ["--listen", listen_arg]
        self.argv += self.options
        if self.command is not None:
            self.argv += ["--", *self.command]

    # -- lifecycle
    def start(self) -> "Watchdog":
        with open(self._log_path, "wb") as err, open(self._out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=self.cwd, start_new_session=True)
        if self.wait_healthy:
            self.wait_for_health(self.start_timeout)
        return self

    def __enter__(self) -> "Watchdog":
        if self.proc is None:
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "watchdog not started"
        return self.proc.pid

    def poll(self) -> Optional[int]:
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is not None:
            self.returncode = code
        return code

    def is_running(self) -> bool:
        return self.proc is not None and self.poll() is None

    def wait_for_health(self, timeout: float = 15.0) -> None:
        assert self.address is not None, "no address to poll"
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            code = self.poll()
            if code is not None:
                raise WatchdogExited(f"watchdog exited with code {code} before answering /_/health; "
                                     f"argv={self.argv}\n{self.describe()}")
            try:
                response = self.request("GET", "/_/health", timeout=2.0)
                if response.status == 200:
                    return
                last = response
            except (OSError, ConnectionError, ProtocolError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise AssertionError(f"watchdog not healthy within {timeout}s (last: {last!r}); "
                                     f"argv={self.argv}\n{self.describe()}")
            time.sleep(0.02)

    def send_signal(self, sig: int) -> None:
        """Sends `sig` to the watchdog process only (not to its children's groups)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        """Waits for the watchdog to exit and returns its exit code (raises AssertionError on timeout)."""
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"watchdog did not exit within {timeout}s\n{self.describe()}") from None
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Sends `sig` and returns the exit code (negative: killed by that signal)."""
        if self.is_running():
            self.send_signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILLs the watchdog, its process group, and every descendant and its process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            tree = descendants(self.proc.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            for stat in tree:
                kill_group(stat.pgrp)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(stat.pid, signal.SIGKILL)
        else:
            kill_group(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.returncode = self.proc.wait(10)

    def close(self) -> None:
        """Kills whatever is left, keeps the logs in memory and removes the temp dir. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.kill()
        finally:
            self._saved_log = self._read(self._log_path)
            self._saved_out = self._read(self._out_path)
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- logs
    @staticmethod
    def _read(path: str) -> str:
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log(self) -> str:
        """The watchdog's stderr so far (kept after close)."""
        return self._saved_log if self._saved_log is not None else self._read(self._log_path)

    def stdout(self) -> str:
        return self._saved_out if self._saved_out is not None else self._read(self._out_path)

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log(), lines)

    def describe(self, lines: int = 40) -> str:
        """A block for assertion messages: argv, state and the tail of the watchdog's stderr."""
        state = "not started" if self.proc is None else (
            "running" if self.poll() is None else f"exited {self.returncode}")
        return f"  watchdog argv={self.argv} ({state})\n  watchdog stderr tail:\n{self.log_tail(lines)}"

    # -- HTTP
    def connection(self, timeout: float = 10.0, auto_reconnect: bool = False) -> HttpConnection:
        """A keep-alive connection to the watchdog (close it, or use it as a context manager)."""
        assert self.address is not None
        return HttpConnection(self.address, timeout=timeout, auto_reconnect=auto_reconnect)

    def request(self, method: str, path: str, body: BodyType = None,
                headers: Optional[Union[dict[str, str], Sequence[tuple[str, str]]]] = None,
                timeout: float = 10.0, on_body: Optional[Callable[[bytes], None]] = None) -> Response:
        """One request on a new connection."""
        with self.connection(timeout=timeout) as conn:
            return conn.request(method, path, body=body, headers=headers, timeout=timeout,
                                on_body=on_body)

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: BodyType = b"", **kwargs) -> Response:
        return self.request("POST", path, body=body, **kwargs)


@dataclasses.dataclass
class CliResult:
    returncode: Optional[int]  # None: it did not exit within the timeout (it was killed)
    stdout: str
    stderr: str
    argv: list[str]

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        return (f"  argv={self.argv} exit={self.returncode}\n  stdout:\n{_log_tail(self.stdout)}\n"
                f"  stderr:\n{_log_tail(self.stderr)}")


def communicate_or_kill(proc: subprocess.Popen, timeout: float,
                        input: Optional[bytes] = None) -> tuple[Optional[int], bytes, bytes]:
    """Feeds `input`, waits for `proc` (started with start_new_session) and returns (exit code,
    stdout, stderr). If it has not exited after `timeout`, its process group is killed and the exit
    code is None."""
    try:
        out, err = proc.communicate(input, timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        return None, out, err


def run_cli(args: Sequence[str], env: Optional[dict[str, Optional[str]]] = None, timeout: float = 5.0,
            binary: Optional[str] = None) -> CliResult:
    """Runs the watchdog to completion (for --help, --version, bad usage). If it has not exited after
    `timeout` its whole process group is killed and returncode is None."""
    argv = [binary or watchdog_binary(), *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_child_env(env), start_new_session=True)
    code, out, err = communicate_or_kill(proc, timeout)
    return CliResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), argv)


# --------------------------------------------------------------------------------------------------
# unittest glue


class WatchdogTestCase(unittest.TestCase):
    """A TestCase whose watchdogs are always cleaned up, and whose failures print their logs."""

    maxDiff = 4000

    def setUp(self) -> None:
        super().setUp()
        self._watchdogs: list[Watchdog] = []

    def start_watchdog(self, command: Optional[Sequence[str]], options: Sequence[str] = (),
                       **kwargs) -> Watchdog:
        wd = Watchdog(command, options, **kwargs)
        self._watchdogs.append(wd)
        self.addCleanup(wd.close)
        wd.start()
        return wd

    def make_tempdir(self, prefix: str = "fastfn-test-") -> str:
        path = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def run(self, result=None):
        failures_before = None
        if result is not None:
            failures_before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        result = result or outcome
        if result is not None and failures_before is not None and \
                len(result.failures) + len(result.errors) > failures_before:
            for wd in getattr(self, "_watchdogs", []):
                print(f"\n--- {self.id()}: watchdog {wd.argv} exit={wd.returncode}\n{wd.log_tail(60)}",
                      flush=True)
        return outcome


def touch(path: Union[str, Path]) -> None:
    Path(path).touch()


def write_atomic(path: Union[str, Path], data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def pattern_chunks(total: int, chunk: int = MIB, seed: bytes = b"fastfn") -> Iterator[bytes]:
    """`total` bytes of varied data in `chunk`-sized pieces, generated lazily (nothing held whole)."""
    block = bytearray(os.urandom(chunk))
    sent, index = 0, 0
    while sent < total:
        size = min(chunk, total - sent)
        block[:8] = index.to_bytes(8, "big")
        yield bytes(block[:size])
        sent += size
        index += 1
