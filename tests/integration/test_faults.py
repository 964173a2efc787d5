#!/usr/bin/env python3
"""Fault tests (issue 6, "Hardening"): kill -9 during a stream of requests, driven by count: a kill
after every few dozen answered requests, the stream running until its kills are made, so a fast and a
busy machine see the same test.

- The gateway over a hot Python function (format http, 3 daemons) and a CGI function (echo.sh,
  2 daemons): its watchdogs and the hot handlers below them are SIGKILLed at random while client
  threads send requests.
- A standalone watchdog --format http: its hot handlers are SIGKILLed at random the same way.

Every request carries a unique token that the function echoes (in the target and in the body), so an
answer that belongs to another request is caught. Every request must get either the right answer or a
clean 502/503 with a JSON error body; none may hang (client timeouts). Afterwards: no zombie, no leaked
fd, no orphan process (a process carrying the test's environment marker that is not below the server),
and the gateway's /_fn/health back to all up.

The kill schedule comes from a seeded random generator; the seed is printed, and FASTFN_FAULT_SEED=N
replays it. Run alone: FASTFN_WATCHDOG=... FASTFN_GATEWAY=... python3 tests/integration/test_faults.py
"""

import sys

sys.dont_write_bytecode = True

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import uuid  # noqa: E402
from typing import Callable, Optional  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from gateway_support import (PYTHON, GatewayTestCase, check_binaries, function_entry,  # noqa: E402
                             sockets_of)

ECHO = harness.FIXTURES_DIR / "hostile" / "echo.sh"
HOT_HANDLER = harness.FIXTURES_DIR / "hot" / "hot_handler.py"
CLIENT_TIMEOUT = 20.0  # a request that takes longer hangs (the functions answer in milliseconds)
MARK_VAR = "FASTFN_FAULT_MARK"


def setUpModule():
    check_binaries()
    for path in (ECHO, HOT_HANDLER):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"fixture {path} lost its exec bit (chmod +x it)")


def seeded_random(test: unittest.TestCase) -> random.Random:
    seed = int(os.environ.get("FASTFN_FAULT_SEED") or time.time_ns() % 1_000_000_007)
    print(f"\n{test.id()}: kill schedule seed {seed} (replay with FASTFN_FAULT_SEED={seed})", flush=True)
    return random.Random(seed)


