#!/usr/bin/env python3
"""Issue 14, "The parser and the log" (items 12-14), against the real fastfn-watchdog.

- Item 12: a request head that trickles in a byte at a time is parsed incrementally: its cost in the
  watchdog's CPU time (utime + stime from /proc/PID/stat, not wall time) per byte does not grow with
  the head, as it does when the whole buffer is parsed again after every read (1-1.7 s for 64 KiB on
  the baseline, of which about 0.3 s are the 64 Ki wakeups themselves).
- Item 13: an HTTP/1.0 request with Transfer-Encoding: chunked is decoded, and then its connection
  closes (RFC 9112 6.1); a chunk size over --max-body (or 2^64-1, or too large for 64 bits) is a 413
  JSON error at once, not a silent close when the read timeout ends.
- Item 14: a function's stderr reaches the log with control characters escaped (no forged lines, no
  terminal escapes) and capped per request and per process per second, saying how much was dropped;
  for format cgi and format http.

Run alone: FASTFN_WATCHDOG=... python3 tests/integration/test_isolation_parser.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import contextlib  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import termios  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import KIB, MIB, wait_until  # noqa: E402
import hot_support  # noqa: E402

CGI_NOISE = str(harness.CGI_FIXTURES_DIR / "stderr_noise.sh")
HOT_NOISE = [hot_support.PYTHON, str(harness.FIXTURES_DIR / "hot" / "stderr_noise.py")]
ECHO = str(harness.FIXTURES_DIR / "hostile" / "echo.sh")

FLOOD = 200 * MIB  # stderr bytes one request writes (the 10G, bounded for the test)
REQUEST_CAP = 1 * MIB  # what one request may log (docs/DECISIONS.md)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    for path in (CGI_NOISE, HOT_NOISE[1], ECHO):
        harness.check_executable(path, "fixture")


def cpu_seconds(pid: int) -> float:
    """The process's own CPU time so far (all its threads, not its children): the scheduler's
    nanosecond count (/proc/PID/task/TID/schedstat) where there is one, else utime + stime from
    /proc/PID/stat, which counts in ticks (10 ms)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        if total > 0:
            return total / 1e9
    except (FileNotFoundError, ProcessLookupError):  # a thread that just ended: use the ticks
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14 and 15


def pin_to_one_cpu(pid: int) -> None:
    """Runs every thread of the process (and the threads they start) on one CPU, so that the two
    connections of a comparison are served under the same conditions."""
    cpu = min(os.sched_getaffinity(pid))
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), {cpu})


def send_queue(sock: socket.socket) -> int:
    """Bytes sent on a unix socket that its peer has not read yet (SIOCOUTQ)."""
    queued = bytearray(4)
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)
    return struct.unpack("i", queued)[0]


def send_bytewise(sock: socket.socket, data: bytes) -> None:
    """Sends `data` a byte at a time, each once the peer has read the one before."""
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        while send_queue(sock) != 0:
            os.sched_yield()


