#!/usr/bin/env python3
"""Integration tests of `fastfn-watchdog --format http` (DESIGN.md, "The stdio protocol" and "format
http"): a pool of hot handlers scaled like Passenger, the stdio framing, and every failure mode.

Each test starts the real binary (FASTFN_WATCHDOG, default <repo>/build/watchdog/fastfn-watchdog) on a
unix socket in a temp dir with tests/fixtures/hot/hot_handler.py, whose slow routes block until a
file the test creates appears: the tests poll conditions and never guess timings.
Run alone: python3 tests/integration/test_watchdog_http.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import MIB, wait_until  # noqa: E402
from hot_support import (PYTHON, Gate, HotTestCase, hot_fixture, live_children,  # noqa: E402
                         metrics)

NAME = ["--name", "hotfx"]


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_executable(PYTHON, "python3 for the handlers")


def parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """The request line, header fields and body of the bytes a handler read."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
    return lines[0], fields, body


def field_values(fields: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in fields if key.lower() == name.lower()]


class PoolTest(HotTestCase):
    """Scaling: reuse, growth to max-instances, the queue, idle stop, recycling."""

    def test_same_process_serves_consecutive_requests(self):
        wd = self.start_hot(NAME)
        responses = [self.json_of(wd.get("/pid"), wd) for _ in range(5)]
        self.assertEqual(len({r["pid"] for r in responses}), 1, f"{responses}\n{wd.describe()}")
        self.assertEqual([r["served"] for r in responses], [1, 2, 3, 4, 5],
                         "the one process must have served every request")
        with wd.connection() as conn:  # also over one keep-alive connection
            pids = {self.pid_of(conn.request("GET", "/pid"), wd) for _ in range(3)}
        self.assertEqual(pids, {responses[0]["pid"]})
        self.assertEqual(metrics(wd).get("fastfn_watchdog_spawns_total"), 1)

    def test_min_instances_are_warm_and_ready(self):
        wd = self.start_hot([*NAME, "--min-instances", "3", "--max-instances", "4"])
        wait_until(lambda: wd.get("/_/ready").status == 200, 15,
                   message=lambda: f"/_/ready never 200\n{wd.describe()}")
        self.assertEqual(len(live_children(wd)), 3, wd.describe())
        self.assertEqual(metrics(wd).get("fastfn_watchdog_processes"), 3)

    def test_most_recently_used_idle_process_is_taken_first(self):
        wd = self.start_hot([*NAME, "--min-instances", "1", "--max-instances", "2"])
        gate = Gate(self)
        pool = self.executor(2)
        futures = {name: pool.submit(wd.get, gate.path(name), timeout=30) for name in ("a", "b")}
        pids = gate.wait_started(["a", "b"], wd)
        self.assertNotEqual(pids["a"], pids["b"], "two concurrent requests need two processes")
        for busy, name in ((1, "a"), (0, "b")):  # b's process is idle last: the most recently used
            gate.release(name)
            self.assert_status(self.result(futures[name], wd, name), 200, wd)
            self.wait_metric(wd, "fastfn_watchdog_processes", busy, state="busy")
        served = [self.get_pid(wd) for _ in range(3)]
        self.assertEqual(served, [pids["b"]] * 3, f"expected the MRU process {pids['b']}, got {served} "
                                                  f"(a={pids['a']})\n{wd.describe()}")

    def grow(self, concurrent: int, max_instances: int) -> None:
        wd = self.start_hot([*NAME, "--min-instances", "1", "--max-instances", str(max_instances),
                             "--max-queue", "16", "--exec-timeout", "60s"])
        gate = Gate(self)
        pool = self.executor(concurrent)
        names = [f"r{i}" for i in range(concurrent)]
        futures = [pool.submit(wd.get, gate.path(name), timeout=60) for name in names]
        expected = min(concurrent, max_instances)
        wait_until(lambda: len(gate.started()) >= expected, 15,
                   message=lambda: f"{gate.started()} started\n{wd.describe()}")
        m = self.wait_metric(wd, "fastfn_watchdog_requests_queued", concurrent - expected)
        self.assertEqual(len(gate.started()), expected, f"only {expected} can run at once")
        self.assertEqual(len(set(gate.started().values())), expected)
        self.assertEqual(sorted(live_children(wd)), sorted(set(gate.started().values())),
                         f"the watchdog's children are the busy processes\n{wd.describe()}")
        self.assertEqual(m.get("fastfn_watchdog_processes", state="busy"), expected, m.text)
        self.assertEqual(m.get("fastfn_watchdog_processes"), expected, m.text)
        self.assertEqual(m.get("fastfn_watchdog_spawns_total"), expected, m.text)
        gate.release()
        responses = [self.result(f, wd, "gated request") for f in futures]
        for response in responses:
            self.assert_status(response, 200, wd)
        served_by = {self.pid_of(r, wd) for r in responses}
        self.assertEqual(served_by, set(gate.started().values()),
                         "queued requests are served by the same processes")
        self.assertEqual(len(live_children(wd)), expected, wd.describe())
        self.assertEqual(metrics(wd).get("fastfn_watchdog_spawns_total"), expected)

    def test_pool_grows_to_the_number_of_concurrent_requests(self):
        self.grow(concurrent=3, max_instances=5)

    def test_pool_grows_no_further_than_max_instances(self):
        self.grow(concurrent=5, max_instances=3)

    def test_full_queue_answers_429_at_once(self):
        wd = self.start_hot([*NAME, "--min-instances", "1", "--max-instances", "1", "--max-queue", "1",
                             "--exec-timeout", "60s"])
        gate = Gate(self)
        pool = self.executor(2)
        busy = pool.submit(wd.get, gate.path("busy"), timeout=60)
        gate.wait_started(["busy"], wd)
        queued = pool.submit(wd.get, gate.path("queued"), timeout=60)
        self.wait_metric(wd, "fastfn_watchdog_requests_queued", 1)
        ready = wd.get("/_/ready")
        self.assert_status(ready, 503, wd, "/_/ready with a full queue:")
        self.assertTrue(ready.body.strip(), f"/_/ready must say why: {ready!r}")
        rejected = wd.get(gate.path("rejected"), timeout=5)  # a wait would end in a socket timeout
        self.assert_json_error(rejected, 429, wd, "hotfx")
        self.assertNotIn("rejected", gate.started())
        gate.release()
        self.assert_status(self.result(busy, wd, "busy"), 200, wd)
        self.assert_status(self.result(queued, wd, "queued"), 200, wd)
        self.assertEqual(set(gate.started()), {"busy", "queued"})
        self.assertEqual(metrics(wd).get("fastfn_watchdog_requests_total", code="429"), 1)

    def test_queue_wait_is_bounded_by_exec_timeout(self):
        timeout = 2.0
        wd = self.start_hot([*NAME, "--min-instances", "1", "--max-instances", "1", "--max-queue", "4",
                             "--exec-timeout", f"{int(timeout * 1000)}ms"])
        gate = Gate(self)
        pool = self.executor(2)
        busy = pool.submit(wd.get, gate.path("busy"), timeout=30)
        gate.wait_started(["busy"], wd)
        sent = time.monotonic()
        queued = pool.submit(wd.get, gate.path("queued"), timeout=30)
        self.wait_metric(wd, "fastfn_watchdog_requests_queued", 1)
        response = self.result(queued, wd, "queued request")
        elapsed = time.monotonic() - sent
        self.assert_json_error(response, 504, wd, "hotfx")
        # Its exec-timeout counts from its arrival, the queue wait included (not from a dispatch).
        self.assertLess(elapsed, timeout + 1.5, f"the queued request waited {elapsed:.1f}s\n{wd.describe()}")
        self.assert_status(self.result(busy, wd, "busy request"), 504, wd)

    def test_idle_processes_stop_down_to_min_instances(self):
        wd = self.start_hot([*NAME, "--min-instances", "1", "--max-instances", "3",
                             "--idle-timeout", "500ms"])
        gate = Gate(self)
        pool = self.executor(3)
        names = ["r0", "r1", "r2"]
        futures = {name: pool.submit(wd.get, gate.path(name), timeout=30) for name in names}
        pids = gate.wait_started(names, wd)
        self.assertEqual(len(set(pids.values())), 3)
        for name, busy in zip(names, (2, 1, 0)):  # r0 first: r2's process is used last
            gate.release(name)
            self.assert_status(self.result(futures[name], wd, name), 200, wd)
            self.wait_metric(wd, "fastfn_watchdog_processes", busy, state="busy")
        survivors = self.wait_children(wd, 1)
        self.assertEqual(survivors, [pids["r2"]], "the most recently used process is the one kept")
        self.wait_gone([pids["r0"], pids["r1"]], wd)
        m = metrics(wd)
        self.assertEqual(m.get("fastfn_watchdog_kills_total", reason="idle"), 2, m.text)
        self.assertEqual(self.get_pid(wd), pids["r2"])

    def test_scale_to_zero_and_back(self):
        wd = self.start_hot([*NAME, "--min-instances", "0", "--idle-timeout", "300ms"])
        self.assertEqual(live_children(wd), [], "min-instances 0 starts nothing")
        self.assert_status(wd.get("/_/ready"), 200, wd, "ready with nothing warm:")
        first = self.get_pid(wd)
        self.wait_children(wd, 0)
        self.wait_gone([first], wd)
        second = self.get_pid(wd)
        self.assertNotEqual(first, second, "the next request is served by a fresh spawn")
        m = metrics(wd)
        self.assertEqual(m.get("fastfn_watchdog_spawns_total"), 2, m.text)
        self.assertEqual(m.get("fastfn_watchdog_kills_total", reason="idle"), 1, m.text)

    def test_sequential_requests_spawn_no_extra_process(self):
        # A client that sends its next request as soon as it has read a response must find the
        # process back in the pool: nothing else is running, so nothing new may be spawned. Fresh
        # processes (here one every 2 requests) are where a late return to the pool shows.
        wd = self.start_hot([*NAME, "--max-requests", "2"])
        pids = [self.get_pid(wd, settle=False) for _ in range(20)]
        self.assertEqual(pids[0::2], pids[1::2],
                         f"each process serves 2 consecutive requests: {pids}\n{wd.describe(80)}")
        # 10 processes served the 20 requests; the 10th, recycled after the last one, may already
        # have been replaced to keep min-instances 1. A late return to the pool spawns many more.
        self.assertIn(metrics(wd).get("fastfn_watchdog_spawns_total"), (10, 11), wd.describe(80))

    def test_max_requests_recycles_processes(self):
        wd = self.start_hot([*NAME, "--max-requests", "2"])
        pids = [self.get_pid(wd) for _ in range(6)]
        self.assertEqual(pids[0::2], pids[1::2], f"each process serves 2 requests: {pids}")
        self.assertEqual(len(set(pids)), 3, f"a new process every 2 requests: {pids}")
        self.wait_gone(pids[:4], wd)
        self.assertGreaterEqual(metrics(wd).get("fastfn_watchdog_kills_total", reason="max_requests"), 2)