def marked_processes(mark: str) -> list[int]:
    """Live processes whose environment holds MARK_VAR=mark: everything the test's server started,
    wherever it was reparented to."""
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    if harness.pid_alive(int(name)):
                        found.append(int(name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return sorted(found)


def socket_fds(pid: int) -> int:
    return sum(1 for target in harness.fd_targets(pid).values() if target.startswith("socket:"))


def watchdog_leak(pid: int, connections: int) -> Optional[str]:
    """None when the watchdog's fds are what its children and `connections` client connections
    explain: per child its stdin, stdout and stderr pipes and a pidfd; its listening socket. Else
    what it holds. Its own stdio is not counted: stdout and stderr are the pipe the gateway reads
    (issue 20), or whatever the test gave a watchdog it started itself."""
    children = len(harness.children(pid))  # zombies too: their pidfd is open until reaped
    targets = [target for fd, target in harness.fd_targets(pid).items() if fd > 2]
    pipes = sum(t.startswith("pipe:") for t in targets)
    pidfds = sum("pidfd" in t for t in targets)
    sockets = sum(t.startswith("socket:") for t in targets)
    if pipes <= 3 * children and pidfds <= children and sockets <= 1 + connections:
        return None
    return (f"watchdog {pid} with {children} children holds {pipes} pipes, {pidfds} pidfds, {sockets} sockets "
            f"(at most {3 * children}, {children}, {1 + connections}): {sorted(targets)}")


class Outcomes:
    """Thread-safe tally of the stream's outcomes."""

    def __init__(self):
        self.lock = threading.Condition()
        self.by_kind: dict[str, int] = {}
        self.bad: list[str] = []
        self.slowest = 0.0

    def record(self, kind: str, elapsed: float, bad: Optional[str] = None) -> None:
        with self.lock:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            self.slowest = max(self.slowest, elapsed)
            if bad is not None:
                self.bad.append(bad)
            self.lock.notify_all()

    def wait_for_total(self, count: int, stop: Callable[[], bool]) -> bool:
        """Waits until `count` outcomes are recorded (True) or stop() says the stream is over."""
        with self.lock:
            while sum(self.by_kind.values()) < count:
                if stop():
                    return False
                self.lock.wait(1.0)  # wakes on every record(); the timeout only rechecks stop()
            return True

    def wake(self) -> None:
        with self.lock:
            self.lock.notify_all()

    def total(self) -> int:
        with self.lock:
            return sum(self.by_kind.values())


class FaultCase:
    """The stream and the checks shared by both tests."""

    def check_error(self, response: harness.Response) -> Optional[str]:
        """None when `response` is a clean 502/503 (JSON error object), else what is wrong."""
        if "json" not in response.headers.get("Content-Type", ""):
            return f"error without a JSON body: {response!r}"
        try:
            data = json.loads(response.body)
        except ValueError:
            return f"error body is not JSON: {response!r}"
        if not isinstance(data, dict) or not isinstance(data.get("error"), str) or not data["error"]:
            return f"error body without \"error\": {response!r}"
        return None

    def run_stream(self, address: harness.Address, clients: int,
                   make_request: Callable[[random.Random, str], tuple],
                   check_ok: Callable[[harness.Response, str, bytes, str], Optional[str]],
                   killer: Callable[[random.Random], Optional[str]], rng: random.Random,
                   kills_wanted: int, kill_gap: tuple[int, int], min_requests: int,
                   server_alive: Callable[[], bool]) -> Outcomes:
        """`clients` threads send requests (keep-alive, reconnecting when the server closes) until
        the killer has made `kills_wanted` kills and at least `min_requests` were answered. Kills are
        driven by count, not by time, so the stream means the same on a fast or a busy machine: after
        every kill_gap[0]..kill_gap[1] answered requests the killer waits for a victim
        (killer(rng) returns None while there is none) and kills it while the stream goes on.
        make_request(rng, token) gives (method, path, body, kind); check_ok(response, token, body,
        kind) says what is wrong with a 200."""
        outcomes = Outcomes()
        kills: list[str] = []
        seeds = [rng.randrange(1 << 30) for _ in range(clients)]
        # Not a timing condition: only a guard that ends a stuck stream so the test can say so.
        stream_deadline = time.monotonic() + 240

        def finished() -> bool:
            return (len(kills) >= kills_wanted and outcomes.total() >= min_requests) or \
                time.monotonic() > stream_deadline or not server_alive()

        def client(index: int) -> None:
            local = random.Random(seeds[index])
            conn: Optional[harness.HttpConnection] = None
            i = 0
            try:
                while not finished():
                    token = f"c{index}r{i}x{local.randrange(1 << 40):x}"
                    i += 1
                    method, path, body, kind = make_request(local, token)
                    started = time.monotonic()
                    try:
                        if conn is None:
                            conn = harness.HttpConnection(address, timeout=CLIENT_TIMEOUT, auto_reconnect=True)
                        response = conn.request(method, path, body=body, timeout=CLIENT_TIMEOUT)
                    except Exception as exc:  # no answer: a hang (timeout), a reset, garbage, a refusal
                        if conn is not None:
                            conn.close()
                            conn = None
                        outcomes.record("no answer", time.monotonic() - started,
                                        f"{kind} {token}: no answer: {type(exc).__name__}: {exc}")
                        continue
                    elapsed = time.monotonic() - started
                    if response.status == 200:
                        problem = check_ok(response, token, body or b"", kind)
                        outcomes.record(f"{kind} 200" if problem is None else "wrong 200", elapsed,
                                        None if problem is None else f"{kind} {token}: {problem}")
                    elif response.status in (502, 503):
                        problem = self.check_error(response)
                        outcomes.record(f"{kind} {response.status}", elapsed,
                                        None if problem is None else f"{kind} {token}: {problem}")
                    else:
                        outcomes.record(str(response.status), elapsed, f"{kind} {token}: {response!r}")
            finally:
                if conn is not None:
                    conn.close()

        def kill_loop() -> None:
            while not finished():
                next_at = outcomes.total() + rng.randint(*kill_gap)
                if not outcomes.wait_for_total(next_at, finished):
                    return
                while not finished():  # a victim may not exist for a moment (all restarting)
                    try:
                        victim = killer(rng)
                    except Exception as exc:  # the server is checked afterwards; note it and go on
                        victim = f"killer error {exc!r}"
                    if victim:
                        kills.append(victim)
                        break
                    time.sleep(0.005)  # polling for a victim, not synchronisation

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        killer_thread = threading.Thread(target=kill_loop, daemon=True)
        started = time.monotonic()
        for t in threads:
            t.start()
        killer_thread.start()
        for t in threads:
            t.join(max(1.0, stream_deadline + 2 * CLIENT_TIMEOUT - time.monotonic()))
        outcomes.wake()
        killer_thread.join(10)
        self.assertFalse([t for t in threads if t.is_alive()], "client threads still running: a request hangs")
        elapsed = time.monotonic() - started
        print(f"{self.id()}: {outcomes.total()} requests in {elapsed:.1f}s, {len(kills)} kills, outcomes "
              f"{dict(sorted(outcomes.by_kind.items()))}, slowest {outcomes.slowest:.2f}s", flush=True)
        self.kills = kills
        self.assertTrue(server_alive(), f"the server died during the stream (kills: {kills[-10:]}); "
                                        f"outcomes {dict(sorted(outcomes.by_kind.items()))}")
        self.assertGreaterEqual(len(kills), kills_wanted,
                                f"the stream got stuck before its kills were made: {kills}; outcomes "
                                f"{dict(sorted(outcomes.by_kind.items()))}")
        return outcomes

    def assert_next_request_answered(self, address: harness.Address, path: str, expected: int, follow: str,
                                     describe: Callable[[], str]) -> None:
        """POSTs a small body (all of it sent) to `path`, which answers `expected` before reading it;
        then, unless that answer said Connection: close, sends GET `follow` on the same connection,
        which must be answered."""
        with harness.HttpConnection(address, timeout=10) as conn:
            first = conn.request("POST", path, body=b"b" * 1000)
            self.assertEqual(first.status, expected, f"{first!r}\n{describe()}")
            if not first.keep_alive:
                return  # it said Connection: close: the client knows to open a new connection
            try:
                second = conn.request("GET", follow)
            except (ConnectionError, OSError) as exc:
                self.fail(f"the {expected} answer kept the connection alive (no Connection: close), but the "
                          f"next request on it got no answer ({exc!r}): a client loses that request\n"
                          f"first answer: {first!r}\n{describe()}")
            self.assertEqual(second.status, 200, f"{second!r}\n{describe()}")

    def assert_clean(self, outcomes: Outcomes, kinds: list[str], describe: Callable[[], str]) -> None:
        self.assertEqual(outcomes.bad[:20], [], f"{len(outcomes.bad)} bad outcomes of {outcomes.total()}: "
                                                f"{dict(sorted(outcomes.by_kind.items()))} "
                                                f"(kills: {self.kills[:40]})\n{describe()}")
        for kind in kinds:  # 502/503 are clean, but a stream of nothing else would prove nothing
            self.assertGreaterEqual(outcomes.by_kind.get(f"{kind} 200", 0), 20,
                                    f"too few {kind} requests succeeded: {outcomes.by_kind}")


# --------------------------------------------------------------------------------------------------


class GatewayFaultTest(FaultCase, GatewayTestCase):
    def test_early_error_answer_does_not_lose_the_next_request(self):
        """As WatchdogFaultTest's: the gateway's 429 (worker_pool full; and its 503 "runtime
        unavailable" in the kill test) is given before the body is read."""
        gate = self.gate()
        fns = self.functions()
        fns.gate("busy", gate.dir, {"worker_pool": {"max_workers": 1, "max_queue": 0}})
        gw = self.start_gateway(fns, wait_for=["busy"])
        held = threading.Thread(target=lambda: gw.get("/busy?name=held", timeout=30), daemon=True)
        held.start()
        gate.wait_started(["held"], describe=gw.describe)
        self.assert_next_request_answered(gw.address, "/busy", 429, "/_fn/health", gw.describe)
        gate.release()
        held.join(30)

    def test_kill_9_watchdogs_and_hot_handlers_during_a_request_stream(self):
        mark = uuid.uuid4().hex
        rng = seeded_random(self)
        fns = self.functions()
        fns.python_http("hot", {"daemons": 3, "max_instances": 2})
        fns.add("cgi", {"handler.sh": ECHO}, {"daemons": 2})
        gw = self.start_gateway(fns, env={MARK_VAR: mark}, wait_for=["hot", "cgi"])
        self.assertIn(gw.pid, marked_processes(mark), "the environment marker does not reach the gateway")

        def make_request(local: random.Random, token: str) -> tuple:
            kind = local.choice(["hot GET", "hot POST", "cgi GET", "cgi POST"])
            fn = kind.split()[0]
            path = f"/{fn}/x?t={token}" if fn == "hot" else f"/cgi?t={token}"
            body = f"body-{token}".encode() if kind.endswith("POST") else None
            return ("POST" if body else "GET"), path, body, kind

        def check_ok(response: harness.Response, token: str, body: bytes, kind: str) -> Optional[str]:
            if kind.startswith("hot"):
                try:
                    data = json.loads(response.body)
                except ValueError:
                    return f"not JSON: {response!r}"
                if data.get("target") != f"/hot/x?t={token}" or data.get("body") != body.decode():
                    return f"another request's answer: {response!r}"
                return None
            expected = f"query=t={token}\n".encode()
            if expected not in response.body or not response.body.endswith(b"body=" + body):
                return f"another request's answer: {response!r}"
            return None

        def watchdogs(health: Optional[dict] = None) -> dict[str, list[int]]:
            health = health or gw.health()
            return {name: [p for p in gw.watchdog_pids(name, health) if harness.pid_alive(p)]
                    for name in ("hot", "cgi")}

        for _ in range(20):  # warm: every socket has kept-alive connections, every pool a process
            for fn in ("hot", "cgi"):
                self.assert_status(gw.get(f"/{fn}?t=warm"), 200, gw)
        baseline_fds = harness.fd_count(gw.pid)
        baseline_sockets = socket_fds(gw.pid)

        def killer(local: random.Random) -> Optional[str]:
            pids = watchdogs()
            if local.random() < 0.4:
                fn = local.choice(["hot", "cgi"])
                if not pids[fn]:
                    return None
                victim, what = local.choice(pids[fn]), f"watchdog of {fn}"
            else:
                handlers = [c for p in pids["hot"] for c in harness.children(p) if harness.pid_alive(c)]
                if not handlers:
                    return None
                victim, what = local.choice(handlers), "hot handler"
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                return None
            return f"{what} {victim}"

        outcomes = self.run_stream(gw.address, 4, make_request, check_ok, killer, rng, kills_wanted=16,
                                   kill_gap=(30, 90), min_requests=1200, server_alive=gw.is_running)
        self.assert_clean(outcomes, ["hot GET", "hot POST", "cgi GET", "cgi POST"], gw.describe)

        # Afterwards: every socket up again, answers right, nothing left over.
        health = gw.wait_functions_up(["hot", "cgi"], 30)
        self.assertEqual(len(sockets_of(health, "hot")), 3, health)
        self.assertEqual(len(sockets_of(health, "cgi")), 2, health)
        self.assertEqual(health.get("status"), "ok", health)
        for fn in ("hot", "cgi"):
            self.assertEqual((function_entry(health, fn) or {}).get("up"), True, health)
        for i in range(12):
            fn = ("hot", "cgi")[i % 2]
            self.assert_status(gw.get(f"/{fn}?t=after{i}"), 200, gw, "after the kills:")
        wait_until(lambda: harness.zombie_count(gw.pid) == 0, 10,
                   message=lambda: f"zombies under the gateway: {harness.zombie_descendants(gw.pid)}\n{gw.describe()}")

        def orphans() -> list[str]:
            below = {s.pid for s in harness.descendants(gw.pid)} | {gw.pid}
            return [f"{p} {harness.proc_stat(p)}" for p in marked_processes(mark) if p not in below]

        wait_until(lambda: not orphans(), 15,
                   message=lambda: f"processes of the gateway that left its tree: {orphans()}\n{gw.describe()}")
        # The gateway pools connections to its watchdogs (at most one per client and one for the
        # health probe, per socket): beyond those, nothing may pile up. Its other fds are fixed.
        def gateway_leak() -> Optional[str]:
            targets = list(harness.fd_targets(gw.pid).values())
            sockets = sum(t.startswith("socket:") for t in targets)
            others = len(targets) - sockets
            if sockets <= 1 + 5 * (4 + 1) and others <= baseline_fds - baseline_sockets + 2:
                return None
            return (f"gateway holds {sockets} sockets and {others} other fds (after warm-up: {baseline_sockets} "
                    f"and {baseline_fds - baseline_sockets}): {sorted(targets)}")

        wait_until(lambda: gateway_leak() is None, 15, message=lambda: f"{gateway_leak()}\n{gw.describe()}")
        for fn, pids in watchdogs().items():
            for pid in pids:
                wait_until(lambda: watchdog_leak(pid, 4 + 1) is None, 15,
                           message=lambda: f"watchdog of {fn}: {watchdog_leak(pid, 4 + 1)}\n{gw.describe()}")
                wait_until(lambda: harness.zombie_count(pid) == 0, 10,
                           message=lambda: f"zombies under watchdog {pid}: {harness.zombie_descendants(pid)}")


def queue_length(wd: harness.Watchdog) -> Optional[float]:
    """fastfn_watchdog_requests_queued from /_/metrics."""
    for line in wd.get("/_/metrics", timeout=5).text.splitlines():
        if line.startswith("fastfn_watchdog_requests_queued"):
            return float(line.split()[-1])
    return None


class WatchdogFaultTest(FaultCase, harness.WatchdogTestCase):
    def test_requests_waiting_when_the_pool_turns_unhealthy_leave_the_queue_intact(self):
        """One process (max-instances 1) holds request A; B (/exit: the handler dies on it) and C
        wait in the queue. A's handler is killed: its replacement gets B and dies at its first
        request, so the pool is crash-looping and C is answered 503 at once, from the queue. The
        queue must be left empty and usable: once healthy again, requests are served, not refused
        with 429 "max-queue reached" (a queue entry removed twice corrupts it)."""
        gate = self.make_tempdir("fastfn-gate-")
        self.addCleanup(lambda: os.path.isdir(gate) and harness.touch(os.path.join(gate, "release")))
        wd = self.start_watchdog([PYTHON, str(HOT_HANDLER)],
                                 ["--format", "http", "--min-instances", "1", "--max-instances", "1",
                                  "--exec-timeout", "30s"], listen="tcp")
        results: dict[str, object] = {}

        def send(name: str, method: str, path: str) -> None:
            try:
                results[name] = wd.request(method, path, body=b"x" if method == "POST" else None, timeout=30)
            except Exception as exc:
                results[name] = exc

        threads = {"a": threading.Thread(target=send, args=("a", "GET", f"/gate?dir={gate}&name=a"), daemon=True),
                   "b": threading.Thread(target=send, args=("b", "POST", "/exit"), daemon=True),
                   "c": threading.Thread(target=send, args=("c", "POST", "/echo"), daemon=True)}
        threads["a"].start()
        started = os.path.join(gate, "started.a")
        def read_started() -> str:
            with contextlib.suppress(FileNotFoundError), open(started) as f:
                return f.read().strip()
            return ""

        handler = int(wait_until(read_started, 10,
                                 message=lambda: f"request a never reached the handler\n{wd.describe()}"))
        for name, waiting in (("b", 1), ("c", 2)):
            threads[name].start()
            wait_until(lambda: queue_length(wd) == waiting, 10,
                       message=lambda: f"queue length {queue_length(wd)}, expected {waiting}\n{wd.describe()}")
        os.kill(handler, signal.SIGKILL)
        for t in threads.values():
            t.join(40)
        for name in "abc":
            response = results.get(name)
            self.assertIsInstance(response, harness.Response, f"request {name}: {response!r}\n{wd.describe()}")
            self.assertIn(response.status, (502, 503), f"request {name}: {response!r}\n{wd.describe()}")
            self.assertIsNone(self.check_error(response), f"request {name}")
        wait_until(lambda: wd.get("/_/health").status == 200, 20,
                   message=lambda: f"/_/health never recovered\n{wd.describe()}")
        self.assertEqual(queue_length(wd), 0, f"the queue is not empty with nothing waiting\n{wd.describe()}")
        for i in range(5):
            response = wd.post(f"/echo?i={i}", f"after{i}".encode(), timeout=10)
            self.assertEqual((response.status, response.body), (200, f"after{i}".encode()),
                             f"after the crash loop: {response!r}\n{wd.describe()}")

    def test_early_error_answer_does_not_lose_the_next_request(self):
        """An answer given before the request body is read (429 at max-inflight here; 503 while the
        handler is backing off in the kill test) must not advertise keep-alive and then drop the
        connection: the next request a client sends on it (a POST it cannot safely retry) is lost.
        Either the answer says Connection: close, or the next request is answered."""
        gate = self.make_tempdir("fastfn-gate-")
        self.addCleanup(lambda: os.path.isdir(gate) and harness.touch(os.path.join(gate, "release")))
        wd = self.start_watchdog([str(harness.CGI_FIXTURES_DIR / "gate.sh"), gate],
                                 ["--format", "cgi", "--max-inflight", "1"], listen="tcp")
        held = threading.Thread(target=lambda: wd.get("/", timeout=30), daemon=True)
        held.start()
        wait_until(lambda: any(n.startswith("started.") for n in os.listdir(gate)), 10,
                   message=lambda: f"the held request did not start\n{wd.describe()}")
        self.assert_next_request_answered(wd.address, "/", 429, "/_/health", wd.describe)
        harness.touch(os.path.join(gate, "release"))
        held.join(30)

    def test_kill_9_hot_handlers_during_a_request_stream(self):
        mark = uuid.uuid4().hex
        rng = seeded_random(self)
        wd = self.start_watchdog([PYTHON, str(HOT_HANDLER)],
                                 ["--format", "http", "--min-instances", "2", "--max-instances", "3",
                                  "--exec-timeout", "10s"],
                                 listen="tcp", env={MARK_VAR: mark})

        def make_request(local: random.Random, token: str) -> tuple:
            return "POST", f"/echo?t={token}", f"body-{token}".encode(), "echo"

        def check_ok(response: harness.Response, token: str, body: bytes, kind: str) -> Optional[str]:
            return None if response.body == body else f"another request's answer: {response!r}"

        def handlers() -> list[int]:
            return [c for c in harness.children(wd.pid) if harness.pid_alive(c)]

        with wd.connection() as conn:
            for i in range(20):
                self.assertEqual(conn.request("POST", "/echo", body=b"warm").status, 200, wd.describe())
        wait_until(lambda: len(handlers()) >= 2, 10, message=lambda: f"min-instances 2 not warm\n{wd.describe()}")
        baseline_fds = harness.fd_count(wd.pid)

        def killer(local: random.Random) -> Optional[str]:
            # Handlers past their start: a kill every few ms that also hit the ones starting would be a
            # crash loop (tested in test_watchdog_http.py), answered 503 for the backoff's length.
            pids = [p for p in handlers() if (harness.process_age(p) or 0) >= 0.2]
            if not pids:
                return None
            victim = local.choice(pids)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                return None
            return f"hot handler {victim}"

        outcomes = self.run_stream(wd.address, 3, make_request, check_ok, killer, rng, kills_wanted=40,
                                   kill_gap=(10, 140), min_requests=3000, server_alive=wd.is_running)
        self.assert_clean(outcomes, ["echo"], wd.describe)

        wait_until(lambda: wd.get("/_/health").status == 200, 15,
                   message=lambda: f"/_/health not back to 200\n{wd.describe()}")
        for i in range(6):
            self.assertEqual(wd.post(f"/echo?t=after{i}", f"after{i}".encode()).body, f"after{i}".encode())
        wait_until(lambda: harness.zombie_count(wd.pid) == 0, 10,
                   message=lambda: f"zombies: {harness.zombie_descendants(wd.pid)}\n{wd.describe()}")

        def orphans() -> list[str]:
            below = {s.pid for s in harness.descendants(wd.pid)} | {wd.pid}
            return [f"{p} {harness.proc_stat(p)}" for p in marked_processes(mark) if p not in below]

        wait_until(lambda: not orphans(), 15, message=lambda: f"orphaned handlers: {orphans()}\n{wd.describe()}")
        wait_until(lambda: watchdog_leak(wd.pid, 0) is None, 15,
                   message=lambda: f"{watchdog_leak(wd.pid, 0)} (after warm-up it held {baseline_fds} fds)"
                                   f"\n{wd.describe()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
