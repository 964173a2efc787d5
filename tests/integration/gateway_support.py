"""Helpers for the fastfn-gateway integration tests, on top of harness.py (standard library only).

- `Gateway`: starts fastfn-gateway (FASTFN_GATEWAY, default <repo>/build/gateway/fastfn-gateway) in its
  own session, on a free tcp port, with a temp socket-base-dir and its stderr in a temp file; polls
  GET /_fn/health until 200 and, when asked, until every socket of the named functions is up. close()
  SIGKILLs the gateway, every watchdog and handler below it (also ones that left the process tree) and
  removes its temp dir, also when a test fails. `health()`, `sockets()`, `watchdog_pids()`,
  `metrics()` and `request()` look at it from outside.
- `FunctionsDir`: builds a functions dir in a temp dir from tests/fixtures/gateway. A function folder
  appears at once (built aside, then renamed in), so a watching gateway never sees half of one.
- `RequestStream`: a thread sending requests in a loop and recording every outcome (hot reload and
  failover tests assert that it saw nothing but 200).
- `make_watchdog_hold_wrapper()`: a FN_WATCHDOG_BIN that waits while a file exists before it runs the
  real watchdog, so a test decides how long a restarted watchdog stays down (no timing guesses).
- `GatewayTestCase`: a TestCase that cleans its gateways up, prints their logs on failure, and checks
  JSON errors.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Address, wait_until  # noqa: E402

GATEWAY_FIXTURES_DIR = harness.FIXTURES_DIR / "gateway"
TEMPLATES_DIR = harness.REPO_ROOT / "templates"
FASTFN_HTTP_PY = harness.REPO_ROOT / "shims" / "python" / "fastfn_http.py"
# The interpreter for Python handlers: /usr/bin/python3 starts fast (no pyenv shim in between).
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

# The gateway's configuration variables (DESIGN.md). They are removed from the environment a test
# gateway inherits, so the environment of whoever runs the tests cannot change what is tested.
GATEWAY_ENV_VARS = (
    "FN_FUNCTIONS_ROOT", "FN_LISTEN", "FN_RUNTIME_DAEMONS", "FN_RUNTIME_SOCKETS", "FN_SOCKET_BASE_DIR",
    "FN_RUNTIMES", "FN_PYTHON_BIN", "FN_NODE_BIN", "FN_PHP_BIN", "FN_LUA_BIN", "FN_SH_BIN", "FN_GO_BIN", "FN_HEALTH_INTERVAL", "FN_CONFIG",
    "FN_WATCHDOG_BIN", "FN_LOG_FORMAT", "FN_LOG_LEVEL", "FN_MAX_CONNECTIONS", "FN_CONSOLE_DIR",
    "FN_CONSOLE_REMOTE", "FN_SHIMS_DIR", "FN_MIN_WARM", "FN_IDLE_TTL", "XDG_RUNTIME_DIR", "FN_QUEUE",
)

JsonValue = Union[dict, list, str, int, float, bool, None]


def gateway_binary() -> str:
    """The fastfn-gateway under test: $FASTFN_GATEWAY, else <repo>/build/gateway/fastfn-gateway."""
    return os.environ.get("FASTFN_GATEWAY") or str(harness.REPO_ROOT / "build" / "gateway" / "fastfn-gateway")


def check_binaries() -> None:
    """For setUpModule: both binaries, the Python used by the handlers and the fixtures' exec bits."""
    harness.check_executable(gateway_binary(), "fastfn-gateway (set FASTFN_GATEWAY)")
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_executable(PYTHON, "python3 for the handlers")
    for name in ("env_lines.sh", "gate.sh", "exec_handler", "tool.sh"):
        if not os.access(fixture(name), os.X_OK):
            raise RuntimeError(f"fixture {fixture(name)} lost its exec bit (chmod +x it)")


def fixture(name: str) -> Path:
    return GATEWAY_FIXTURES_DIR / name