class SignalTest(HotTestCase):
    """SIGHUP recycles gracefully; SIGTERM drains."""

    def test_sighup_recycles_processes_and_lets_in_flight_requests_finish(self):
        wd = self.start_hot([*NAME, "--min-instances", "2", "--max-instances", "4"])
        warm = self.wait_children(wd, 2)
        gate = Gate(self)
        pool = self.executor(1)
        in_flight = pool.submit(wd.get, gate.path("g"), timeout=30)
        busy = gate.wait_started(["g"], wd)["g"]
        idle = next(pid for pid in warm if pid != busy)
        wd.send_signal(signal.SIGHUP)
        self.wait_log(wd, r"recycl")
        fresh = self.get_pid(wd, settle=False)
        self.assertNotIn(fresh, warm, f"after SIGHUP a new request goes to a fresh process\n{wd.describe()}")
        self.wait_gone([idle], wd)
        self.assertTrue(harness.pid_alive(busy), "the busy process finishes its request first")
        gate.release()
        response = self.result(in_flight, wd, "in-flight request")
        self.assertEqual(self.pid_of(response, wd), busy)
        self.wait_gone([busy], wd)
        self.assertFalse(set(live_children(wd)) & set(warm))
        self.assertNotIn(self.get_pid(wd), warm)
        self.assertEqual(metrics(wd).get("fastfn_watchdog_kills_total", reason="recycle"), 2)

    def test_sigterm_drains_in_flight_requests_then_exits(self):
        wd = self.start_hot([*NAME, "--min-instances", "2", "--shutdown-timeout", "20s"])
        warm = self.wait_children(wd, 2)
        gate = Gate(self)
        pool = self.executor(1)
        in_flight = pool.submit(wd.get, gate.path("g"), timeout=30)
        gate.wait_started(["g"], wd)
        wd.send_signal(signal.SIGTERM)
        self.wait_log(wd, r"stopping signal")
        self.assertTrue(wd.is_running(), f"it must wait for the in-flight request\n{wd.describe()}")
        wait_until(lambda: not wd.address.accepts_connections(), 10,
                   message=lambda: f"still accepting after SIGTERM\n{wd.describe()}")
        gate.release()
        self.assert_status(self.result(in_flight, wd, "in-flight request"), 200, wd)
        self.assertEqual(wd.wait(15), 0, wd.describe())
        self.wait_gone(warm, wd)
        self.assertFalse(os.path.exists(wd.address.path), "the unix socket is removed")


