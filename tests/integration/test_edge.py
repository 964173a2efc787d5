#!/usr/bin/env python3
"""Integration test of issue 15, "An edge that holds ten thousand connections": idle and slow clients
cost a file descriptor, not a thread.

Against each of `fastfn-watchdog -- cat` (format cgi), `fastfn-watchdog --format http` with the hot
fixture handler, and the gateway (a hot python function), on tcp loopback:
- 2,000 idle connections (half never send a byte, half send one request and then nothing), 200
  slowloris heads and 200 slow bodies (to an endpoint that answers without reading them) held open
  while a good client's probes, each on a new connection, are every one answered within a bound;
  the server's thread count stays within 64 of its count at rest. The same for 200 slow small
  bodies to the function itself, which reads its input.
- Under RLIMIT_NOFILE 256, 600 connections: the server keeps serving a connection opened before
  the flood (it keeps fds in reserve beyond its connections), does not die, serves normally once
  the clients leave; the gateway unloads nothing.
- Out of fds (the soft limit lowered from outside to what the server holds, plus 3): a connection
  it cannot take is closed at once (the spare-fd trick), not left hanging; the shortage is logged
  once; the server serves again once fds are back.
- SIGTERM with a request in flight: a new connection is refused at once while the request in flight
  completes with 200, and a head that was arriving is answered 503 by the health endpoint.
- --max-connections 50: the 51st connection is not served until one of the 50 closes; an invalid
  value is exit code 2 with one line.

The suite raises its own RLIMIT_NOFILE (as root it may raise the hard limit too); servers inherit it.
Nothing waits on a clock: every wait polls a condition with a generous deadline; the only fixed
windows are bounded observations of something that must NOT happen.
Run alone: FASTFN_WATCHDOG=... FASTFN_GATEWAY=... python3 tests/integration/test_edge.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import contextlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
from typing import Callable, Optional, Sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import hot_support  # noqa: E402
from harness import wait_until  # noqa: E402
from gateway_support import Gate, Gateway, GatewayTestCase, check_binaries, function_entry, \
    run_gateway_cli  # noqa: E402

IDLE = 2000
SLOWLORIS = 200
SLOW_BODIES = 200
ROUNDS = 10           # each: a byte from every slow client, then a probe
PROBE_BOUND = 5.0     # seconds; an old server held by idle clients answers only after 30 s or never
THREAD_ALLOWANCE = 64
LOW_FD_LIMIT = 256
FLOOD = 600
NEEDED_FDS = IDLE + SLOWLORIS + SLOW_BODIES + 600


def setUpModule():
    check_binaries()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))  # root may raise hard
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def enough_fds() -> bool:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= NEEDED_FDS


def threads(pid: int) -> int:
    return int(harness.proc_status(pid).get("Threads", "0"))


def socket_count(pid: int) -> int:
    try:
        return sum(1 for target in harness.fd_targets(pid).values() if target.startswith("socket:"))
    except (FileNotFoundError, ProcessLookupError):
        return 0


def fd_limit_preexec(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return preexec


def soft_limit_allowing(pid: int, more: int) -> int:
    """The soft RLIMIT_NOFILE under which `pid` can open exactly `more` fds beyond those it holds."""
    held = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    limit, free = 0, 0
    while free < more or limit in held:
        if limit not in held:
            free += 1
        limit += 1
    return limit


class LimitedWatchdog(harness.Watchdog):
    """A watchdog started with its own soft RLIMIT_NOFILE."""

    def __init__(self, *args, fd_limit: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fd_limit = fd_limit

    def start(self) -> "LimitedWatchdog":
        preexec = fd_limit_preexec(self.fd_limit) if self.fd_limit else None
        with open(self._log_path, "wb") as err, open(self._out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=self.cwd, start_new_session=True,
                                         preexec_fn=preexec)
        if self.wait_healthy:
            self.wait_for_health(self.start_timeout)
        return self


class LimitedGateway(Gateway):
    """A gateway (and so its watchdogs) started with its own soft RLIMIT_NOFILE."""

    def __init__(self, *args, fd_limit: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fd_limit = fd_limit

    def start(self) -> "LimitedGateway":
        preexec = fd_limit_preexec(self.fd_limit) if self.fd_limit else None
        with open(self._log_path, "wb") as err, open(self._out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=self.cwd, start_new_session=True,
                                         preexec_fn=preexec)
        self.wait_for_health(self.start_timeout)
        if self.wait_for:
            self.wait_functions_up(self.wait_for, self.start_timeout)
        return self


def raw_request(path: str, host: str, extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def readable_within(sock: socket.socket, seconds: float) -> bool:
    ready, _, _ = select.select([sock], [], [], seconds)
    return bool(ready)


class EdgeCases:
    """The cases, run against each server by the classes at the end. A subclass provides:
    start_server(args, fd_limit), probe(server), begin_slow_request(server) -> finish callable,
    health_path, function_path (a function that reads its input), and after_flood_checks(server,
    before)."""

    health_path = "/_/health"
    logger = "watchdog"  # whose "listening" line states max_connections

    # -- helpers
    def connect(self, server, timeout: float = 10.0) -> harness.HttpConnection:
        conn = harness.HttpConnection(server.address, timeout=timeout)
        self.addCleanup(conn.close)
        return conn

    def raw_connect(self, server) -> socket.socket:
        sock = server.address.connect(10)
        self.addCleanup(sock.close)
        return sock

    def assert_answered(self, sock: socket.socket, status: int, what: str, server) -> None:
        sock.settimeout(PROBE_BOUND)
        try:
            answer = sock.recv(12)
        except OSError as exc:
            answer = repr(exc).encode()
        self.assertEqual(answer, f"HTTP/1.1 {status}".encode(), f"{what}: no answer\n{server.describe()}")

    def host(self, server) -> str:
        return server.address.host_header()

    def timed_probe(self, server, what: str) -> None:
        start = time.monotonic()
        try:
            self.probe(server)
        except Exception as exc:  # a timeout, a reset: the probe was not answered
            self.fail(f"{what}: probe not answered after {time.monotonic() - start:.1f}s ({exc!r})\n"
                      f"{server.describe()}")
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, PROBE_BOUND, f"{what}: probe took {elapsed:.1f}s\n{server.describe()}")

    def wait_sockets(self, server, count: int, timeout: float = 60.0) -> None:
        wait_until(lambda: not server.is_running() or socket_count(server.pid) >= count, timeout,
                   interval=0.05,
                   message=lambda: f"the server holds {socket_count(server.pid)} sockets, not {count}"
                                   f"\n{server.describe()}")
        self.assertTrue(server.is_running(), server.describe())

    # -- the cases
    def test_idle_and_slow_clients_cost_no_thread_and_a_good_client_is_answered(self):
        if not enough_fds():
            self.skipTest(f"RLIMIT_NOFILE below {NEEDED_FDS}")
        server = self.start_server()
        self.timed_probe(server, "at rest")
        rest = threads(server.pid)
        host = self.host(server)
        held = [self.raw_connect(server) for _ in range(IDLE)]
        for i, sock in enumerate(held):
            if i % 2:  # one request, answered, then silence (one at a time: threads serve requests
                sock.sendall(raw_request(self.health_path, host))  # in flight, and may grow so)
                self.assert_answered(sock, 200, f"idle client {i}", server)
        slowloris = [self.raw_connect(server) for _ in range(SLOWLORIS)]
        head = raw_request(self.health_path, host, "X-Slow: " + "a" * 64 + "\r\n")[:-2]
        for sock in slowloris:
            sock.sendall(head[:20])
        slow_bodies = [self.raw_connect(server) for _ in range(SLOW_BODIES)]
        for i, sock in enumerate(slow_bodies):  # answered unread: the rest is the server's to drop
            sock.sendall(raw_request(self.health_path, host, "Content-Length: 100000\r\n") + b"x")
            self.assert_answered(sock, 200, f"slow body {i}", server)
        self.wait_sockets(server, IDLE + SLOWLORIS + SLOW_BODIES)
        most = rest
        for round_ in range(ROUNDS):
            # A server that keeps to its read timeout may have closed some by now: that is its right.
            for sock in slowloris:
                with contextlib.suppress(OSError):
                    sock.sendall(head[20 + round_:21 + round_])
            for sock in slow_bodies:
                with contextlib.suppress(OSError):
                    sock.sendall(b"y")
            self.timed_probe(server, f"round {round_} beside {IDLE} idle, {SLOWLORIS} slowloris and "
                                     f"{SLOW_BODIES} slow-body clients")
            most = max(most, threads(server.pid))
        self.assertLessEqual(most, rest + THREAD_ALLOWANCE,
                             f"threads grew from {rest} to {most} with idle and slow clients\n{server.describe()}")
        for sock in held + slowloris + slow_bodies:
            sock.close()
        self.timed_probe(server, "after the clients left")
        self.assertTrue(server.is_running(), server.describe())

    def test_slow_small_bodies_to_a_function_cost_no_thread(self):
        """Bodies of up to 64 KiB are received by the event loop before the function runs: slow
        clients sending them to a function that reads its input (cat, a hot handler, a proxied
        call) hold no thread and no process while their bytes trickle in."""
        server = self.start_server()
        self.timed_probe(server, "at rest")
        rest = threads(server.pid)
        host = self.host(server)
        slow_bodies = [self.raw_connect(server) for _ in range(SLOW_BODIES)]
        for sock in slow_bodies:
            sock.sendall(raw_request(self.function_path, host, "Content-Length: 1000\r\n", method="POST") + b"x")
        self.wait_sockets(server, SLOW_BODIES)
        most = rest
        for round_ in range(ROUNDS):
            for sock in slow_bodies:
                with contextlib.suppress(OSError):  # a server may keep to its read timeout
                    sock.sendall(b"y")
            self.timed_probe(server, f"round {round_} beside {SLOW_BODIES} slow bodies to {self.function_path}")
            most = max(most, threads(server.pid))
        self.assertLessEqual(most, rest + THREAD_ALLOWANCE,
                             f"threads grew from {rest} to {most} with slow bodies to the function\n"
                             f"{server.describe()}")
        for sock in slow_bodies:
            sock.close()
        self.timed_probe(server, "after the clients left")

    @unittest.skipIf(harness.UNDER_ASAN, "starves the server of fds, which ASan needs for itself")
    def test_under_a_low_fd_limit_a_flood_leaves_room_for_the_work(self):
        server = self.start_server(fd_limit=LOW_FD_LIMIT)
        before = self.state_before_flood(server)
        good = harness.HttpConnection(server.address, timeout=PROBE_BOUND)
        self.addCleanup(good.close)
        self.assert_work_served(server, good, "before the flood")
        base_sockets = socket_count(server.pid)
        flood = [self.raw_connect(server) for _ in range(FLOOD)]
        self.wait_sockets(server, min(base_sockets + 100, LOW_FD_LIMIT - 100))
        # The connection from before the flood still gets its work done: a cgi request needs pipes,
        # a proxied one an upstream connection. Fds are kept for that beyond the connections.
        for i in range(3):
            self.assert_work_served(server, good, f"during the flood ({i})")
        self.assertTrue(server.is_running(), f"the server died under the flood\n{server.describe()}")
        capped = re.compile(rf"\[{self.logger}\] listening .*max_connections={LOW_FD_LIMIT - 64}\b")
        self.assertRegex(server.log(), capped,
                         f"the connection limit is not the fd limit less the reserve\n{server.describe()}")
        for sock in flood:
            sock.close()
        wait_until(lambda: self.probe_ok(server), 30,
                   message=lambda: f"not served normally after the flood\n{server.describe()}")
        self.after_flood_checks(server, before)

    @unittest.skipIf(harness.UNDER_ASAN, "starves the server of fds, which ASan needs for itself")
    def test_out_of_fds_a_connection_is_shed_not_left_hanging(self):
        server = self.start_server()
        before = self.state_before_flood(server)
        soft, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        restore = lambda: server.is_running() and resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (soft, hard))
        self.addCleanup(restore)
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (soft_limit_allowing(server.pid, 3), hard))
        # At most 3 (and a few the server's own work may free meanwhile) can be taken; the others
        # must be closed at once (the spare fd), not left in the backlog. Each is answered or closed.
        host = self.host(server)
        attempts = [self.connect(server) for _ in range(12)]
        for conn in attempts:
            conn.send_raw(raw_request(self.health_path, host))
        pending = {id(conn): conn for conn in attempts}
        closed = 0
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select([c.sock for c in pending.values()], [], [], 1.0)
            for conn in [c for c in pending.values() if c.sock in ready]:
                del pending[id(conn)]
                try:
                    data = conn.sock.recv(12, socket.MSG_PEEK)
                except ConnectionResetError:
                    data = b""
                closed += data == b""
        self.assertFalse(pending, f"{len(pending)} connections beyond the fds were left hanging, neither "
                                  f"answered nor closed\n{server.describe()}")
        self.assertGreaterEqual(closed, 6, f"only {closed} of 12 connections were shed\n{server.describe()}")
        self.assertTrue(server.is_running(), server.describe())
        episodes = server.log().count("cannot accept connections")
        self.assertEqual(episodes, 1, f"the fd shortage is logged {episodes} times, not once\n{server.describe()}")
        restore()
        for conn in attempts:
            conn.close()
        # The episode ends with an accept a moment after the last shortage.
        wait_until(lambda: self.probe_ok(server) and "accepting connections again" in server.log(), 30,
                   message=lambda: f"not served again once fds were back\n{server.describe()}")
        self.after_flood_checks(server, before)

    def test_sigterm_refuses_new_connections_and_finishes_the_request_in_flight(self):
        server = self.start_server()
        arriving = self.connect(server)
        host = self.host(server)
        arriving.send_raw(raw_request(self.health_path, host)[:-2])  # a head, all but its end
        finish = self.begin_slow_request(server)
        server.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                server.address.connect(2).close()  # accepted: the old listener hangs it
                return False
            except (ConnectionRefusedError, FileNotFoundError):
                return True
            except ConnectionResetError:  # it reached the backlog as the listener closed
                return True

        wait_until(refused, PROBE_BOUND, message=lambda: f"new connections still accepted after SIGTERM"
                                                         f"\n{server.describe()}")
        arriving.send_raw(b"\r\n")
        health = arriving.read_response()
        self.assertEqual(health.status, 503, f"health while draining: {health!r}\n{server.describe()}")
        self.assertEqual(health.headers.get("Connection"), "close", repr(health))
        response = finish()
        self.assertEqual(response.status, 200, f"the request in flight: {response!r}\n{server.describe()}")
        self.assertEqual(server.wait(30), 0, server.describe())

    def test_max_connections_holds_the_next_connection_until_one_closes(self):
        server = self.start_server(["--max-connections", "50"])
        host = self.host(server)
        fifty = []
        for i in range(50):
            conn = harness.HttpConnection(server.address, timeout=10)
            self.addCleanup(conn.close)
            self.assertEqual(conn.request("GET", self.health_path).status, 200, server.describe())
            fifty.append(conn)
        waiting = self.connect(server)  # the kernel's backlog takes it
        waiting.send_raw(raw_request(self.health_path, host))
        self.assertFalse(readable_within(waiting.sock, 1.0),
                         f"the 51st connection was served beside 50 others\n{server.describe()}")
        fifty[0].close()
        self.assertTrue(readable_within(waiting.sock, 20), f"the 51st never served\n{server.describe()}")
        self.assertEqual(waiting.read_response().status, 200, server.describe())

    # -- what a subclass may refine
    def state_before_flood(self, server) -> object:
        return None

    def after_flood_checks(self, server, before: object) -> None:
        self.assertTrue(server.is_running(), server.describe())

    def probe_ok(self, server) -> bool:
        try:
            self.probe(server)
            return True
        except (OSError, ConnectionError, AssertionError, harness.ProtocolError):
            return False


class WatchdogCases(EdgeCases):
    options: Sequence[str] = ()
    function_path = "/echo"

    def start_server(self, args: Sequence[str] = (), fd_limit: Optional[int] = None) -> harness.Watchdog:
        wd = LimitedWatchdog(self.command(), [*self.options, *args], listen="tcp", fd_limit=fd_limit)
        self._watchdogs.append(wd)
        self.addCleanup(wd.close)
        return wd.start()

    def assert_work_served(self, server, conn: harness.HttpConnection, what: str) -> None:
        response = conn.request("POST", "/echo", body=b"work")
        self.assertEqual(response.status, 200, f"{what}: {response!r}\n{server.describe()}")


class CgiEdgeTest(WatchdogCases, harness.WatchdogTestCase):
    """fastfn-watchdog -- cat: a process per request, its body streamed to it."""

    def command(self) -> list[str]:
        return ["cat"]

    def probe(self, server) -> None:
        response = server.post("/probe", body=b"probe", timeout=PROBE_BOUND)
        assert response.status == 200 and response.body == b"probe", repr(response)

    def begin_slow_request(self, server) -> Callable[[], harness.Response]:
        conn = harness.HttpConnection(server.address, timeout=30)
        self.addCleanup(conn.close)
        # Over the 64 KiB a server receives before it runs the function: cat starts at once.
        size = 70_000
        conn.send_raw(raw_request("/slow", self.host(server), f"Content-Length: {size}\r\n", method="POST")
                      + b"12345")
        wait_until(lambda: harness.children(server.pid), 15,
                   message=lambda: f"cat never started\n{server.describe()}")

        def finish() -> harness.Response:
            conn.send_raw(b"6" * (size - 5))
            response = conn.read_response("POST")
            assert response.body == b"12345" + b"6" * (size - 5), repr(response)[:300]
            return response
        return finish


    def test_sigterm_on_a_unix_socket_refuses_until_exit_then_removes_the_file(self):
        wd = self.start_watchdog(self.command())  # on a unix socket in its temp dir
        finish = self.begin_slow_request(wd)
        wd.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                wd.address.connect(2).close()
                return False
            except ConnectionRefusedError:
                return True  # the file is there, nobody accepts: a client sees "refused", not "no such file"

        wait_until(refused, PROBE_BOUND, message=lambda: f"not refused after SIGTERM\n{wd.describe()}")
        self.assertEqual(finish().status, 200, wd.describe())
        self.assertEqual(wd.wait(30), 0, wd.describe())
        self.assertFalse(os.path.exists(wd.address.path), "the socket file outlived the watchdog")


class HotEdgeTest(WatchdogCases, harness.WatchdogTestCase):
    """fastfn-watchdog --format http with the hot fixture handler."""

    options = ("--format", "http", "--min-instances", "1", "--max-instances", "2")

    def command(self) -> list[str]:
        return hot_support.hot_handler_command()

    def probe(self, server) -> None:
        response = server.get("/pid", timeout=PROBE_BOUND)
        assert response.status == 200, repr(response)

    def begin_slow_request(self, server) -> Callable[[], harness.Response]:
        gate = hot_support.Gate(self)
        conn = harness.HttpConnection(server.address, timeout=30)
        self.addCleanup(conn.close)
        conn.send_raw(raw_request(gate.path("slow"), self.host(server)))
        gate.wait_started(["slow"], server)

        def finish() -> harness.Response:
            gate.release("slow")
            return conn.read_response()
        return finish


class GatewayEdgeTest(EdgeCases, GatewayTestCase):
    """fastfn-gateway over a hot python function and a gated cgi one."""

    health_path = "/_fn/health"
    function_path = "/hot"
    logger = "gateway"

    def start_server(self, args: Sequence[str] = (), fd_limit: Optional[int] = None) -> Gateway:
        fns = self.functions()
        self.gate_ = self.gate()
        fns.python_http("hot")
        fns.gate("slow", self.gate_.dir, {"timeout_ms": 60000})
        gw = LimitedGateway(fns, args=list(args), fd_limit=fd_limit, wait_for=["hot", "slow"])
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        return gw.start()

    def probe(self, server) -> None:
        response = server.get("/hot", timeout=PROBE_BOUND)
        assert response.status == 200, repr(response)

    def assert_work_served(self, server, conn: harness.HttpConnection, what: str) -> None:
        response = conn.request("GET", "/hot")
        self.assertEqual(response.status, 200, f"{what}: {response!r}\n{server.describe()}")

    def begin_slow_request(self, server) -> Callable[[], harness.Response]:
        conn = harness.HttpConnection(server.address, timeout=30)
        self.addCleanup(conn.close)
        conn.send_raw(raw_request("/slow?name=inflight", self.host(server)))
        self.gate_.wait_started(["inflight"], describe=server.describe)

        def finish() -> harness.Response:
            self.gate_.release("inflight")
            return conn.read_response()
        return finish

    def state_before_flood(self, server) -> object:
        return {name: server.watchdog_pids(name) for name in ("hot", "slow")}

    def after_flood_checks(self, server, before: object) -> None:
        super().after_flood_checks(server, before)
        health = server.wait_functions_up(["hot", "slow"])
        for name, pids in before.items():  # type: ignore[union-attr]
            self.assertIsNotNone(function_entry(health, name), f"{name} was unloaded\n{server.describe()}")
            self.assertEqual(server.watchdog_pids(name), pids,
                             f"{name}'s watchdog was restarted\n{server.describe()}")


class MaxConnectionsUsageTest(unittest.TestCase):
    def assert_usage_error(self, result: harness.CliResult) -> None:
        self.assertEqual(result.returncode, 2, result.describe())
        lines = result.stderr_lines()
        self.assertEqual(len(lines), 1, result.describe())
        self.assertIn("max", lines[0].lower(), result.describe())

    def test_watchdog_refuses_an_invalid_max_connections(self):
        for value in ("0", "-5", "many", "1.5", "2000000"):
            with self.subTest(value=value):
                self.assert_usage_error(harness.run_cli(["--max-connections", value, "--", "cat"]))
        self.assert_usage_error(harness.run_cli(["--", "cat"], env={"max_connections": "lots"}))

    def test_gateway_refuses_an_invalid_max_connections(self):
        for value in ("0", "many", "2000000"):
            with self.subTest(value=value):
                self.assert_usage_error(run_gateway_cli(["--max-connections", value]))
        self.assert_usage_error(run_gateway_cli([], env={"FN_MAX_CONNECTIONS": "-1"}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