def gateway_env(env: Optional[dict[str, Optional[str]]] = None) -> dict[str, str]:
    """The inherited environment without watchdog and gateway settings, plus `env` (None removes)."""
    result = {k: v for k, v in os.environ.items()
              if k not in harness.WATCHDOG_ENV_VARS and k not in GATEWAY_ENV_VARS}
    for key, value in (env or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def cmdline(pid: int) -> str:
    """The command line of `pid` with spaces between arguments ("" when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def parse_kv(text: str) -> dict[str, str]:
    """key=value lines (what env_lines.sh, exec_handler and tool.sh print) as a dict."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            result[key] = value
    return result


def failing_watchdog(tmpdir: str) -> tuple[str, str]:
    """A FN_WATCHDOG_BIN wrapper that exits 3 while its flag file exists and runs the real watchdog
    otherwise: (wrapper, flag). Touching the flag keeps a killed socket from restarting."""
    flag, wrapper = os.path.join(tmpdir, "fail"), os.path.join(tmpdir, "watchdog-fail")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\n[ -e '{flag}' ] && exit 3\n"
                f"exec '{os.path.realpath(harness.watchdog_binary())}' \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return wrapper, flag


def write_json(path: Union[str, Path], data: JsonValue) -> None:
    harness.write_atomic(path, json.dumps(data, indent=2).encode())


# --------------------------------------------------------------------------------------------------
# Function trees


FileSpec = Union[str, bytes, Path]


class FunctionsDir:
    """A functions dir in a temp dir. `add()` builds a function folder aside and renames it in, so it
    appears whole; the helpers below make the folders the tests use most."""

    def __init__(self, base: Optional[str] = None):
        self.base = Path(base or tempfile.mkdtemp(prefix="fastfn-fns-"))
        self.root = self.base / "functions"
        self.root.mkdir(parents=True, exist_ok=True)
        self._staging = self.base / ".staging"
        self._staging.mkdir(exist_ok=True)
        self._counter = 0

    def __str__(self) -> str:
        return str(self.root)

    def path(self, name: str) -> Path:
        return self.root / name

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    @staticmethod
    def _write(path: Path, spec: FileSpec) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)  # "src/main.rs"
        if isinstance(spec, Path):
            shutil.copyfile(spec, path)
            data = spec.read_bytes()[:2]
        else:
            data = spec.encode() if isinstance(spec, str) else bytes(spec)
            path.write_bytes(data)
        executable = path.name == "handler" or path.suffix == ".sh" or data[:2] == b"#!"
        path.chmod(0o755 if executable else 0o644)

    def add(self, name: str, files: dict[str, FileSpec], config: Optional[JsonValue] = None) -> Path:
        """Creates function folder `name` (may be nested: "api/users") holding `files` (name -> a
        fixture Path to copy, or str/bytes content) and, when given, fn.config.json = `config`."""
        self._counter += 1
        stage = self._staging / f"fn{self._counter}"
        stage.mkdir()
        for file_name, spec in files.items():
            self._write(stage / file_name, spec)
        if config is not None:
            (stage / "fn.config.json").write_text(json.dumps(config, indent=2))
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage, target)
        return target

    def remove(self, name: str) -> None:
        """Removes function folder `name` at once (renamed out, then deleted)."""
        self._counter += 1
        gone = self._staging / f"gone{self._counter}"
        os.rename(self.root / name, gone)
        shutil.rmtree(gone, ignore_errors=True)

    def write(self, name: str, file_name: str, spec: FileSpec) -> None:
        """Replaces one file of a function atomically."""
        path = self.root / name / file_name
        tmp = self._staging / f"{file_name}.{os.getpid()}.{time.monotonic_ns()}"
        self._write(tmp, spec)
        os.replace(tmp, path)

    def write_config(self, name: str, config: JsonValue) -> None:
        self.write(name, "fn.config.json", json.dumps(config, indent=2))

    # -- the usual function folders
    def sh_env(self, name: str, config: Optional[JsonValue] = None) -> Path:
        """handler.sh printing its CGI variables as key=value lines (runtime sh, format cgi)."""
        return self.add(name, {"handler.sh": fixture("env_lines.sh")}, config)

    def gate(self, name: str, gate_dir: str, config: Optional[dict] = None) -> Path:
        """handler.sh that blocks until the test releases it (see Gate); GATE_DIR comes from the
        function's "env", which `config` may extend."""
        config = dict(config or {})
        config["env"] = {**config.get("env", {}), "GATE_DIR": gate_dir}
        return self.add(name, {"handler.sh": fixture("gate.sh")}, config)

    def python_http(self, name: str, config: Optional[dict] = None, version: str = "v1") -> Path:
        """A hot Python handler (format http) answering JSON with its pid and VERSION."""
        return self.add(name, {"handler.py": hot_handler_source(version), "fastfn_http.py": FASTFN_HTTP_PY},
                        {"format": "http", **(config or {})})

    def python_cgi(self, name: str, config: Optional[JsonValue] = None) -> Path:
        return self.add(name, {"handler.py": fixture("cgi_handler.py")}, config)