class FailureTest(HotTestCase):
    """Handlers that exit, print garbage, hang or crash at start; clients that leave."""

    def broken_request(self, path: str, status: int, reason: str, options=()) -> tuple:
        """A process that served a request fine, then `path` on it: the client gets `status`, that
        process is stopped (kills_total{reason}), and the next request gets a fresh process."""
        wd = self.start_hot([*NAME, *options])
        before = self.get_pid(wd)
        response = wd.get(path, timeout=30)
        self.assert_json_error(response, status, wd, "hotfx")
        self.wait_gone([before], wd)
        after = self.get_pid(wd)
        self.assertNotEqual(before, after, f"a fresh process after {path}\n{wd.describe()}")
        self.assertEqual(metrics(wd).get("fastfn_watchdog_kills_total", reason=reason), 1,
                         f"kills_total{{reason={reason}}}\n{wd.describe()}")
        self.assert_status(wd.get("/_/health"), 200, wd, "one broken request is no crash loop:")
        return wd, before

    def test_handler_exiting_mid_request_gives_502_and_a_fresh_process(self):
        for path in ("/exit", "/exit-partial"):
            with self.subTest(path=path):
                self.broken_request(path, 502, "exited")

    def assert_protocol_logged(self, wd: harness.Watchdog, pid: int, first_bytes: str) -> None:
        line = self.wait_log(wd, rf"handler broke the protocol[^\n]*pid={pid}[^\n]*").group(0)
        self.assertRegex(line, r"first[_ ]bytes[=:]", f"the log shows the first bytes: {line}")
        self.assertIn(first_bytes, line)

    def test_garbage_on_stdout_gives_502_and_the_process_is_replaced(self):
        wd, pid = self.broken_request("/garbage", 502, "protocol")
        self.assert_protocol_logged(wd, pid, "this is not http")

    def test_response_without_length_gives_502_and_the_process_is_replaced(self):
        wd, pid = self.broken_request("/nolength", 502, "protocol")
        self.assert_protocol_logged(wd, pid, "HTTP/1.1 200 OK")

    def test_bytes_after_the_response_are_a_protocol_error(self):
        wd, pid = self.broken_request("/trailing-garbage", 502, "protocol")
        self.assert_protocol_logged(wd, pid, "stray bytes")

    def test_hang_gives_504_at_exec_timeout_and_the_process_group_is_killed(self):
        wd = self.start_hot([*NAME, "--exec-timeout", "1s"])
        gate = Gate(self)
        before = self.get_pid(wd)
        response = wd.get(f"/hang?dir={gate.dir}", timeout=15)
        self.assert_json_error(response, 504, wd, "hotfx")
        grandchild = int(Path(gate.file(f"grandchild.{before}")).read_text())
        self.wait_gone([before, grandchild], wd)
        self.assertNotEqual(self.get_pid(wd), before)
        self.assertEqual(metrics(wd).get("fastfn_watchdog_kills_total", reason="timeout"), 1)

    def test_crash_at_start_backs_off_reports_unhealthy_and_recovers(self):
        workdir = self.make_tempdir()
        script = os.path.join(workdir, "handler.py")
        harness.write_atomic(script, b"import sys\nsys.exit('boom: the handler is broken')\n")
        wd = self.start_hot([*NAME, "--exec-timeout", "30s"], command=[PYTHON, script],
                            wait_healthy=False)
        wait_until(wd.address.accepts_connections, 10, message=lambda: wd.describe())
        wait_until(lambda: wd.get("/_/health").status == 503, 15,
                   message=lambda: f"/_/health never 503\n{wd.describe()}")
        health = self.json_of(wd.get("/_/health"), wd, 503)
        self.assertEqual(health.get("status"), "unavailable", health)
        self.assertTrue(health.get("reason"), f"health must give a reason: {health}")
        self.assert_status(wd.get("/_/ready"), 503, wd)
        rejected = wd.get("/pid", timeout=5)  # at once: waiting would be a socket timeout
        # 503 "keeps failing", or 502 when it met a probe process alive for the moment before its exit.
        self.assertIn(rejected.status, (502, 503), f"{rejected!r}\n{wd.describe()}")
        self.assert_json_error(rejected, rejected.status, wd, "hotfx")
        self.wait_log(wd, r"backoff_ms=800", timeout=20)
        backoffs = [int(v) for v in re.findall(r"backoff_ms=(\d+)", wd.log())]
        self.assertEqual(backoffs[:4], [100, 200, 400, 800], f"exponential backoff\n{wd.describe()}")
        self.assertLessEqual(metrics(wd).get("fastfn_watchdog_spawns_total"), len(backoffs) + 1,
                             "no spawn without a backoff in between")
        self.assertRegex(wd.log(), r"\[fn\] hotfx pid=\d+ [^\n]*boom: the handler is broken")
        # Fix the file: the next spawn (the probe) stays up, and the first request it answers ends the
        # crash loop at once, well inside the startup window a process idling would need.
        harness.write_atomic(script, (f"import os, runpy\nopen(os.path.join({workdir!r}, f'up.{{os.getpid()}}'), 'w')\n"
                                      f"runpy.run_path({hot_fixture('hot_handler.py')!r}, run_name='__main__')\n").encode())
        probe = wait_until(lambda: [int(n[3:]) for n in os.listdir(workdir) if n.startswith("up.")], 20,
                           message=lambda: f"no probe process started\n{wd.describe()}")
        self.assertEqual(self.pid_of(wd.get("/pid", timeout=15), wd), probe[0], "the probe takes the request")
        self.assert_status(wd.get("/_/health"), 200, wd, "after the probe's answer:")
        self.assert_status(wd.get("/_/ready"), 200, wd, "after recovery:")

    def abandon_gated_request(self, wd: harness.Watchdog, gate: Gate) -> int:
        """Sends a gated request, waits until a handler has it, closes the connection: its pid."""
        conn = wd.connection()
        conn.send_raw(f"GET {gate.path('gone')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        pid = gate.wait_started(["gone"], wd)["gone"]
        conn.close()
        return pid

    def test_client_disconnect_mid_request(self):
        wd = self.start_hot([*NAME, "--exec-timeout", "60s", "--max-instances", "2"])
        gate = Gate(self)
        pid = self.abandon_gated_request(wd, gate)
        self.assertNotEqual(self.get_pid(wd, settle=False), pid, "the next request works meanwhile")
        gate.release()
        # The abandoned exchange ends: nothing stays busy or in flight, and the pool serves on.
        # The process is released before the request's thread leaves the server: poll both.
        self.wait_metric(wd, "fastfn_watchdog_processes", 0, state="busy")
        m = self.wait_metric(wd, "fastfn_watchdog_requests_in_flight", 0)
        self.assertEqual(m.get("fastfn_watchdog_processes", state="busy"), 0, m.text)
        self.assertEqual(m.get("fastfn_watchdog_requests_queued"), 0, m.text)
        for _ in range(3):
            self.get_pid(wd)
        self.assert_status(wd.get("/_/health"), 200, wd)
        wait_until(lambda: harness.zombie_count(wd.pid) == 0, 10,
                   message=lambda: f"zombies: {harness.zombie_descendants(wd.pid)}\n{wd.describe()}")

    def test_client_gone_stops_its_handler(self):
        # The handler works for nobody once its client left: it is stopped (kills_total{reason=
        # client_gone}) instead of holding a process until it ends or reaches the exec-timeout.
        wd = self.start_hot([*NAME, "--exec-timeout", "60s"])
        gate = Gate(self)
        pid = self.abandon_gated_request(wd, gate)
        self.wait_gone([pid], wd, timeout=15)  # the gate stays closed: only the watchdog can end it
        self.assertEqual(metrics(wd).get("fastfn_watchdog_kills_total", reason="client_gone"), 1)
        self.assertNotEqual(self.get_pid(wd), pid)

    def test_no_zombies_no_leaked_fds_no_orphans_after_failures(self):
        wd = self.start_hot([*NAME, "--exec-timeout", "1s", "--max-instances", "2",
                             "--idle-timeout", "500ms"])
        gate = Gate(self)
        self.get_pid(wd)
        baseline = harness.fd_count(wd.pid)
        seen = set(live_children(wd))
        for path in ("/exit", "/exit-partial", "/garbage", "/nolength", "/trailing-garbage",
                     f"/hang?dir={gate.dir}"):
            seen.add(self.get_pid(wd))  # a success first: each failure hits a proven process
            status = 504 if path.startswith("/hang") else 502
            self.assert_status(wd.get(path, timeout=15), status, wd, path)
        seen.add(self.abandon_gated_request(wd, gate))
        gate.release()
        grandchildren = [int(Path(gate.file(n)).read_text()) for n in os.listdir(gate.dir)
                         if n.startswith("grandchild.")]
        self.assertTrue(grandchildren)
        seen.add(self.get_pid(wd))
        survivor = self.wait_children(wd, 1)[0]
        self.wait_gone([p for p in seen | set(grandchildren) if p != survivor], wd)
        wait_until(lambda: harness.zombie_count(wd.pid) == 0, 10,
                   message=lambda: f"zombies: {harness.zombie_descendants(wd.pid)}\n{wd.describe()}")
        wait_until(lambda: harness.fd_count(wd.pid) <= baseline, 10,
                   message=lambda: f"fds {harness.fd_count(wd.pid)} > baseline {baseline}: "
                                   f"{harness.fd_targets(wd.pid)}\n{wd.describe()}")
        # Orphans: live processes of the watchdog's session (its handlers' groups included) besides
        # its one handler. (A zombie reparented to init is init's to reap, not a leak.)
        def others() -> list:
            return [s for s in harness.all_proc_stats()
                    if s.session == wd.pid and s.pid not in (wd.pid, survivor) and s.state != "Z"]
        wait_until(lambda: not others(), 10,
                   message=lambda: f"orphans: {others()}\n{wd.describe(80)}")
        self.assert_status(wd.get("/pid"), 200, wd, "it still serves:")


class ProtocolTest(HotTestCase):
    """The stdio framing: what the handler reads, what the client gets."""

    def test_chunked_response_is_streamed(self):
        wd = self.start_hot(NAME)
        gate = Gate(self)
        first_chunk = threading.Event()
        seen_before_release = []

        def on_body(data: bytes) -> None:
            if not first_chunk.is_set():
                seen_before_release.append((data, os.path.exists(gate.file("release"))))
                first_chunk.set()

        pool = self.executor(1)
        future = pool.submit(wd.get, f"/chunked?dir={gate.dir}", timeout=30, on_body=on_body)
        self.assertTrue(first_chunk.wait(15), f"the first chunk never arrived\n{wd.describe()}")
        gate.release()
        response = self.result(future, wd, "chunked")
        self.assert_status(response, 200, wd)
        self.assertTrue(response.chunked, f"streamed chunked: {response!r}")
        self.assertEqual(response.body_length, len(b"first\nsecond\n"))
        self.assertEqual(seen_before_release[0], (b"first\n", False),
                         "the client got the first chunk before the handler wrote the rest")

    def raw_request(self, wd, method="GET", path="/raw", via=None, **kwargs) -> tuple:
        """What the handler read for this request (line, fields, body) and the response; `via` is a
        keep-alive connection to use instead of a new one."""
        response = (via or wd).request(method, path, **kwargs)
        self.assert_status(response, 200, wd)
        return (*parse_head(response.body), response)

    def test_request_head_seen_by_the_handler(self):
        exec_timeout_ms = 60_000
        wd = self.start_hot([*NAME, "--exec-timeout", "60s"])
        headers = [("X-Fn-Request-Id", "client-id-42"), ("Connection", "keep-alive, X-Private"),
                   ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Upgrade", "websocket"),
                   ("Proxy-Authorization", "Basic c2VjcmV0"), ("Proxy-Connection", "keep-alive"),
                   ("X-Private", "hop"), ("X-Fn-Deadline-Ms", "1"), ("X-Custom", "kept")]
        now_ms = time.time() * 1000
        line, fields, body, response = self.raw_request(wd, path="/raw?a=1&b=two%20words",
                                                        headers=headers)
        self.assertEqual(line, "GET /raw?a=1&b=two%20words HTTP/1.1", "the original target")
        self.assertEqual(field_values(fields, "Content-Length"), ["0"], f"always present: {fields}")
        self.assertEqual(field_values(fields, "X-Fn-Request-Id"), ["client-id-42"], fields)
        self.assertEqual(response.headers.get("X-Fn-Request-Id"), "client-id-42")
        deadlines = field_values(fields, "X-Fn-Deadline-Ms")
        self.assertEqual(len(deadlines), 1, fields)
        self.assertLess(abs(int(deadlines[0]) - (now_ms + exec_timeout_ms)), 5000,
                        f"deadline {deadlines[0]} vs now+exec-timeout {now_ms + exec_timeout_ms:.0f}")
        for hop in ("Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization",
                    "Proxy-Connection", "Transfer-Encoding", "X-Private"):
            self.assertEqual(field_values(fields, hop), [], f"{hop} is hop-by-hop: {fields}")
        self.assertEqual(field_values(fields, "X-Custom"), ["kept"])
        self.assertEqual(body, b"")

    def test_generated_request_id_reaches_handler_and_client(self):
        wd = self.start_hot(NAME)
        ids = set()
        for _ in range(2):
            _, fields, _, response = self.raw_request(wd)
            seen = field_values(fields, "X-Fn-Request-Id")
            self.assertEqual(len(seen), 1, fields)
            self.assertTrue(seen[0])
            self.assertEqual(response.headers.get("X-Fn-Request-Id"), seen[0])
            ids.add(seen[0])
        self.assertEqual(len(ids), 2, "each request gets its own id")

    def test_request_bodies_arrive_with_content_length(self):
        wd = self.start_hot(NAME)
        conn = wd.connection()
        self.addCleanup(conn.close)
        for body in (b"hello", [b"abc", b"", b"defg"]):  # a Content-Length body, then a chunked one
            with self.subTest(chunked=not isinstance(body, bytes)):
                line, fields, received, _ = self.raw_request(wd, "POST", "/raw", via=conn, body=body)
                expected = b"hello" if isinstance(body, bytes) else b"abcdefg"
                self.assertEqual(line, "POST /raw HTTP/1.1")
                self.assertEqual(field_values(fields, "Content-Length"), [str(len(expected))], fields)
                self.assertEqual(field_values(fields, "Transfer-Encoding"), [], fields)
                self.assertEqual(received, expected)
        self.assertEqual(len(live_children(wd)), 1, "the stream stayed in step")
        self.assertEqual(metrics(wd).get("fastfn_watchdog_kills_total"), 0)

    def test_large_body_echoed_intact(self):
        wd = self.start_hot(NAME)
        body = os.urandom(5 * MIB)
        response = wd.post("/echo", body, timeout=60)
        self.assert_status(response, 200, wd)
        self.assertEqual(len(response.body), len(body))
        self.assertEqual(hashlib.sha256(response.body).hexdigest(), hashlib.sha256(body).hexdigest())
        self.assert_status(wd.get("/pid"), 200, wd, "after the large body:")

    def test_bare_lf_response_is_accepted(self):
        wd = self.start_hot(NAME)
        pid = self.get_pid(wd)
        response = wd.get("/bare-lf")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"lf\n")
        self.settle(wd)
        self.assertEqual(self.get_pid(wd), pid, "the process stays in service")

    def stderr_request(self) -> tuple:
        wd = self.start_hot(NAME)
        response = wd.get("/stderr?tag=T7", headers={"X-Fn-Request-Id": "stderr-req-1"})
        pid = self.json_of(response, wd)["pid"]
        for i in (1, 2, 3):
            self.wait_log(wd, rf"info \[fn\] hotfx pid={pid} [^\n]*: T7 line {i}\n")
        return wd, pid

    def test_stderr_lines_are_logged_with_name_and_pid(self):
        self.stderr_request()

    def test_stderr_lines_carry_the_request_id(self):
        wd, pid = self.stderr_request()
        lines = re.findall(rf"\[fn\] hotfx pid={pid} [^\n]*T7 line \d", wd.log())
        for line in lines:
            self.assertIn("request_id=stderr-req-1:", line,
                          f"a line written during the request names it\n{wd.describe()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