def recv_until_close(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False
        sock.settimeout(left)
        try:
            piece = sock.recv(64 * KIB)
        except socket.timeout:
            return bytes(data), False
        except ConnectionResetError:
            return bytes(data), True
        if not piece:
            return bytes(data), True
        data += piece


def recv_response(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Bytes until one complete response (head plus its Content-Length body) or close, and when."""
    started = time.monotonic()
    deadline = started + timeout
    data = bytearray()
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            match = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
            if match and len(data) >= end + 4 + int(match.group(1)):
                return bytes(data), time.monotonic() - started
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), time.monotonic() - started
        sock.settimeout(left)
        try:
            piece = sock.recv(64 * KIB)
        except (socket.timeout, ConnectionResetError):
            piece = b""
        if not piece:
            return bytes(data), time.monotonic() - started
        data += piece


class ParserTest(harness.WatchdogTestCase):
    def test_item12_head_sent_a_byte_at_a_time_is_parsed_incrementally(self):
        """Each byte is sent once the watchdog has read the one before (the socket's send queue is
        empty), so every byte is a read of its own: the worst case. Every read costs a wakeup (a
        few microseconds of kernel time, whatever the parser does); parsing the whole buffer again
        after every read adds a cost that grows with the buffer. Two connections trickle the same
        64 KiB head: one its first 16 KiB, the other its last 16 KiB (the 48 KiB before sent at
        once), in alternating blocks, with the watchdog on one CPU, so that whatever else the
        machine does weighs on both alike.
        Per byte, the second must cost what the first does; parsed again from its start after every
        read (the baseline), it costs about three times as much."""
        wd = self.start_watchdog([ECHO], ["--format", "cgi", "--read-timeout", "120s"])
        start_line = "GET /?t=trickle HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        lines = [f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(63)]
        room = 64 * KIB - 16 - len(start_line) - sum(map(len, lines)) - 2  # within the default limit
        head = (start_line + "".join(lines) + f"X-Last: {'b' * room}\r\n\r\n").encode()
        self.assertTrue(63 * KIB < len(head) <= 64 * KIB, len(head))
        self.assertEqual(wd.get("/?t=warm").status, 200, wd.describe())  # threads and buffers exist
        pin_to_one_cpu(wd.pid)
        part, block = 16 * KIB, 512
        tail = len(head) - part
        with wd.address.connect(60) as small, wd.address.connect(60) as large:
            large.sendall(head[:tail])
            wait_until(lambda: send_queue(large) == 0, 30, message=wd.describe)
            cost = {"small": 0.0, "large": 0.0}
            for offset in range(0, part, block):
                for name, sock, data in (("small", small, head[offset:offset + block]),
                                         ("large", large, head[tail + offset:tail + offset + block])):
                    before = cpu_seconds(wd.pid)
                    send_bytewise(sock, data)
                    cost[name] += cpu_seconds(wd.pid) - before
            small.sendall(head[part:])
            answers = [recv_until_close(sock, 60)[0] for sock in (small, large)]
        for data in answers:
            responses = harness.parse_responses(data)
            self.assertEqual([r.status for r in responses], [200], f"{data[:300]!r}\n{wd.describe()}")
            self.assertIn(b"query=t=trickle", responses[0].body)
        report = (f"CPU a byte of a {len(head)}-byte head sent a byte at a time: "
                  f"{cost['small'] / part * 1e6:.1f} us within its first {part} bytes, "
                  f"{cost['large'] / part * 1e6:.1f} us within its last {part}")
        print(f"\n{report}", file=sys.stderr)
        self.assertLess(cost["large"], 1.6 * cost["small"], report)

    def chunked_server(self, *options: str) -> harness.Watchdog:
        return self.start_watchdog([CGI_NOISE], ["--format", "cgi", *options])

    def test_item13_http10_chunked_closes_and_oversized_chunk_is_413(self):
        wd = self.chunked_server("--max-body", "1MiB", "--read-timeout", "20s")
        with self.subTest("HTTP/1.0 with chunked: decoded, then the connection closes"):
            request = (b"POST /?mode=read HTTP/1.0\r\nConnection: keep-alive\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n4\r\nold!\r\n3\r\n 10\r\n0\r\n\r\n")
            behind = b"GET /?mode=read&t=behind HTTP/1.1\r\nHost: x\r\n\r\n"
            with wd.address.connect(30) as sock:
                sock.sendall(request + behind)
                data, closed = recv_until_close(sock, 15)
            responses = harness.parse_responses(data)
            self.assertEqual([r.status for r in responses], [200],
                             f"one answer, nothing read behind the chunked 1.0 request: {data!r}")
            self.assertEqual(responses[0].body, b"read 7\n", data)
            self.assertEqual(responses[0].headers.get("Connection", "").lower(), "close", data)
            self.assertTrue(closed, f"the connection must close after the answer: {data!r}")
        cases = {
            "a chunk over max-body": b"200000\r\n",
            "2^64-1": b"ffffffffffffffff\r\n",
            "too large for 64 bits": b"10000000000000000\r\n",
            "max-body reached in the second chunk": b"80000\r\n" + b"x" * (512 * KIB) + b"\r\n80001\r\n",
        }
        for name, body in cases.items():
            with self.subTest(name):
                head = b"POST /?mode=read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                with wd.address.connect(30) as sock:
                    sock.sendall(head + body + b"abc")  # and then nothing: the client waits
                    data, elapsed = recv_response(sock, 30)
                responses = harness.parse_responses(data) if data else []
                self.assertEqual([r.status for r in responses], [413],
                                 f"{name}: {data[:300]!r} after {elapsed:.1f}s\n{wd.describe()}")
                self.assertLess(elapsed, 10, f"{name}: the 413 must not wait for the read timeout (20 s)")
                self.assertIn("json", responses[0].headers.get("Content-Type", ""))
                error = json.loads(responses[0].body)
                self.assertIn("error", error)
                self.assertEqual(error.get("request_id"), responses[0].headers.get("X-Fn-Request-Id"))
        self.assertEqual(wd.get("/?mode=read").status, 200, "the watchdog still serves")


class StderrLogTest(harness.WatchdogTestCase):
    def start_format(self, fmt: str, *options: str) -> harness.Watchdog:
        if fmt == "cgi":
            return self.start_watchdog([CGI_NOISE], ["--format", "cgi", "--exec-timeout", "120s", *options])
        return self.start_watchdog(HOT_NOISE, ["--format", "http", "--exec-timeout", "120s",
                                               "--min-instances", "1", "--max-instances", "1", *options])

    def flood_path(self, fmt: str, n: int) -> str:
        return f"/?mode=flood&n={n}" if fmt == "cgi" else f"/flood?n={n}"

    def forge_path(self, fmt: str) -> str:
        return "/?mode=forge" if fmt == "cgi" else "/forge"

    def log_bytes(self, wd: harness.Watchdog) -> bytes:
        with open(wd._log_path, "rb") as f:
            return f.read()

    def check_flood(self, fmt: str) -> None:
        wd = self.start_format(fmt)
        response = wd.get(self.flood_path(fmt, FLOOD), timeout=120)
        self.assertEqual(response.status, 200, f"{response!r}\n{wd.describe()}")
        if fmt == "http":  # a hot process's request ends when its next one starts
            self.assertEqual(wd.get("/line?tag=next").status, 200)
        pattern = re.compile(rb"stderr truncated: dropped (\d+) bytes")
        wait_until(lambda: pattern.search(self.log_bytes(wd)), 30,
                   message=lambda: f"no 'stderr truncated: dropped N bytes' line\n{wd.describe()}")
        log = self.log_bytes(wd)
        dropped = int(pattern.search(log).group(1))
        self.assertLess(len(log), 4 * REQUEST_CAP, f"{FLOOD} bytes of stderr made a {len(log)}-byte log")
        self.assertGreater(dropped, FLOOD - 2 * REQUEST_CAP, f"dropped only {dropped} of {FLOOD}")
        self.assertLessEqual(dropped, FLOOD)
        self.assertIn(b"stderr truncated: over 1048576 bytes of log for this request", log)
        self.assertIn(b"\\x00\\x00\\x00", log, "the NULs that were logged are escaped")
        self.assertNotIn(b"\x00", log)

    def check_forge(self, fmt: str) -> None:
        wd = self.start_format(fmt)
        self.assertEqual(wd.get(self.forge_path(fmt)).status, 200)
        wait_until(lambda: b"forge-nul" in self.log_bytes(wd), 10, message=wd.describe)
        log = self.log_bytes(wd)
        self.assertIn(b"forge-cr ok\\r2026-01-01T00:00:00.000 info [http] FORGED access line", log)
        self.assertIn(b"forge-esc \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07", log)
        self.assertIn(b"forge-nul a\\x00b", log)
        for raw in (b"\r", b"\x1b", b"\x00", b"\x07"):
            self.assertNotIn(raw, log, f"{raw!r} reached the log raw")
        lines = log.split(b"\n")
        self.assertFalse([line for line in lines if b"FORGED" in line and b"[fn]" not in line],
                         "every line with the forged text is one of the function's own")

    def test_item14_stderr_is_escaped_and_capped(self):
        for fmt in ("cgi", "http"):
            with self.subTest(format=fmt, what="escaped"):
                self.check_forge(fmt)
            with self.subTest(format=fmt, what="capped per request"):
                self.check_flood(fmt)

    def test_item14_a_hot_process_log_rate_is_capped(self):
        """Many requests each under the per-request cap: the process's rate cap (1 MiB a second
        after a 1 MiB burst) bounds the log, relative to the time the requests took."""
        wd = self.start_format("http")
        piece = 900 * KIB
        started = time.monotonic()
        for _ in range(20):
            self.assertEqual(wd.get(f"/text?n={piece}", timeout=60).status, 200)
        probes = iter(range(1_000_000))

        def probe_logged() -> bool:
            # Lines pass again once the bucket has refilled; the probe's request also ends the last
            # flood's, whose drop is then said.
            tag = f"end{next(probes)}"
            self.assertEqual(wd.get(f"/line?tag={tag}").status, 200)
            try:
                return wait_until(lambda: f"line {tag}\n".encode() in self.log_bytes(wd), 1)
            except AssertionError:  # dropped: the bucket was still empty
                return False
        wait_until(probe_logged, 60, interval=0.2, message=wd.describe)
        elapsed = time.monotonic() - started
        log = self.log_bytes(wd)
        bound = MIB + elapsed * MIB + 256 * KIB  # burst + rate + the notes and other lines
        # 20 x 900 KiB of lines is 18 MB; a fast machine logs about 2 MiB of it.
        self.assertLess(len(log), bound, f"{len(log)} bytes of log in {elapsed:.1f}s")
        self.assertIn(b"stderr rate limited: dropped", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