def hot_handler_source(version: str) -> str:
    text = fixture("hot_handler.py").read_text()
    assert 'VERSION = "v1"' in text
    return text.replace('VERSION = "v1"', f'VERSION = "{version}"')


class Gate:
    """Drives tests/fixtures/gateway/gate.sh: a request `?name=N` creates DIR/started.N (holding the
    handler's pid) and answers once DIR/release.N or DIR/release exists."""

    def __init__(self, directory: str):
        self.dir = directory

    def release(self, name: Optional[str] = None) -> None:
        if os.path.isdir(self.dir):
            harness.touch(os.path.join(self.dir, f"release.{name}" if name else "release"))

    def started(self) -> dict[str, int]:
        found = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(self.dir):
                if entry.startswith("started."):
                    text = Path(self.dir, entry).read_text().strip()
                    if text:
                        found[entry[len("started."):]] = int(text)
        return found

    def wait_started(self, names: Sequence[str], timeout: float = 15.0,
                     describe: Callable[[], str] = lambda: "") -> dict[str, int]:
        wait_until(lambda: set(names) <= set(self.started()), timeout,
                   message=lambda: f"gated requests {sorted(set(names) - set(self.started()))} did not "
                                   f"reach a handler (started: {sorted(self.started())})\n{describe()}")
        return {name: pid for name, pid in self.started().items() if name in names}


class CallbackReceiver:
    """A threaded HTTP server on 127.0.0.1 (port 0) for callbacks: records each POST as (path,
    headers with lowercase names, body); answers 500 to the first `fail_first` of each X-Call-Id."""

    def __init__(self, fail_first: int = 0):
        self.lock = threading.Lock()
        self.posts: list[tuple[str, dict, bytes]] = []
        self.tries: dict[str, int] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                call = headers.get("x-call-id", "")
                with receiver.lock:
                    receiver.tries[call] = receiver.tries.get(call, 0) + 1
                    failing = receiver.tries[call] <= fail_first
                    if not failing:
                        receiver.posts.append((self.path, headers, body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, call_id: str) -> list[tuple[str, dict, bytes]]:
        with self.lock:
            return [post for post in self.posts if post[1].get("x-call-id") == call_id]

    def ids(self) -> set:
        with self.lock:
            return {headers.get("x-call-id") for _, headers, _ in self.posts}


def make_watchdog_hold_wrapper(directory: str, hold_file: str) -> str:
    """Writes DIRECTORY/watchdog-hold, a FN_WATCHDOG_BIN that waits while `hold_file` exists and then
    execs the real watchdog with its arguments (same pid). Creating `hold_file` before killing a
    watchdog keeps its restart down for as long as the test wants; removing it lets it come up."""
    path = os.path.join(directory, "watchdog-hold")
    real = os.path.realpath(harness.watchdog_binary())
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "# Waits while the hold file exists (at most about 60 s), then becomes the real watchdog.\n"
                f"i=0\nwhile [ -e '{hold_file}' ] && [ \"$i\" -lt 3000 ]; do sleep 0.02; i=$((i + 1)); done\n"
                f"exec '{real}' \"$@\"\n")
    os.chmod(path, 0o755)
    return path


# --------------------------------------------------------------------------------------------------
# The gateway


class GatewayExited(AssertionError):
    """The gateway exited while it was expected to serve."""


