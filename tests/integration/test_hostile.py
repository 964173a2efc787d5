#!/usr/bin/env python3
"""Hostile clients against both servers (issue 6, "Hardening"): fastfn-watchdog on tcp loopback and
fastfn-gateway over a functions dir, each wrapping tests/fixtures/hostile/echo.sh as a CGI function.

Every test sends something a hostile or broken client sends (request smuggling shapes, oversized and
flooded heads, slowloris, slow and stalled bodies, clients that vanish, pipelining, invalid request
lines, absolute-form targets, HTTP/1.0, Expect: 100-continue) and checks that it gets the right status
or a closed connection within the read timeout, and that a parallel stream of good requests (a thread
doing requests in a loop) sees no error and no stall beyond a bound meanwhile. Afterwards the server is
still running and serving.

The watchdog runs with --read-timeout 2s. The gateway's read timeout cannot be configured (gateway/main.cpp
builds its server with common::ServerSettings{}, read_timeout 10 s): its slow-client tests wait for those
10 s, bounded at 10 s plus a slack.

Run alone: FASTFN_WATCHDOG=... FASTFN_GATEWAY=... python3 tests/integration/test_hostile.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
from typing import Optional  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import KIB, MIB, Address, wait_until  # noqa: E402
from gateway_support import Gateway, GatewayTestCase, FunctionsDir, check_binaries  # noqa: E402

HOSTILE_FIXTURES_DIR = harness.FIXTURES_DIR / "hostile"
ECHO = HOSTILE_FIXTURES_DIR / "echo.sh"

WATCHDOG_READ_TIMEOUT = 2.0
GATEWAY_READ_TIMEOUT = 10.0  # common::ServerSettings' default; the gateway has no option for it
EXEC_TIMEOUT = 4.0           # --exec-timeout of the watchdog, timeout_ms of the gateway's function
MAX_BODY = 1 * MIB


def setUpModule():
    check_binaries()
    if not os.access(ECHO, os.X_OK):
        raise RuntimeError(f"fixture {ECHO} lost its exec bit (chmod +x it)")


# --------------------------------------------------------------------------------------------------
# Raw exchanges


@dataclasses.dataclass
class Outcome:
    """What a raw exchange got: the bytes, the responses parsed from them, whether the server closed
    the connection (FIN or reset) and after how long."""
    raw: bytes
    responses: list
    closed: bool
    elapsed: float
    send_error: Optional[BaseException] = None
    parse_error: Optional[BaseException] = None

    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]

    def __repr__(self) -> str:
        return (f"<Outcome statuses={self.statuses()} closed={self.closed} elapsed={self.elapsed:.2f}s "
                f"send_error={self.send_error!r} parse_error={self.parse_error!r} raw={self.raw[:400]!r}>")


def parse_all(data: bytes) -> tuple[list, Optional[BaseException]]:
    """The complete responses in `data`, and the error that stopped the parse (None: all of it)."""
    conn = harness.offline_connection(data)
    responses = []
    while conn._buf:
        try:
            responses.append(conn.read_response("GET"))
        except (harness.ProtocolError, ConnectionError) as exc:
            return responses, exc
    return responses, None


def read_until_closed(sock: socket.socket, deadline: float, settle: Optional[float] = None) -> tuple[bytes, bool]:
    """Reads until the peer closes (True) or `deadline` passes (False). With `settle`, it stops
    waiting `settle` seconds after the bytes so far hold a complete response (a keep-alive answer:
    there is no close to wait for)."""
    buf = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(buf), False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(256 * KIB)
        except socket.timeout:
            return bytes(buf), False
        except (ConnectionResetError, BrokenPipeError):
            return bytes(buf), True
        if not chunk:
            return bytes(buf), True
        buf += chunk
        if settle is not None and parse_all(bytes(buf))[0]:
            deadline = min(deadline, time.monotonic() + settle)


def attack(address: Address, data: bytes, timeout: float = 4.0, settle: Optional[float] = 1.0) -> Outcome:
    """Sends `data` on a new connection (the server may close before taking all of it), then reads
    until the server closes, `timeout` passes, or `settle` seconds after a complete response."""
    start = time.monotonic()
    sock = address.connect(timeout)
    send_error = None
    try:
        try:
            sock.sendall(data)
        except OSError as exc:
            send_error = exc
        raw, closed = read_until_closed(sock, start + timeout, settle)
    finally:
        sock.close()
    responses, parse_error = parse_all(raw)
    return Outcome(raw, responses, closed, time.monotonic() - start, send_error, parse_error)


# --------------------------------------------------------------------------------------------------
# Good traffic during an attack


class GoodTraffic(threading.Thread):
    """GET PATH?t=goodN in a loop on fresh connections until stop(); each answer must be 200 and
    echo its own token. Records errors and the slowest request."""

    def __init__(self, address: Address, path: str, label: str, timeout: float = 15.0):
        super().__init__(daemon=True)
        self.address, self.path, self.label, self.timeout = address, path, label, timeout
        self.errors: list[str] = []
        self.count = 0
        self.max_latency = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        i = 0
        while not self._stop_event.is_set():
            token = f"good{self.label}{i}"
            i += 1
            started = time.monotonic()
            try:
                with harness.HttpConnection(self.address, timeout=self.timeout) as conn:
                    response = conn.request("GET", f"{self.path}?t={token}", timeout=self.timeout)
                if response.status != 200 or f"query=t={token}\n".encode() not in response.body:
                    self.errors.append(f"{token}: {response!r}")
            except Exception as exc:  # no answer at all
                self.errors.append(f"{token}: {type(exc).__name__}: {exc}")
            self.max_latency = max(self.max_latency, time.monotonic() - started)
            self.count += 1
            self._stop_event.wait(0.02)  # leaves the two cores to the attack and the server

    def stop(self) -> None:
        self._stop_event.set()
        self.join(self.timeout + 5)


# --------------------------------------------------------------------------------------------------
# The cases, for both servers


class HostileCases:
    """The hostile-client tests. A subclass gives: `srv` (the running server: address, pid,
    describe()), `prefix` (the function's route, "" for the watchdog), `read_timeout`, `stall_bound`
    (what a good request may take during an attack beyond 3 x its slowest before it), `log_path`
    (HOSTILE_LOG) and `pid_dir` (HOSTILE_DIR)."""

    # One server per class, shared by its tests and replaced when a test killed it (see setUp).
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="fastfn-hostile-")
        cls.srv = None

    @classmethod
    def tearDownClass(cls):
        if cls.srv is not None:
            cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    srv = None
    prefix = ""
    read_timeout = 0.0
    stall_bound = 0.0
    log_path = ""
    pid_dir = ""

    # -- helpers
    def target(self, query: str, path: str = "") -> str:
        return f"{self.prefix}{path}?{query}" if self.prefix or path else f"/?{query}"

    def function_log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def assert_never_ran(self, token: str) -> None:
        ran = [line for line in self.function_log().splitlines() if token in line]
        self.assertEqual(ran, [], f"requests carrying {token!r} reached the function\n{self.srv.describe()}")

    def assert_ran(self, token: str) -> None:
        wait_until(lambda: token in self.function_log(), 5,
                   message=lambda: f"the function never saw {token!r}\n{self.srv.describe()}")

    @contextlib.contextmanager
    def good_traffic(self, min_count: int = 3):
        """Runs GoodTraffic around the block; after it, the stream must have seen no error and no
        request slower than stall_bound, and the server must still run and serve."""
        stream = GoodTraffic(self.srv.address, self.prefix or "/", self.id().rsplit(".", 1)[-1][:20])
        stream.start()
        self.addCleanup(stream.stop)
        try:
            wait_until(lambda: stream.count >= 5, 20,
                       message=lambda: f"the good stream got no answer before the attack\n{self.srv.describe()}")
            # The slowest of those requests, before any attack, is what this machine takes now: a busy
            # machine makes every request slower, a stall adds the read timeout on top.
            baseline, stream.max_latency = stream.max_latency, 0.0
            yield stream
            wait_until(lambda: stream.count >= min_count, 10,
                       message=lambda: f"the good stream made no progress ({stream.count})\n{self.srv.describe()}")
        finally:
            stream.stop()
        self.assertEqual(stream.errors, [], f"good requests failed during the attack ({len(stream.errors)} of "
                                            f"{stream.count})\n{self.srv.describe()}")
        bound = self.stall_bound + 3 * baseline
        self.assertLess(stream.max_latency, bound,
                        f"a good request took {stream.max_latency:.2f}s during the attack (bound {bound:.2f}s: "
                        f"{self.stall_bound}s plus 3 x {baseline:.2f}s, the slowest before the attack)"
                        f"\n{self.srv.describe()}")
        self.assert_serving()

    def assert_serving(self) -> None:
        self.assertTrue(self.srv.is_running(), f"the server died\n{self.srv.describe()}")
        with harness.HttpConnection(self.srv.address, timeout=10) as conn:
            response = conn.request("GET", self.target("t=alive"), timeout=10)
        self.assertEqual(response.status, 200, f"not serving after the attack: {response!r}\n{self.srv.describe()}")

    def assert_refused(self, outcome: Outcome, statuses, what: str, bound: float = 3.0) -> None:
        """One error response with a status in `statuses` (or none at all when None is among them),
        then the connection closed, all within `bound` seconds."""
        allowed = set(statuses)
        self.assertTrue(outcome.closed, f"{what}: the connection was not closed: {outcome!r}\n{self.srv.describe()}")
        self.assertLess(outcome.elapsed, bound, f"{what}: took {outcome.elapsed:.2f}s: {outcome!r}")
        if not outcome.responses:
            self.assertIn(None, allowed, f"{what}: closed without a response, expected one of {statuses}: "
                                         f"{outcome!r}\n{self.srv.describe()}")
            return
        self.assertEqual(len(outcome.responses), 1, f"{what}: more than one response: {outcome!r}")
        self.assertIn(outcome.responses[0].status, allowed, f"{what}: {outcome!r}\n{self.srv.describe()}")
        self.assertIn("json", outcome.responses[0].headers.get("Content-Type", ""),
                      f"{what}: error bodies are JSON: {outcome!r}")

    def program_pid(self, token: str, timeout: float = 10.0) -> int:
        path = os.path.join(self.pid_dir, f"pid.{token}")
        def read() -> str:
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                return ""
            return text if text.endswith("\n") else ""

        text = wait_until(read, timeout,
                          message=lambda: f"the program of {token} never started\n{self.srv.describe()}")
        return int(text.strip())

    def assert_program_stops(self, pid: int, bound: float, what: str) -> None:
        self.addCleanup(lambda: harness.pid_alive(pid) and os.kill(pid, 9))
        wait_until(lambda: not harness.pid_alive(pid), bound,
                   message=lambda: f"{what}: its program {pid} still runs after {bound}s "
                                   f"({harness.proc_stat(pid)})\n{self.srv.describe()}")
        wait_until(lambda: harness.zombie_count(self.srv.pid) == 0, 5,
                   message=lambda: f"zombies: {harness.zombie_descendants(self.srv.pid)}\n{self.srv.describe()}")

    def head(self, target: str, *headers: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
        lines = [f"{method} {target} {version}", "Host: hostile.test", *headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    # -- request smuggling
    def test_smuggling_shapes_are_refused_and_nothing_is_smuggled(self):
        smuggled = self.head(self.target("t=smuggledA"))
        p = self.target("t=victimA")
        cases = {
            "CL then TE": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
            "TE then CL": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                          b"Content-Length: 40\r\n\r\n0\r\n\r\n" + smuggled,
            "two different CLs": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                 b"Content-Length: 44\r\n\r\n" + smuggled,
            "two equal CLs": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                             b"Content-Length: 3\r\n\r\nabc" + smuggled,
            "CL list": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc" + smuggled,
            "CL with sign": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc" + smuggled,
            "CL overflowing 64 bits": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 18446744073709551619\r\n\r\nabc" + smuggled,
            "TE chunked twice": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
            "TE list": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                       b"0\r\n\r\n" + smuggled,
            "TE not chunked": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
                              b"0\r\n\r\n" + smuggled,
            "TE with space before colon": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                          b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
            "TE folded (obs-fold)": b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n"
                                    b" chunked\r\n\r\n0\r\n\r\n" + smuggled,
        }
        with self.good_traffic():
            for name, data in cases.items():
                with self.subTest(case=name):
                    outcome = attack(self.srv.address, data)
                    # 501 is also right for a transfer coding the server does not implement.
                    self.assert_refused(outcome, {400, 501} if name.startswith("TE") else {400}, name)
            self.assert_never_ran("victimA")
            self.assert_never_ran("smuggledA")

    def test_bad_chunk_sizes_are_refused_and_nothing_is_smuggled(self):
        """The body may already be streaming into the program when the bad chunk arrives, so the
        function may run; what is behind the bad chunk must never be taken as a request."""
        smuggled = self.head(self.target("t=smuggledB"))
        head = ("POST " + self.target("t=victimB") + " HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        cases = {
            "not hex": b"zz\r\nabc\r\n0\r\n\r\n",
            "negative": b"-1\r\nabc\r\n0\r\n\r\n",
            "0x prefix": b"0x3\r\nabc\r\n0\r\n\r\n",
            "empty size": b"\r\nabc\r\n0\r\n\r\n",
            # 2^64 wraps to 0 in an unchecked parser: the body would end there and the rest would
            # be read as the next request.
            "2^64 wraps to 0": b"10000000000000000\r\n\r\n",
            "2^64+3 wraps to 3": b"10000000000000003\r\nabc\r\n0\r\n\r\n",
            "huge size, short data": b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n",
            "data longer than size": b"3\r\nabcdef\r\n0\r\n\r\n",
            "size with space inside": b"1 0\r\nabc\r\n0\r\n\r\n",
        }
        with self.good_traffic():
            for name, body in cases.items():
                with self.subTest(case=name):
                    bound = self.read_timeout + 3
                    outcome = attack(self.srv.address, head + body + smuggled, timeout=bound + 2)
                    # 413 is right for a size past max body; a closed connection without an answer
                    # is what is left once a response has started.
                    self.assert_refused(outcome, {400, 413, None}, name, bound=bound)
                    self.assertNotIn(b"smuggledB", outcome.raw, f"{name}: {outcome!r}")
            self.assert_never_ran("smuggledB")

    def test_obs_fold_and_malformed_field_lines_are_400(self):
        cases = {
            "obs-fold": b"X-A: one\r\n two\r\n",
            "obs-fold with tab": b"X-A: one\r\n\ttwo\r\n",
            "space before colon": b"X-A : one\r\n",
            "leading whitespace on the first field": b" X-A: one\r\n",
            "NUL in a value": b"X-A: o\x00ne\r\n",
            "bare CR in a value": b"X-A: o\rne\r\n",
            "no colon": b"X-A one\r\n",
            "empty name": b": one\r\n",
            "non-token name": b"X(A): one\r\n",
        }
        with self.good_traffic():
            for name, field in cases.items():
                with self.subTest(case=name):
                    data = (f"GET {self.target('t=foldC')} HTTP/1.1\r\n").encode() + field + b"Host: x\r\n\r\n"
                    self.assert_refused(attack(self.srv.address, data), {400}, name)
            self.assert_never_ran("foldC")

    # -- oversized heads
    def test_huge_header_line_is_431(self):
        with self.good_traffic():
            for size in (70 * KIB, 1 * MIB):
                with self.subTest(size=size):
                    data = self.head(self.target("t=hugeD"), "X-Huge: " + "a" * size)
                    self.assert_refused(attack(self.srv.address, data), {431}, f"a {size}-byte header line")
            self.assert_never_ran("hugeD")

    def test_too_many_headers_is_431_and_the_limit_itself_is_served(self):
        """At most max_headers header fields: one more gets 431; exactly the limit is served. The
        gateway's limit is DESIGN.md's 100; the watchdog allows 8 more for the headers a gateway
        adds to a client's 100 (docs/DECISIONS.md)."""
        limit = self.max_headers
        with self.good_traffic():
            fields = [f"X-Field-{i}: {i}" for i in range(limit - 1)]  # + Host
            with harness.HttpConnection(self.srv.address, timeout=10) as conn:
                response = conn.request("GET", self.target("t=hundredE"),
                                        headers=[("Host", "x")] + [tuple(f.split(": ")) for f in fields])
            self.assertEqual(response.status, 200, f"{limit} header fields must be served: {response!r}\n"
                                                   f"{self.srv.describe()}")
            for count in (limit + 1, 1000):
                with self.subTest(count=count):
                    fields = [f"X-Field-{i}: {i}" for i in range(count - 1)]
                    outcome = attack(self.srv.address, self.head(self.target("t=manyE"), *fields))
                    self.assert_refused(outcome, {431}, f"{count} header fields")
            self.assert_never_ran("manyE")

    def test_request_line_too_long_is_refused(self):
        with self.good_traffic():
            data = self.head(self.target("t=longF&pad=" + "a" * (100 * KIB)))
            self.assert_refused(attack(self.srv.address, data), {414, 431}, "a 100 KiB request line")
            self.assert_never_ran("longF")

    def test_ten_mib_header_flood_is_cut_off(self):
        """10 MiB of head, as one line and as many lines, sent as fast as possible: the server answers
        431 or drops the connection without reading it all, and its memory does not grow by it."""
        rss_before = harness.vm_rss_bytes(self.srv.pid)
        with self.good_traffic():
            floods = {
                "one line": self.head(self.target("t=floodG")).rstrip(b"\r\n") + b"\r\nX-Flood: " +
                            b"f" * (10 * MIB) + b"\r\n\r\n",
                "many lines": self.head(self.target("t=floodG")).rstrip(b"\r\n") + b"\r\n" +
                              b"X-Flood: ffffffffffffffffffffffffffffffffffffffffffffffffffffffff\r\n" * (160 * KIB) +
                              b"\r\n",
            }
            for name, data in floods.items():
                with self.subTest(flood=name):
                    self.assertGreaterEqual(len(data), 10 * MIB)
                    outcome = attack(self.srv.address, data, timeout=10)
                    self.assert_refused(outcome, {431, None}, f"a 10 MiB flood ({name})", bound=8)
            self.assert_never_ran("floodG")
        growth = harness.vm_rss_bytes(self.srv.pid) - rss_before
        self.assertLess(growth, 8 * MIB, f"the server's RSS grew by {growth / MIB:.1f} MiB from 10 MiB floods")

    # -- slow clients
    def test_slowloris_and_stalled_bodies_are_closed_at_the_read_timeout(self):
        """Four slowloris clients (a valid head, one byte every 0.3 s: never complete) and two
        clients that stop in the middle of their body, all at once: each is closed (with 408 or
        without an answer) once the read timeout has passed, and not long after."""
        bound = self.read_timeout + 3.0
        results: dict[str, tuple] = {}

        def slowloris(name: str) -> None:
            data = self.head(self.target(f"t=slowH{name}"), "X-Pad: " + "p" * 80, "User-Agent: slowloris")
            start = time.monotonic()
            sock = self.srv.address.connect(bound + 5)
            try:
                for byte in data:
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        break
                    readable, _, _ = select.select([sock], [], [], 0.3)
                    if readable:
                        break
                    if time.monotonic() - start > bound + 3:
                        break
                raw, closed = read_until_closed(sock, start + bound + 5)
            finally:
                sock.close()
            results[f"slowloris {name}"] = (closed, time.monotonic() - start, raw)

        def stalled_body(name: str) -> None:
            head = self.head(self.target(f"t=stallH{name}"), "Content-Length: 1000", method="POST")
            start = time.monotonic()
            sock = self.srv.address.connect(bound + 5)
            try:
                sock.sendall(head + b"x" * 100)  # and never the other 900 bytes
                raw, closed = read_until_closed(sock, start + bound + 5)
            finally:
                sock.close()
            results[f"stalled body {name}"] = (closed, time.monotonic() - start, raw)

        with self.good_traffic(min_count=5):
            threads = [threading.Thread(target=slowloris, args=(str(i),), daemon=True) for i in range(4)]
            threads += [threading.Thread(target=stalled_body, args=(str(i),), daemon=True) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(bound + 15)
        self.assertEqual(len(results), 6, f"clients still running: {sorted(results)}")
        for name, (closed, elapsed, raw) in sorted(results.items()):
            with self.subTest(client=name):
                self.assertTrue(closed, f"{name}: still open after {elapsed:.1f}s (read timeout "
                                        f"{self.read_timeout}s)\n{self.srv.describe()}")
                self.assertLess(elapsed, bound, f"{name}: closed only after {elapsed:.1f}s")
                self.assertGreater(elapsed, self.read_timeout * 0.8,
                                   f"{name}: closed after {elapsed:.1f}s, before the read timeout: {raw[:300]!r}")
                responses, _ = parse_all(raw)
                self.assertTrue(all(r.status in (400, 408) for r in responses),
                                f"{name}: only 408 (or 400) may answer a slow client: {raw[:300]!r}")
        for i in range(4):
            self.assert_never_ran(f"slowH{i}")

    def test_dripping_body_is_served_while_each_byte_comes_within_the_read_timeout(self):
        """The read timeout bounds each wait for body bytes (as nginx's client_body_timeout): a body
        that keeps coming, a byte every 0.3 s, is served even though it takes longer than it."""
        body = b"drip-" + b"d" * 7  # 12 bytes: 3.6 s
        with self.good_traffic():
            conn = harness.HttpConnection(self.srv.address, timeout=30)
            self.addCleanup(conn.close)
            conn.send_raw(self.head(self.target("t=dripI"), f"Content-Length: {len(body)}", method="POST"))
            for byte in body:
                time.sleep(0.3)
                conn.send_raw(bytes([byte]))
            response = conn.read_response("POST", timeout=15)
        self.assertEqual(response.status, 200, f"{response!r}\n{self.srv.describe()}")
        self.assertTrue(response.body.endswith(b"body=" + body), response)

    def test_endless_dripping_body_is_bounded_by_the_exec_timeout(self):
        """A body that trickles forever never trips the read timeout, so the function's timeout
        (--exec-timeout / timeout_ms, 4 s here) must end it: 504, or a closed connection."""
        bound = EXEC_TIMEOUT + 4.0
        with self.good_traffic():
            conn = harness.HttpConnection(self.srv.address, timeout=30)
            self.addCleanup(conn.close)
            conn.send_raw(self.head(self.target("t=endlessJ"), "Content-Length: 100000", method="POST"))
            start = time.monotonic()
            closed = False
            while time.monotonic() - start < bound + 2:
                try:
                    conn.send_raw(b"e")
                except OSError:
                    closed = True
                    break
                readable, _, _ = select.select([conn.sock], [], [], 0.3)
                if readable:
                    break
            raw, closed_now = read_until_closed(conn.sock, time.monotonic() + 5)
            elapsed = time.monotonic() - start
        closed = closed or closed_now
        responses, _ = parse_all(raw)
        self.assertLess(elapsed, bound, f"an endless body ran {elapsed:.1f}s with a {EXEC_TIMEOUT}s timeout: "
                                        f"{raw[:300]!r}\n{self.srv.describe()}")
        self.assertTrue(closed or responses, f"neither answered nor closed: {raw[:300]!r}")
        self.assertTrue(all(r.status == 504 for r in responses), f"expected 504: {raw[:300]!r}")
        self.assertGreater(elapsed, EXEC_TIMEOUT * 0.8, f"ended after {elapsed:.1f}s: {raw[:300]!r}")
        pid = self.program_pid("endlessJ")
        self.assert_program_stops(pid, 5, "the endless body's request")

    # -- vanishing clients
    def test_client_vanishing_mid_body_stops_the_program(self):
        with self.good_traffic():
            sock = self.srv.address.connect(10)
            sock.sendall(self.head(self.target("t=vanishK&mode=sleep"), f"Content-Length: {MAX_BODY}",
                                   method="POST") + b"v" * (256 * KIB))
            pid = self.program_pid("vanishK")
            sock.close()  # 256 KiB of 1 MiB sent
            self.assert_program_stops(pid, EXEC_TIMEOUT * 0.75, "a client that vanished mid-body")

    def test_client_vanishing_mid_response_stops_the_program(self):
        with self.good_traffic():
            sock = self.srv.address.connect(10)
            sock.sendall(self.head(self.target(f"t=vanishL&mode=big&n={2000 * MIB}")))
            got = 0
            while got < 256 * KIB:
                chunk = sock.recv(64 * KIB)
                self.assertTrue(chunk, f"the big response ended early\n{self.srv.describe()}")
                got += len(chunk)
            pid = self.program_pid("vanishL")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()  # a reset, as a client that crashed
            self.assert_program_stops(pid, EXEC_TIMEOUT * 0.75, "a client that vanished mid-response")

    # -- pipelining
    def test_pipelined_requests_are_answered_in_order(self):
        body = b"second-body"
        data = (self.head(self.target("t=pipeM1")) +
                self.head(self.target("t=pipeM2"), f"Content-Length: {len(body)}", method="POST") + body +
                self.head(self.target("t=pipeM3"), method="HEAD") +
                self.head(self.target("t=pipeM4"), "Connection: close"))
        with self.good_traffic():
            conn = harness.HttpConnection(self.srv.address, timeout=15)
            self.addCleanup(conn.close)
            conn.send_raw(data)
            responses = [conn.read_response(method) for method in ("GET", "POST", "HEAD", "GET")]
            self.assertTrue(conn.wait_closed_by_peer(5), "Connection: close on the last request was ignored")
        self.assertEqual([r.status for r in responses], [200, 200, 200, 200], responses)
        for i in (0, 1, 3):
            self.assertIn(f"query=t=pipeM{i + 1}\n".encode(), responses[i].body, f"response {i + 1} out of order: "
                                                                                   f"{responses!r}")
        self.assertTrue(responses[1].body.endswith(b"body=" + body), responses[1])
        self.assertEqual(responses[2].body, b"", "a HEAD response has no body")

    def test_pipelined_request_after_a_malformed_one_is_never_served(self):
        data = (self.head(self.target("t=pipeN1")) +
                f"GET {self.target('t=pipeN2')} HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n".encode() +
                self.head(self.target("t=pipeN3")))
        with self.good_traffic():
            outcome = attack(self.srv.address, data)
        self.assertTrue(outcome.closed, outcome)
        self.assertEqual(outcome.statuses(), [200, 400], outcome)
        self.assertIn(b"query=t=pipeN1\n", outcome.responses[0].body)
        self.assert_never_ran("pipeN2")
        self.assert_never_ran("pipeN3")

    # -- request lines
    def test_invalid_methods_are_400(self):
        target = self.target("t=methodO").encode()
        cases = {
            "parenthesis": b"G(T " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "non-ASCII": b"G\xc3\x89T " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "empty": b" " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "two spaces": b"GET  " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "tab separator": b"GET\t" + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "NUL": b"GE\x00T " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "binary garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + target + b"\r\n\r\n",
        }
        with self.good_traffic():
            for name, data in cases.items():
                with self.subTest(case=name):
                    self.assert_refused(attack(self.srv.address, data), {400}, name)
            self.assert_never_ran("methodO")

    def test_invalid_request_targets_are_refused(self):
        """Only origin-form (/path) and absolute-form (scheme://host/path) name a function; the
        authority-form belongs to CONNECT and asterisk-form to OPTIONS, which a function server does
        not serve. A target a server cannot read as a path must never run the function as "/"."""
        cases = {
            "relative path": b"GET relative?t=targetP HTTP/1.1\r\nHost: x\r\n\r\n",
            "control byte": b"GET /a\x01b?t=targetP HTTP/1.1\r\nHost: x\r\n\r\n",
            "DEL": b"GET /a\x7fb?t=targetP HTTP/1.1\r\nHost: x\r\n\r\n",
            "space in target": b"GET /a b?t=targetP HTTP/1.1\r\nHost: x\r\n\r\n",
            "asterisk with GET": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            "authority-form": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "scheme only": b"GET http:t=targetP HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        with self.good_traffic():
            before = self.function_log().count("\n")
            for name, data in cases.items():
                with self.subTest(case=name):
                    outcome = attack(self.srv.address, data)
                    self.assertTrue(outcome.responses and 400 <= outcome.responses[0].status < 500,
                                    f"{name}: expected a 4xx: {outcome!r}\n{self.srv.describe()}")
                    self.assertTrue(outcome.closed or outcome.responses[0].status != 400, outcome)
            self.assert_never_ran("targetP")
            ran = [line for line in self.function_log().splitlines()[before:] if "good" not in line]
            self.assertEqual(ran, [], f"invalid targets ran the function\n{self.srv.describe()}")

    def test_absolute_form_target_is_served_by_its_path(self):
        with self.good_traffic():
            for scheme in ("http", "https"):
                with self.subTest(scheme=scheme):
                    target = f"{scheme}://other.example:8443{self.prefix}/abs/path?t=absQ{scheme}"
                    outcome = attack(self.srv.address, self.head(target, "Connection: close"))
                    self.assertEqual(outcome.statuses(), [200], f"{outcome!r}\n{self.srv.describe()}")
                    body = outcome.responses[0].body
                    self.assertIn(b"path=/abs/path\n", body, outcome)
                    self.assertIn(f"query=t=absQ{scheme}\n".encode(), body, outcome)

    def test_http10_without_host_is_served_and_closed(self):
        with self.good_traffic():
            data = f"GET {self.target('t=oldR')} HTTP/1.0\r\n\r\n".encode()
            outcome = attack(self.srv.address, data)
            self.assertEqual(outcome.statuses(), [200], f"{outcome!r}\n{self.srv.describe()}")
            self.assertIn(b"query=t=oldR\n", outcome.responses[0].body)
            self.assertTrue(outcome.closed and outcome.elapsed < 3,
                            f"an HTTP/1.0 request without keep-alive must be closed after its answer: {outcome!r}")
            data = f"POST {self.target('t=oldR2')} HTTP/1.0\r\nContent-Length: 4\r\n\r\nold!".encode()
            outcome = attack(self.srv.address, data)
            self.assertEqual(outcome.statuses(), [200], f"{outcome!r}\n{self.srv.describe()}")
            self.assertTrue(outcome.responses[0].body.endswith(b"body=old!"), outcome)

    def test_http11_without_host_or_with_two_hosts_is_400(self):
        """RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, or with more
        than one Host field (the second is how cache poisoning and routing confusion start)."""
        target = self.target("t=hostS").encode()
        cases = {
            "no Host": b"GET " + target + b" HTTP/1.1\r\n\r\n",
            "two Hosts": b"GET " + target + b" HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        }
        with self.good_traffic():
            for name, data in cases.items():
                with self.subTest(case=name):
                    self.assert_refused(attack(self.srv.address, data), {400}, name)
            self.assert_never_ran("hostS")

    def test_unsupported_http_versions_are_refused(self):
        target = self.target("t=versionU").encode()
        with self.good_traffic():
            for version in (b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/11", b"http/1.1"):
                with self.subTest(version=version):
                    data = b"GET " + target + b" " + version + b"\r\nHost: x\r\n\r\n"
                    self.assert_refused(attack(self.srv.address, data), {400, 505}, version.decode())
            self.assert_never_ran("versionU")

    # -- Expect
    def read_interim(self, sock: socket.socket, timeout: float) -> bytes:
        """Bytes up to the end of the first response head (the interim 100 or a final answer)."""
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def test_expect_100_continue_gets_100_then_the_answer(self):
        body = b"continued body"
        with self.good_traffic():
            conn = harness.HttpConnection(self.srv.address, timeout=10)
            self.addCleanup(conn.close)
            conn.send_raw(self.head(self.target("t=expectV"), f"Content-Length: {len(body)}",
                                    "Expect: 100-continue", method="POST"))
            interim = self.read_interim(conn.sock, 5)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 "), f"no 100 Continue before the body: {interim!r}"
                                                                  f"\n{self.srv.describe()}")
            head_end = interim.index(b"\r\n\r\n") + 4
            conn._buf += interim[head_end:]
            conn.send_raw(body)
            response = conn.read_response("POST")
            self.assertEqual(response.status, 200, response)
            self.assertTrue(response.body.endswith(b"body=" + body), response)
            self.assertIn(b"query=t=expectV\n", response.body)
            self.assertEqual(response.body.count(b"HTTP/1.1 100"), 0, "a 100 reached the function's output")
            again = conn.request("GET", self.target("t=expectV2"))  # the connection goes on
            self.assertEqual(again.status, 200, again)

    def test_expect_100_continue_over_max_body_gets_413_without_100(self):
        with self.good_traffic():
            sock = self.srv.address.connect(10)
            self.addCleanup(sock.close)
            sock.sendall(self.head(self.target("t=expectW"), f"Content-Length: {4 * MAX_BODY}",
                                   "Expect: 100-continue", method="POST"))
            start = time.monotonic()
            raw, closed = read_until_closed(sock, start + 5)
            responses, _ = parse_all(raw)
            self.assertFalse(raw.startswith(b"HTTP/1.1 100"), f"100 Continue for a body over the limit: {raw[:300]!r}")
            self.assertEqual([r.status for r in responses], [413], f"{raw[:400]!r}\n{self.srv.describe()}")
            self.assertTrue(closed, "the unread body must not be taken as the next request")
            self.assert_never_ran("expectW")


# --------------------------------------------------------------------------------------------------
# The two servers


class WatchdogHostileTest(HostileCases, harness.WatchdogTestCase):
    """fastfn-watchdog --format cgi on tcp loopback with --read-timeout 2s."""

    prefix = ""
    max_headers = 108
    read_timeout = WATCHDOG_READ_TIMEOUT
    # Half the read timeout, plus the baseline's share (good_traffic): a server held by a slow client
    # makes a good request wait the whole read timeout.
    stall_bound = 1.0

    def setUp(self):
        super().setUp()
        cls = type(self)
        cls.log_path = os.path.join(cls.tmp, "function.log")
        cls.pid_dir = cls.tmp
        if cls.srv is None or not cls.srv.is_running():  # a test that killed it reported that itself
            if cls.srv is not None:
                cls.srv.close()
            cls.srv = harness.Watchdog(
                [str(ECHO)], ["--format", "cgi", "--read-timeout", f"{WATCHDOG_READ_TIMEOUT:g}s",
                              "--exec-timeout", f"{EXEC_TIMEOUT:g}s", "--max-body", str(MAX_BODY)],
                listen="tcp", env={"HOSTILE_LOG": cls.log_path, "HOSTILE_DIR": cls.pid_dir})
            cls.srv.start()
        self._watchdogs.append(cls.srv)


class GatewayHostileTest(HostileCases, GatewayTestCase):
    """fastfn-gateway on tcp loopback over a functions dir with `echo` (echo.sh, 2 daemons). Its read
    timeout is the fixed 10 s."""

    prefix = "/echo"
    max_headers = 100
    read_timeout = GATEWAY_READ_TIMEOUT
    stall_bound = 4.0

    def setUp(self):
        super().setUp()
        cls = type(self)
        cls.log_path = os.path.join(cls.tmp, "function.log")
        cls.pid_dir = os.path.join(cls.tmp, "pids")
        os.makedirs(cls.pid_dir, exist_ok=True)
        if cls.srv is None or not cls.srv.is_running():
            if cls.srv is not None:
                cls.srv.close()
            fns = FunctionsDir(os.path.join(cls.tmp, f"fns{time.monotonic_ns()}"))
            fns.add("echo", {"handler.sh": ECHO},
                    {"daemons": 2, "timeout_ms": int(EXEC_TIMEOUT * 1000), "max_body_bytes": MAX_BODY,
                     "env": {"HOSTILE_LOG": cls.log_path, "HOSTILE_DIR": cls.pid_dir}})
            cls.srv = Gateway(fns, wait_for=["echo"])
            cls.srv.start()
        self._gateways.append(cls.srv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
