"""Issue 20, systemd: both binaries as Type=notify services with socket activation.

- sd_notify: with a NOTIFY_SOCKET this test binds itself (an AF_UNIX datagram socket with
  SO_PASSCRED, so each message's sender pid is known), each binary sends READY=1 once it serves (a
  request made right after READY=1 is read succeeds, with no health polling), STOPPING=1 when
  SIGTERM begins the drain, and WATCHDOG=1 again and again when WATCHDOG_USEC is set (counted, never
  timed). Every message comes from the main process: the gateway's watchdog daemons inherit none of
  NOTIFY_SOCKET, LISTEN_FDS, LISTEN_PID, WATCHDOG_USEC (read from their /proc/PID/environ).
- Socket activation with systemd-socket-activate (the systemd package): the passed socket is served
  and the configured --listen / FN_LISTEN is not bound; a passed unix socket file is systemd's and
  stays after the stop; a passed datagram socket, or two sockets, is exit 2 with one line.
"""

from __future__ import annotations

import array
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gateway_support  # noqa: E402
import harness  # noqa: E402
from harness import Address, HttpConnection, wait_until  # noqa: E402

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
BOUND = 30.0  # seconds: far beyond what any machine needs; tests wait for events, not for time
SERVICE_VARIABLES = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC", "WATCHDOG_PID")


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket; each message with its sender."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.messages: list[tuple[int, dict[str, str]]] = []  # (sender pid, fields)

    def close(self) -> None:
        self.sock.close()

    def _receive(self, deadline: float) -> bool:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return False
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((pid, fields))
        return True

    def wait_for(self, field: str, count: int = 1) -> list[tuple[int, dict[str, str]]]:
        """Receives until `count` messages hold `field` (bounded); returns those messages."""
        deadline = time.monotonic() + BOUND
        while True:
            found = [m for m in self.messages if field in m[1]]
            if len(found) >= count:
                return found
            if not self._receive(deadline):
                raise AssertionError(f"{len(found)} of {count} {field} messages within {BOUND} s;"
                                     f" got {self.messages}")

    def drain(self) -> None:
        """Takes what is already queued, without waiting for more."""
        while self._receive(time.monotonic()):
            pass


class Service:
    """A binary started in its own session, stderr in a file; close() kills what is left of it."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], directory: str):
        self.log_path = os.path.join(directory, f"service{time.monotonic_ns()}.stderr")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log,
                                         start_new_session=True, cwd=directory)
        self.saved_log: Optional[str] = None  # kept by close(): the file goes with the temp dir

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        if self.saved_log is None:
            return Path(self.log_path).read_text(errors="replace")
        return self.saved_log

    def stop(self) -> int:
        """SIGTERM, and the exit code once it has drained and stopped (bounded)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(BOUND)

    def wait(self) -> int:
        return self.proc.wait(BOUND)

    def close(self) -> None:
        if self.proc.poll() is None:
            for child in harness.descendants(self.proc.pid):
                harness.kill_group(child.pgrp)
            harness.kill_group(self.proc.pid)
            self.proc.wait(BOUND)
        self.saved_log = self.log()


def environ_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        entries = f.read().split(b"\0")
    return dict(e.decode(errors="replace").split("=", 1) for e in entries if b"=" in e)


def connect_eventually(address: Address) -> HttpConnection:
    """A connection once the socket exists (systemd-socket-activate binds it, then execs the
    binary on the first connection, which then waits in the backlog until it is served)."""
    connection: list[HttpConnection] = []

    def attempt() -> bool:
        try:
            connection.append(HttpConnection(address, timeout=BOUND))
            return True
        except OSError:
            return False
    if not wait_until(attempt, timeout=BOUND):
        raise AssertionError(f"nothing listens on {address}")
    return connection[0]


class SystemdTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fastfn-systemd-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.notify = NotifySocket(self.dir)
        self.addCleanup(self.notify.close)
        self.services: list[Service] = []

    def run(self, result=None):
        outcome = super().run(result)
        if result is not None and not result.wasSuccessful():
            for service in self.services:
                sys.stderr.write(f"--- {self.id()} pid {service.pid}:\n{service.log()[-4000:]}\n")
        return outcome

    def start(self, argv: Sequence[str], env: dict[str, str]) -> Service:
        service = Service(argv, env, self.dir)
        self.services.append(service)
        self.addCleanup(service.close)
        return service

    # --- the two binaries
    def watchdog_argv(self, listen: str) -> list[str]:
        return [harness.watchdog_binary(), "--listen", listen, "--", "/bin/echo", "hello"]

    def watchdog_env(self, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
        env = harness._child_env({k: None for k in SERVICE_VARIABLES})
        return {**env, **(extra or {})}

    def gateway_argv(self, listen: str) -> list[str]:
        functions = gateway_support.FunctionsDir(os.path.join(self.dir, "fns"))
        functions.sh_env("hello")
        return [gateway_support.gateway_binary(), "--listen", listen, str(functions)]

    def gateway_env(self, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
        env = gateway_support.gateway_env({k: None for k in SERVICE_VARIABLES})
        env.update({"FN_SOCKET_BASE_DIR": os.path.join(self.dir, "sockets"),
                    "FN_WATCHDOG_BIN": harness.watchdog_binary()})
        return {**env, **(extra or {})}

    def assert_ok(self, connection: HttpConnection, path: str, body: Optional[str] = None) -> None:
        response = connection.request("GET", path)
        self.assertEqual(response.status, 200, response)
        if body is not None:
            self.assertEqual(response.body.decode(), body)


class TestNotify(SystemdTestCase):
    def check_ready_serving_stopping(self, argv: list[str], env: dict[str, str], address: Address,
                                     path: str, body: Optional[str]) -> Service:
        service = self.start(argv, {**env, "NOTIFY_SOCKET": self.notify.path})
        (pid, ready), = self.notify.wait_for("READY")
        self.assertEqual(pid, service.pid)
        self.assertEqual(ready["READY"], "1")
        self.assertIn("serving", ready.get("STATUS", ""))
        # Served at once: READY=1 is the only signal this client waited for.
        with HttpConnection(address, timeout=BOUND) as connection:
            self.assert_ok(connection, path, body)
        self.assertEqual(service.stop(), 0, service.log())
        (pid, stopping), = self.notify.wait_for("STOPPING")
        self.assertEqual(pid, service.pid)
        self.assertEqual(stopping["STOPPING"], "1")
        self.notify.drain()
        ready_at = next(i for i, m in enumerate(self.notify.messages) if "READY" in m[1])
        stopping_at = next(i for i, m in enumerate(self.notify.messages) if "STOPPING" in m[1])
        self.assertLess(ready_at, stopping_at)
        self.assertEqual({pid for pid, _ in self.notify.messages}, {service.pid},
                         "every message from the main process")
        self.assertFalse([m for m in self.notify.messages if "WATCHDOG" in m[1]],
                         "no WATCHDOG=1 without WATCHDOG_USEC")
        return service

    def test_watchdog_ready_serving_then_stopping(self) -> None:
        address = Address.unix(os.path.join(self.dir, "wd.sock"))
        self.check_ready_serving_stopping(self.watchdog_argv(str(address)), self.watchdog_env(),
                                          address, "/", "hello\n")

    def test_gateway_ready_routing_then_stopping(self) -> None:
        port = harness.free_port()
        argv = self.gateway_argv(f"127.0.0.1:{port}")
        service = self.start(argv, {**self.gateway_env(), "NOTIFY_SOCKET": self.notify.path})
        self.notify.wait_for("READY")
        # A function request, not /_fn/health: ready means routing, to a watchdog just started.
        with HttpConnection(Address.tcp(port), timeout=BOUND) as connection:
            response = connection.request("GET", "/hello")
            self.assertEqual(response.status, 200, response)
        watchdogs = [p.pid for p in harness.descendants(service.pid)
                     if "fastfn-watchdog" in gateway_support.cmdline(p.pid)]
        self.assertTrue(watchdogs, "the gateway runs a watchdog for hello")
        for pid in watchdogs:
            leaked = set(environ_of(pid)) & set(SERVICE_VARIABLES)
            self.assertFalse(leaked, f"watchdog {pid} inherited {leaked}")
        self.assertEqual(service.stop(), 0, service.log())
        self.notify.wait_for("STOPPING")
        self.notify.drain()
        self.assertEqual({pid for pid, _ in self.notify.messages}, {service.pid},
                         "no watchdog daemon spoke for the gateway")

    def check_watchdog_pings(self, argv: list[str], env: dict[str, str]) -> None:
        # 200 ms: a ping every 100 ms; five of them, however long they take to come.
        service = self.start(argv, {**env, "NOTIFY_SOCKET": self.notify.path,
                                    "WATCHDOG_USEC": "200000"})
        pings = self.notify.wait_for("WATCHDOG", count=5)
        self.assertEqual({pid for pid, _ in pings}, {service.pid})
        self.assertTrue(all(fields["WATCHDOG"] == "1" for _, fields in pings))
        self.assertEqual(service.stop(), 0, service.log())
        # Only the gateway's own process is watched: its watchdogs got no WATCHDOG_USEC.
        self.assertEqual({pid for pid, _ in self.notify.messages}, {service.pid})

    def test_watchdog_pings(self) -> None:
        self.check_watchdog_pings(self.watchdog_argv(f"unix:{self.dir}/wd.sock"),
                                  self.watchdog_env())

    def test_gateway_pings(self) -> None:
        self.check_watchdog_pings(self.gateway_argv(f"127.0.0.1:{harness.free_port()}"),
                                  self.gateway_env())

    def test_pings_for_another_process_are_not_sent(self) -> None:
        # WATCHDOG_PID names who is watched (sd_watchdog_enabled): not this watchdog, no pings.
        service = self.start(self.watchdog_argv(f"unix:{self.dir}/wd.sock"),
                             {**self.watchdog_env(), "NOTIFY_SOCKET": self.notify.path,
                              "WATCHDOG_USEC": "2000", "WATCHDOG_PID": "1"})
        self.notify.wait_for("READY")
        self.assertEqual(service.stop(), 0, service.log())
        self.notify.wait_for("STOPPING")
        self.assertFalse([m for m in self.notify.messages if "WATCHDOG" in m[1]])


class TestSocketActivation(SystemdTestCase):
    def activate(self, listen: Sequence[str], argv: list[str], env: dict[str, str],
                 options: Sequence[str] = ()) -> Service:
        """systemd-socket-activate with one -l per address; it passes LISTEN_FDS and LISTEN_PID."""
        command = [SOCKET_ACTIVATE, *options]
        for address in listen:
            command += ["-l", address]
        for name in env:
            command += ["-E", name]  # it passes only what -E names (and HOME, PATH, TERM)
        return self.start(command + argv, env)

    def test_watchdog_serves_a_passed_unix_socket(self) -> None:
        passed = os.path.join(self.dir, "passed.sock")
        configured = os.path.join(self.dir, "configured.sock")
        service = self.activate([passed], self.watchdog_argv(f"unix:{configured}"),
                                self.watchdog_env())
        with connect_eventually(Address.unix(passed)) as connection:
            self.assert_ok(connection, "/", "hello\n")
            self.assert_ok(connection, "/", "hello\n")
        self.assertFalse(os.path.exists(configured), "--listen is not bound")
        self.assertIn(f"address=unix:{passed}", service.log())
        self.assertEqual(service.stop(), 0, service.log())
        self.assertTrue(os.path.exists(passed), "systemd's socket file is not removed")

    def test_gateway_serves_a_passed_tcp_socket(self) -> None:
        port, configured = harness.free_port(), harness.free_port()
        service = self.activate([f"127.0.0.1:{port}"], self.gateway_argv(f"127.0.0.1:{configured}"),
                                self.gateway_env({"NOTIFY_SOCKET": self.notify.path}))
        with connect_eventually(Address.tcp(port)) as connection:
            self.assert_ok(connection, "/hello")
            self.assert_ok(connection, "/_fn/health")
        self.notify.wait_for("READY")
        self.assertFalse(Address.tcp(configured).accepts_connections(), "--listen is not bound")
        self.assertIn(f"address=tcp:127.0.0.1:{port}", service.log())
        for child in harness.descendants(service.pid):
            if "fastfn-watchdog" in gateway_support.cmdline(child.pid):
                self.assertFalse(set(environ_of(child.pid)) & set(SERVICE_VARIABLES))
        self.assertEqual(service.stop(), 0, service.log())

    def check_refused(self, service: Service, trigger, expected: str) -> None:
        trigger()
        self.assertEqual(service.wait(), 2, service.log())
        lines = [line for line in service.log().splitlines()
                 if not line.startswith(("Listening on", "Communication attempt", "Execing"))]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(expected, lines[0])

    def test_a_passed_datagram_socket_is_exit_2(self) -> None:
        for name, argv, env in (
                ("watchdog", self.watchdog_argv(f"unix:{self.dir}/wd.sock"), self.watchdog_env()),
                ("gateway", self.gateway_argv(f"127.0.0.1:{harness.free_port()}"),
                 self.gateway_env())):
            with self.subTest(name):
                passed = os.path.join(self.dir, f"{name}.dgram")
                service = self.activate([passed], argv, env, options=["--datagram"])

                def send_datagram() -> None:  # what makes systemd-socket-activate exec it
                    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                        wait_until(lambda: os.path.exists(passed), timeout=BOUND)
                        s.sendto(b"x", passed)
                self.check_refused(service, send_datagram,
                                   f"fastfn-{name}: the socket passed by the service manager (fd 3)"
                                   " is not a listening stream socket")

    def test_two_passed_sockets_are_exit_2(self) -> None:
        first, second = os.path.join(self.dir, "a.sock"), os.path.join(self.dir, "b.sock")
        service = self.activate([first, second], self.watchdog_argv(f"unix:{self.dir}/wd.sock"),
                                self.watchdog_env())
        self.check_refused(service, lambda: connect_eventually(Address.unix(first)).close(),
                           "socket activation: 2 sockets passed (LISTEN_FDS), one is served")


def setUpModule() -> None:
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_executable(gateway_support.gateway_binary(), "fastfn-gateway (set FASTFN_GATEWAY)")
    if not os.access(SOCKET_ACTIVATE, os.X_OK):
        raise unittest.SkipTest("systemd-socket-activate is missing (Debian: apt-get install systemd)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