class Gateway:
    """A fastfn-gateway process for one test.

    functions_dir: given as the FUNCTIONS_DIR argument (None: the caller configures it otherwise).
    args: more command-line arguments (before FUNCTIONS_DIR).
    env: variables added to the cleaned environment (None removes one). By default the gateway gets
        FN_SOCKET_BASE_DIR=<tmp>/sockets (not created: the gateway makes it), FN_WATCHDOG_BIN (the
        watchdog under test, which in the build tree is not next to the gateway), FN_PYTHON_BIN
        (/usr/bin/python3) and FN_HEALTH_INTERVAL=250ms; `env` overrides them.
    config: a dict written to <tmp>/fastfn.json and passed with --config (config_flag=False: not
        passed; the file is then found in the working directory, which is <tmp> unless cwd is given).
    listen: "flag" (--listen 127.0.0.1:PORT on a free port), "env" (FN_LISTEN), "config" (the
        fastfn.json "listen" key) or None (the caller sets it and gives `port`).
    wait_for: function names; start() returns once each is listed in /_fn/health with all its
        sockets up. Health answering 200 is always waited for.
    """

    def __init__(self, functions_dir: Optional[Union[str, FunctionsDir]] = None, *, args: Sequence[str] = (),
                 env: Optional[dict[str, Optional[str]]] = None, config: Optional[JsonValue] = None,
                 config_flag: bool = True, listen: Optional[str] = "flag", port: Optional[int] = None,
                 wait_for: Sequence[str] = (), cwd: Optional[str] = None, binary: Optional[str] = None,
                 start_timeout: float = 30.0):
        self.binary = binary or gateway_binary()
        self.tmpdir = tempfile.mkdtemp(prefix="fastfn-gw-")
        self.socket_dir = os.path.join(self.tmpdir, "sockets")
        self.port = port if port is not None else free_port_not_in_use()
        self.address = Address.tcp(self.port)
        self.wait_for = list(wait_for)
        self.start_timeout = start_timeout
        self.cwd = cwd or self.tmpdir
        self.config_path = os.path.join(self.tmpdir, "fastfn.json")
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self._log_path = os.path.join(self.tmpdir, "gateway.stderr")
        self._out_path = os.path.join(self.tmpdir, "gateway.stdout")
        self._saved_log: Optional[str] = None
        self._closed = False
        self.env = gateway_env({
            "FN_SOCKET_BASE_DIR": self.socket_dir,
            "FN_WATCHDOG_BIN": harness.watchdog_binary(),
            "FN_PYTHON_BIN": PYTHON,
            "FN_HEALTH_INTERVAL": "250ms",
            **(env or {}),
        })
        self.env = {k: v for k, v in self.env.items() if v is not None}
        argv = [self.binary]
        if isinstance(config, dict) and listen == "config":
            config = {"listen": f"127.0.0.1:{self.port}", **config}
        elif listen == "config":
            config = {"listen": f"127.0.0.1:{self.port}"}
        if listen == "env":
            self.env["FN_LISTEN"] = f"127.0.0.1:{self.port}"
        if config is not None:
            write_json(self.config_path, config)
            if config_flag:
                argv += ["--config", self.config_path]
        if listen == "flag":
            argv += ["--listen", f"127.0.0.1:{self.port}"]
        argv += list(args)
        if functions_dir is not None:
            argv.append(str(functions_dir))
        self.argv = argv

    # -- lifecycle
    def start(self) -> "Gateway":
        with open(self._log_path, "wb") as err, open(self._out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=self.cwd, start_new_session=True)
        self.wait_for_health(self.start_timeout)
        if self.wait_for:
            self.wait_functions_up(self.wait_for, self.start_timeout)
        return self

    def __enter__(self) -> "Gateway":
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
        assert self.proc is not None, "gateway not started"
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

    def check_running(self) -> None:
        if self.poll() is not None:
            raise GatewayExited(f"gateway exited with code {self.returncode}\n{self.describe()}")

    def wait_for_health(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            self.check_running()
            try:
                response = self.request("GET", "/_fn/health", timeout=2.0)
                if response.status == 200:
                    return
                last = response
            except (OSError, ConnectionError, harness.ProtocolError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise AssertionError(f"gateway /_fn/health not 200 within {timeout}s (last: {last!r})"
                                     f"\n{self.describe()}")
            time.sleep(0.02)

    def wait_functions_up(self, names: Sequence[str], timeout: float = 30.0) -> dict:
        """Waits until each function in `names` is listed, up, with sockets that are all up (and
    counted in its sockets_up); returns the health."""
        holder: dict[str, object] = {}

        def ready() -> bool:
            self.check_running()
            holder["health"] = health = self.health()
            for name in names:
                entry = function_entry(health, name)
                socks = sockets_of(health, name)
                if not entry or not entry.get("up") or not socks or not all(s.get("up") for s in socks) \
                        or entry.get("sockets_up") != len(socks):
                    return False
            return True

        wait_until(ready, timeout, interval=0.05,
                   message=lambda: f"functions {list(names)} not all up; health: "
                                   f"{json.dumps(holder.get('health'))[:3000]}\n{self.describe()}")
        return holder["health"]  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gateway did not exit within {timeout}s\n{self.describe()}") from None
        return self.returncode

    def related_processes(self) -> list[harness.ProcStat]:
        """Live processes that belong to this gateway: its descendants, its session (the gateway is a
        session leader, so watchdogs and handlers that left the tree are still in it), processes
        whose command line names this gateway's temp dir (its watchdogs' sockets), and their
        sessions."""
        if self.proc is None:
            return []
        stats = [s for s in harness.all_proc_stats() if s.state != "Z" and s.pid != os.getpid()]
        tree = {s.pid for s in harness.descendants(self.proc.pid)}
        named = {s.pid for s in stats if self.tmpdir in cmdline(s.pid)}
        sessions = {self.proc.pid} | {s.session for s in stats if s.pid in named}
        sessions.discard(os.getsid(0))
        return [s for s in stats if s.pid == self.proc.pid or s.pid in tree or s.pid in named
                or s.session in sessions]

    def kill(self) -> None:
        """SIGKILLs the gateway first (so it restarts nothing), then every related process and its
        process group, until none is left (bounded)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while True:
            victims = [s for s in self.related_processes() if s.pid != self.proc.pid]
            if not victims or time.monotonic() > deadline:
                break
            for s in victims:
                if s.pgrp != os.getpgrp():
                    harness.kill_group(s.pgrp)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(s.pid, signal.SIGKILL)
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.returncode = self.proc.wait(10)

    def close(self) -> None:
        """Kills whatever is left, keeps the log in memory and removes the temp dir. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.kill()
        finally:
            self._saved_log = self._read(self._log_path)
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
        return self._saved_log if self._saved_log is not None else self._read(self._log_path)

    def log_tail(self, lines: int = 60) -> str:
        """The last `lines` lines of the log, without per-request access lines (a request stream
        would push everything else out)."""
        kept = [line for line in self.log().splitlines() if ".access]" not in line]
        return harness._log_tail("\n".join(kept), lines)

    def describe(self, lines: int = 60) -> str:
        state = "not started" if self.proc is None else (
            "running" if self.poll() is None else f"exited {self.returncode}")
        return f"  gateway argv={self.argv} ({state})\n  gateway stderr tail:\n{self.log_tail(lines)}"

    def wait_log(self, predicate: Callable[[str], object], timeout: float = 10.0, what: str = "") -> object:
        return wait_until(lambda: predicate(self.log()), timeout,
                          message=lambda: f"log never showed {what}\n{self.describe()}")

    def wait_answer(self, path: str, accept: Callable[[harness.Response], bool], timeout: float,
                    what: str) -> harness.Response:
        """GETs `path` until `accept` takes the answer (a function being installed or built)."""
        holder: dict[str, harness.Response] = {}

        def answered() -> bool:
            holder["r"] = response = self.get(path, timeout=30)
            return accept(response)
        wait_until(answered, timeout, interval=0.2,
                   message=lambda: f"{what}: last {holder.get('r')!r}\n{self.describe()}")
        return holder["r"]

    # -- HTTP
    def connection(self, timeout: float = 10.0, auto_reconnect: bool = False) -> harness.HttpConnection:
        return harness.HttpConnection(self.address, timeout=timeout, auto_reconnect=auto_reconnect)

    def request(self, method: str, path: str, body: harness.BodyType = None,
                headers: Optional[Union[dict[str, str], Sequence[tuple[str, str]]]] = None,
                timeout: float = 10.0) -> harness.Response:
        """One request on a new connection."""
        with self.connection(timeout=timeout) as conn:
            return conn.request(method, path, body=body, headers=headers, timeout=timeout)

    def get(self, path: str, **kwargs) -> harness.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: harness.BodyType = b"", **kwargs) -> harness.Response:
        return self.request("POST", path, body=body, **kwargs)

    def get_json(self, path: str, timeout: float = 5.0) -> JsonValue:
        response = self.get(path, timeout=timeout)
        if response.status != 200:
            raise AssertionError(f"GET {path} answered {response!r}\n{self.describe()}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise AssertionError(f"GET {path} is not JSON: {response!r}\n{self.describe()}") from None

    def health(self) -> dict:
        data = self.get_json("/_fn/health")
        assert isinstance(data, dict), f"/_fn/health is not an object: {data!r}"
        return data

    def metrics(self) -> "Metrics":
        response = self.get("/_fn/metrics", timeout=5.0)
        if response.status != 200:
            raise AssertionError(f"/_fn/metrics answered {response!r}\n{self.describe()}")
        return Metrics(response.text)

    # -- sockets and watchdogs
    def sockets(self, name: str, health: Optional[dict] = None) -> list[dict]:
        """The socket entries of function `name` in /_fn/health, by index."""
        return sockets_of(health if health is not None else self.health(), name)

    def watchdog_pid(self, sock: dict) -> Optional[int]:
        """The pid serving a socket entry: its "pid", else the gateway's child whose command line
        names the socket's path."""
        pid = sock.get("pid")
        if isinstance(pid, int) and pid > 0:
            return pid
        address = str(sock.get("address", ""))
        path = address[len("unix:"):] if address.startswith("unix:") else address
        for child in harness.children(self.pid):
            if harness.pid_alive(child) and path and path in cmdline(child):
                return child
        return None

    def watchdog_pids(self, name: str, health: Optional[dict] = None) -> list[int]:
        pids = [self.watchdog_pid(s) for s in self.sockets(name, health)]
        return [p for p in pids if p is not None]


def free_port_not_in_use() -> int:
    return harness.free_port()


def all_sockets(health: dict) -> list[dict]:
    result = []
    runtimes = health.get("runtimes") if isinstance(health, dict) else None
    if isinstance(runtimes, dict):
        for runtime in runtimes.values():
            if isinstance(runtime, dict) and isinstance(runtime.get("sockets"), list):
                result += [s for s in runtime["sockets"] if isinstance(s, dict)]
    return result


def resolve_name(health: dict, name: str) -> str:
    """The key /_fn/health uses for function `name`: `name` itself, else the function whose routes
    include "/name" (a nested folder "api/users" may be named otherwise)."""
    functions = health.get("functions") if isinstance(health, dict) else None
    if not isinstance(functions, dict) or name in functions:
        return name
    for key, entry in functions.items():
        if isinstance(entry, dict) and f"/{name}" in (entry.get("routes") or []):
            return key
    return name


def sockets_of(health: dict, name: str) -> list[dict]:
    """The socket entries of function `name` across runtimes, sorted by index."""
    key = resolve_name(health, name)
    found = [s for s in all_sockets(health) if s.get("function") == key]
    return sorted(found, key=lambda s: s.get("index", 0))


def function_entry(health: dict, name: str) -> Optional[dict]:
    functions = health.get("functions") if isinstance(health, dict) else None
    key = resolve_name(health, name)
    if isinstance(functions, dict) and isinstance(functions.get(key), dict):
        return functions[key]
    return None


def functions_listing(data: JsonValue) -> dict[str, dict]:
    """/_fn/functions as name -> entry, whether it is {"functions": ...}, a list of objects with a
    "name", or an object keyed by name."""
    if isinstance(data, dict) and "functions" in data:
        data = data["functions"]
    if isinstance(data, list):
        return {str(item.get("name")): item for item in data if isinstance(item, dict)}
    if isinstance(data, dict):
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}
    return {}


def find_key(data: JsonValue, key: str) -> list[JsonValue]:
    """Every value stored under `key` anywhere inside `data`."""
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == key:
                found.append(v)
            found += find_key(v, key)
    elif isinstance(data, list):
        for v in data:
            found += find_key(v, key)
    return found


class Metrics:
    """Samples of one Prometheus text scrape."""

    def __init__(self, text: str):
        import re
        line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
        label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        self.types: dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4:
                    self.types[parts[2]] = parts[3]
                continue
            if not line or line.startswith("#"):
                continue
            match = line_re.match(line)
            if match:
                labels = dict(label_re.findall(match.group(2) or ""))
                self.samples.append((match.group(1), labels, float(match.group(3))))

    def get(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
        return sum(value for sample, have, value in self.samples
                   if sample == name and all(have.get(k) == v for k, v in labels.items()))

    def has(self, name: str, **labels: str) -> bool:
        return any(sample == name and all(have.get(k) == v for k, v in labels.items())
                   for sample, have, _ in self.samples)


# --------------------------------------------------------------------------------------------------
# Traffic


class RequestStream(threading.Thread):
    """Sends GET `path` in a loop (a new connection each time, or keep-alive with reconnects) until
    stop(), recording each status, or the exception when there was no response.

    pause() returns once no request of the stream is in flight (resume() goes on): a test kills a
    watchdog between requests, since a request already sent to a watchdog that dies fails by
    design (it is never replayed); every request after the kill must succeed."""

    def __init__(self, gateway: Gateway, path: str, keep_alive: bool = False, timeout: float = 10.0):
        super().__init__(daemon=True)
        self.gateway, self.path, self.keep_alive, self.timeout = gateway, path, keep_alive, timeout
        self.outcomes: list[Union[int, str]] = []
        self.bad: list[str] = []  # descriptions of responses that were not 200 and of exceptions
        self._stop_event = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Event()
        self._lock = threading.Lock()

    def pause(self, timeout: float = 15.0) -> None:
        self._running.clear()
        if not self._idle.wait(timeout):
            raise AssertionError(f"the request stream to {self.path} did not pause within {timeout}s")

    def resume(self) -> None:
        self._idle.clear()
        self._running.set()

    def run(self) -> None:
        conn: Optional[harness.HttpConnection] = None
        while not self._stop_event.is_set():
            if not self._running.is_set():
                self._idle.set()
                self._running.wait()
                continue
            try:
                if self.keep_alive:
                    if conn is None:
                        conn = self.gateway.connection(self.timeout, auto_reconnect=True)
                    response = conn.request("GET", self.path, timeout=self.timeout)
                else:
                    response = self.gateway.get(self.path, timeout=self.timeout)
                outcome: Union[int, str] = response.status
                if response.status != 200:
                    with self._lock:
                        self.bad.append(repr(response))
            except Exception as exc:  # no response at all: recorded, the stream goes on
                outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.bad.append(outcome)
                if conn is not None:
                    conn.close()
                    conn = None
            with self._lock:
                self.outcomes.append(outcome)
        if conn is not None:
            conn.close()

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_count(self, more_than: int, timeout: float = 10.0) -> None:
        wait_until(lambda: self.count() > more_than, timeout,
                   message=lambda: f"the request stream to {self.path} made no progress "
                                   f"({self.count()} requests)")

    def stop(self) -> None:
        self._stop_event.set()
        self._running.set()
        self.join(30)


# --------------------------------------------------------------------------------------------------
# unittest glue


class GatewayTestCase(unittest.TestCase):
    """A TestCase whose gateways and external watchdogs are always cleaned up, and whose failures
    print the gateways' logs."""

    maxDiff = 4000

    def setUp(self) -> None:
        super().setUp()
        self._gateways: list[Gateway] = []
        self._watchdogs: list[harness.Watchdog] = []

    def start_gateway(self, functions_dir: Optional[Union[str, FunctionsDir]] = None, **kwargs) -> Gateway:
        gw = Gateway(functions_dir, **kwargs)
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        gw.start()
        return gw

    def start_watchdog(self, command: Sequence[str], options: Sequence[str] = (),
                       **kwargs) -> harness.Watchdog:
        wd = harness.Watchdog(command, options, **kwargs)
        self._watchdogs.append(wd)
        self.addCleanup(wd.close)
        wd.start()
        return wd

    def make_tempdir(self, prefix: str = "fastfn-gwtest-") -> str:
        path = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def functions(self) -> FunctionsDir:
        fns = FunctionsDir(self.make_tempdir("fastfn-fns-"))
        return fns

    def gate(self) -> Gate:
        gate = Gate(self.make_tempdir("fastfn-gate-"))
        self.addCleanup(gate.release)  # runs before the dir is removed: no handler waits in vain
        return gate

    def stream(self, gw: Gateway, path: str, **kwargs) -> RequestStream:
        stream = RequestStream(gw, path, **kwargs)
        self.addCleanup(stream.stop)
        stream.start()
        return stream

    def run(self, result=None):
        failures_before = None
        if result is not None:
            failures_before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        result = result or outcome
        if result is not None and failures_before is not None and \
                len(result.failures) + len(result.errors) > failures_before:
            for gw in getattr(self, "_gateways", []):
                print(f"\n--- {self.id()}: gateway {gw.argv} exit={gw.returncode}\n{gw.log_tail(80)}",
                      flush=True)
            for wd in getattr(self, "_watchdogs", []):
                print(f"\n--- {self.id()}: watchdog {wd.argv} exit={wd.returncode}\n{wd.log_tail(40)}",
                      flush=True)
        return outcome

    # -- assertions
    def assert_status(self, response: harness.Response, status: int, gw: Gateway, note: str = "") -> None:
        self.assertEqual(response.status, status,
                         f"{note} expected {status}, got {response!r}\n{gw.describe()}")

    def json_of(self, response: harness.Response, gw: Gateway, status: int = 200) -> JsonValue:
        self.assert_status(response, status, gw)
        try:
            return json.loads(response.body)
        except ValueError:
            self.fail(f"body is not JSON: {response!r}\n{gw.describe()}")

    def kv_of(self, response: harness.Response, gw: Gateway) -> dict[str, str]:
        self.assert_status(response, 200, gw)
        return parse_kv(response.text)

    def assert_json_error(self, response: harness.Response, status: int, gw: Gateway,
                          function: Optional[str] = None) -> dict:
        """An error answer as DESIGN.md has them: JSON {"error", "function", "request_id"} whose
        request_id is the X-Fn-Request-Id header."""
        self.assert_status(response, status, gw, "JSON error:")
        self.assertIn("json", response.headers.get("Content-Type", ""),
                      f"an error body must be JSON: {response!r}\n{gw.describe()}")
        data = self.json_of(response, gw, status)
        self.assertIsInstance(data, dict, f"error body must be an object: {response!r}")
        self.assertIsInstance(data.get("error"), str, f"no \"error\" string: {data!r}")
        self.assertTrue(data["error"].strip(), f"empty \"error\": {data!r}")
        self.assertIn("function", data, f"no \"function\": {data!r}")
        self.assertTrue(response.headers.get("X-Fn-Request-Id"), f"no X-Fn-Request-Id: {response!r}")
        self.assertEqual(data.get("request_id"), response.headers.get("X-Fn-Request-Id"),
                         f"request_id of the body and the X-Fn-Request-Id header differ: {response!r}")
        if function is not None:
            self.assertEqual(data["function"], function, f"wrong function name: {data!r}")
        return data

    def assert_stays(self, predicate: Callable[[], object], seconds: float,
                     message: Callable[[], str]) -> None:
        """Checks `predicate` repeatedly for `seconds` (a bounded observation window, for things that
        must NOT happen); fails the first time it is false."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not predicate():
                self.fail(message())
            time.sleep(0.05)

    def wait_health(self, gw: Gateway, predicate: Callable[[dict], object], timeout: float = 10.0,
                    what: str = "", interval: float = 0.02) -> dict:
        """Polls /_fn/health until predicate(health) is truthy; returns that health."""
        holder: dict[str, dict] = {}

        def check() -> object:
            gw.check_running()
            holder["h"] = gw.health()
            return predicate(holder["h"])

        wait_until(check, timeout, interval=interval,
                   message=lambda: f"{what}; last health: {json.dumps(holder.get('h'))[:3000]}"
                                   f"\n{gw.describe()}")
        return holder["h"]

    def wait_metric(self, gw: Gateway, name: str, value: float, timeout: float = 10.0,
                    **labels: str) -> Metrics:
        holder: dict[str, Metrics] = {}

        def check() -> bool:
            holder["m"] = gw.metrics()
            return holder["m"].get(name, **labels) == value

        def message() -> str:
            last = holder.get("m")
            seen = last.get(name, **labels) if last else None
            return f"{name}{labels} != {value}: {seen}\n{last.text[:3000] if last else ''}\n{gw.describe()}"

        wait_until(check, timeout, message=message)
        return holder["m"]

    def result(self, future, gw: Gateway, what: str, timeout: float = 30.0) -> harness.Response:
        try:
            return future.result(timeout=timeout)
        except Exception as exc:  # socket timeout, reset, protocol error: all are test failures here
            self.fail(f"{what}: no response ({exc!r})\n{gw.describe()}")


class SharedFunctionsCase(GatewayTestCase):
    """A functions dir built once for the class by `build(fns)`, and a fresh gateway on it for each
    test (self.gw)."""

    @classmethod
    def build(cls, fns: FunctionsDir) -> None:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.fns = FunctionsDir()
        cls.build(cls.fns)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.fns.cleanup()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.gw = self.start_gateway(self.fns)


def run_gateway_cli(args: Sequence[str], env: Optional[dict[str, Optional[str]]] = None,
                    cwd: Optional[str] = None, timeout: float = 10.0) -> harness.CliResult:
    """Runs the gateway to completion (for --help, --version, bad usage and config) in its own session
    with a cleaned environment. If it has not exited after `timeout` its session is killed and
    returncode is None."""
    argv = [gateway_binary(), *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=gateway_env({"FN_WATCHDOG_BIN": harness.watchdog_binary(), **(env or {})}),
                            cwd=cwd, start_new_session=True)
    code, out, err = harness.communicate_or_kill(proc, timeout)
    for stat in harness.all_proc_stats():  # whatever it started, it must not outlive the test
        if stat.session == proc.pid and stat.state != "Z":
            with contextlib.suppress(ProcessLookupError):
                os.kill(stat.pid, signal.SIGKILL)
    return harness.CliResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), argv)
