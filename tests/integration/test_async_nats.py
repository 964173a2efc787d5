#!/usr/bin/env python3
"""Integration tests of asynchronous calls on the shared queue, NATS JetStream (FN_QUEUE=nats://...):
a call queued through a gateway runs with its request intact and its callback arrives; retried
statuses are retried, then final; several gateways on one stream share the calls (any of them runs
a call, any of them reports it); the calls a gateway held when it was killed -9 are redelivered to
another after the ack wait and run again with the same X-Call-Id; a queue that cannot be reached
stops the gateway at start (exit 2, one line). Starts a real nats-server (Debian's package) with
JetStream on a free loopback port and its own store dir, one per test, and the real gateway
(FASTFN_GATEWAY) with a callback receiver of the test's own.
Without nats-server the tests that need it are skipped, unless CI=true: there they fail.
Run alone: python3 tests/integration/test_async_nats.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import collections  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402
from typing import Optional  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import (GatewayTestCase, check_binaries, parse_kv,  # noqa: E402
                             run_gateway_cli, wait_until)
from test_async import FAST_RETRIES, PROBE, ProbeCalls, check_retried_statuses  # noqa: E402

# Where Debian's nats-server may be (the package puts it in /usr/sbin); FASTFN_NATS_SERVER wins.
NATS_SERVER_CANDIDATES = ("/usr/sbin/nats-server", "/usr/bin/nats-server")

# A CGI function (sh) for the tests with several gateways: answers who=$WHO (its gateway, from
# fn.config.json "env"), call=X-Call-Id and name=?name as key=value lines. With GATE_DIR set it is
# a gate like tests/fixtures/gateway/gate.sh (see Gate): it creates GATE_DIR/started.NAME holding
# its pid and waits until GATE_DIR/release (or release.NAME) exists, at most about 60 s.
WORKER = r'''#!/bin/sh
name=$(printf '%s\n' "${QUERY_STRING:-}" | tr '&' '\n' | sed -n 's/^name=//p' | head -n 1)
[ -n "$name" ] || name=$$
if [ -n "${GATE_DIR:-}" ]; then
  echo $$ > "$GATE_DIR/.started.$name.$$" && mv "$GATE_DIR/.started.$name.$$" "$GATE_DIR/started.$name"
  i=0
  while [ ! -e "$GATE_DIR/release" ] && [ ! -e "$GATE_DIR/release.$name" ]; do
    sleep 0.02
    i=$((i + 1))
    if [ "$i" -gt 3000 ]; then
      echo "gate timed out $name"
      exit 7
    fi
  done
fi
printf 'who=%s\ncall=%s\nname=%s\n' "${WHO:-}" "${HTTP_X_CALL_ID:-}" "$name"
'''


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def nats_server_binary() -> Optional[str]:
    """$FASTFN_NATS_SERVER, else nats-server on PATH, else Debian's paths; None when absent."""
    chosen = os.environ.get("FASTFN_NATS_SERVER")
    if chosen:
        return chosen
    found = shutil.which("nats-server")
    if found:
        return found
    for path in NATS_SERVER_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class NatsServer:
    """nats-server -js on 127.0.0.1 and a free port, its store in a temp dir of its own, in its own
    session. start() returns once a client connection gets the server's INFO with JetStream on;
    close() SIGKILLs its process group and removes the temp dir (idempotent)."""

    def __init__(self, binary: str, start_timeout: float = 30.0):
        self.binary = binary
        self.tmpdir = tempfile.mkdtemp(prefix="fastfn-nats-")
        self.store = os.path.join(self.tmpdir, "store")
        self.port = harness.free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.argv = [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.store]
        self.proc: Optional[subprocess.Popen] = None
        self._log_path = os.path.join(self.tmpdir, "nats.log")
        self._saved_log: Optional[str] = None
        self._closed = False

    def start(self) -> "NatsServer":
        with open(self._log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        holder: dict = {}

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"nats-server exited with {self.proc.returncode} before it "
                                     f"accepted connections\n{self.describe()}")
            holder["info"] = info = self.info()
            return bool(info) and info.get("jetstream") is True

        wait_until(ready, self.start_timeout, interval=0.02,
                   message=lambda: f"nats-server not up with JetStream (last INFO: "
                                   f"{holder.get('info')!r})\n{self.describe()}")
        return self

    def info(self) -> Optional[dict]:
        """The INFO the server greets a client with, or None when it does not answer yet."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as sock:
                data = b""
                while b"\r\n" not in data and len(data) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return None
        line = data.split(b"\r\n", 1)[0]
        if not line.startswith(b"INFO "):
            return None
        try:
            return json.loads(line[len(b"INFO "):])
        except ValueError:
            return None

    def log(self) -> str:
        if self._saved_log is not None:
            return self._saved_log
        try:
            with open(self._log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self, lines: int = 30) -> str:
        state = "not started" if self.proc is None else (
            "running" if self.proc.poll() is None else f"exited {self.proc.returncode}")
        tail = "\n".join("    | " + line for line in self.log().splitlines()[-lines:]) or "    | (empty)"
        return f"  nats-server argv={self.argv} ({state})\n  nats-server log tail:\n{tail}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.proc is not None:
                harness.kill_group(self.proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(10)
        finally:
            self._saved_log = self.log()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class NatsCase(ProbeCalls, GatewayTestCase):
    """Helpers shared by the tests: a nats-server per test, the receiver, enqueue and reports."""

    def setUp(self) -> None:
        super().setUp()
        self._nats: list[NatsServer] = []

    def run(self, result=None):
        failures_before = len(result.failures) + len(result.errors) if result is not None else None
        outcome = super().run(result)
        result = result or outcome
        if result is not None and failures_before is not None and \
                len(result.failures) + len(result.errors) > failures_before:
            for server in getattr(self, "_nats", []):
                print(f"\n--- {self.id()}:\n{server.describe(40)}", flush=True)
        return outcome

    def nats(self) -> NatsServer:
        binary = nats_server_binary()
        if binary is None or not os.access(binary, os.X_OK):
            message = ("nats-server is not installed (Debian's package nats-server; or set "
                       "FASTFN_NATS_SERVER)")
            if in_ci():
                self.fail(message + ": CI=true, so this is a failure, not a skip")
            self.skipTest(message)
        server = NatsServer(binary)
        self._nats.append(server)
        self.addCleanup(server.close)
        server.start()
        return server

    def nats_gateway(self, fns, queue: str, wait_for=()):
        return self.start_gateway(fns, env={"FN_QUEUE": queue}, wait_for=list(wait_for))


class OneGatewayTest(NatsCase):
    """One gateway on the nats queue: what the sqlite queue does, the same."""

    def probe_gateway(self, queue: str):
        fns = self.functions()
        self.state = self.make_tempdir("fastfn-async-state-")
        fns.add("probe", {"handler.py": PROBE},
                {"format": "cgi", "cgi_headers": True, "env": {"STATE_DIR": self.state},
                 "async": dict(FAST_RETRIES)})
        return self.nats_gateway(fns, queue, wait_for=["probe"])

    def test_a_queued_call_runs_with_its_request_intact_and_its_callback_arrives(self):
        server = self.nats()
        receiver = self.receiver()
        gw = self.probe_gateway(server.url)
        self.assertIn(server.url, gw.log(), "the gateway should log the queue it uses\n" + gw.describe())
        queued = self.enqueue(gw, "/async-function/probe/sub/path?x=1&y=two", b"the body",
                              {"X-Custom": "kept", "Content-Type": "text/plain",
                               "X-Callback-Url": receiver.url + "/hook"})
        call_id = queued.headers["X-Call-Id"]
        self.assertEqual(queued.headers.get("Location"), f"/_fn/calls/{call_id}")
        self.assertEqual((queued.json()["call_id"], queued.json()["status"]), (call_id, "queued"))
        wait_until(lambda: receiver.of(call_id), 60,
                   message=lambda: f"no callback: {self.call(gw, call_id)}\n{gw.describe()}")
        [(path, headers, body)] = receiver.of(call_id)
        self.assertEqual(path, "/hook")
        self.assertEqual((headers.get("x-function-status"), headers.get("x-function-name"),
                          headers.get("content-type")), ("200", "probe", "application/json"), headers)
        got = json.loads(body)
        self.assertEqual((got["call_id"], got["method"], got["path_info"], got["query"], got["body"],
                          got["custom"], got["attempt"]),
                         (call_id, "POST", "/sub/path", "x=1&y=two", "the body", "kept", 1), got)
        report = self.wait_call(gw, call_id)
        self.assertEqual((report["status"], report["function"], report["function_status"],
                          report["attempts"]), ("done", "probe", 200, 1), report)
        wait_until(lambda: self.call(gw, call_id)["callback"]["state"] == "sent", 30,
                   message=lambda: f"callback not sent: {self.call(gw, call_id)}")
        result = gw.get(f"/_fn/calls/{call_id}/result")
        self.assertEqual(result.status, 200, repr(result))
        self.assertEqual(result.headers.get("X-Function-Status"), "200")
        self.assertEqual(json.loads(result.body), got)
        self.assertEqual(self.runs(call_id), 1)
        self.assert_json_error(gw.get("/_fn/calls/unknown-id"), 404, gw)

    def test_retried_statuses_are_run_again_until_the_last_attempt_others_are_final(self):
        check_retried_statuses(self, self.probe_gateway(self.nats().url))


class SharedStreamTest(NatsCase):
    """Several gateways on one server share the stream."""

    def worker(self, who: str, gate_dir: Optional[str] = None, config: Optional[dict] = None):
        fns = self.functions()
        env = {"WHO": who, **({"GATE_DIR": gate_dir} if gate_dir else {})}
        fns.add("work", {"handler.sh": WORKER}, {**(config or {}), "env": env})
        return fns

    def test_two_gateways_on_one_stream_share_the_calls_each_run_once(self):
        server = self.nats()
        receiver = self.receiver()
        gate_a, gate_b = self.gate(), self.gate()
        # Both block until released and run at most 4 at a time: whatever the speed of either,
        # neither can hold all 200, so the other must start some (count-driven, not timed). The
        # timeout (so the ack wait, 65 s) is far longer than the gates stay closed.
        config = {"timeout_ms": 60000, "async": {"max_concurrency": 4}}
        gw_a = self.nats_gateway(self.worker("a", gate_a.dir, config), server.url, ["work"])
        gw_b = self.nats_gateway(self.worker("b", gate_b.dir, config), server.url, ["work"])
        total = 200
        connection = gw_a.connection(timeout=60)
        try:
            ids = [self.enqueue(gw_a, f"/async-function/work?name={i}", str(i).encode(),
                                {"X-Callback-Url": receiver.url + "/hook"},
                                connection=connection).headers["X-Call-Id"]
                   for i in range(total)]
        finally:
            connection.close()
        self.assertEqual(len(set(ids)), total)

        def both_started() -> bool:
            return bool(gate_a.started()) and bool(gate_b.started())
        wait_until(both_started, 60, interval=0.05,
                   message=lambda: f"not both gateways run calls: A started {sorted(gate_a.started())}, "
                                   f"B started {sorted(gate_b.started())}\n{gw_a.describe()}\n"
                                   f"{gw_b.describe()}")
        for gate in (gate_a, gate_b):
            self.assertLessEqual(len(gate.started()), 4, f"max_concurrency 4: {sorted(gate.started())}")
        # A call POSTed to A and held by A's handler: B reports it running, and A too.
        held = ids[int(next(iter(gate_a.started())))]
        self.assertEqual(self.call(gw_b, held)["status"], "running", self.call(gw_b, held))
        self.assertEqual(self.call(gw_a, held)["status"], "running", self.call(gw_a, held))
        held_by_b = ids[int(next(iter(gate_b.started())))]
        self.assertEqual(self.call(gw_b, held_by_b)["status"], "running")
        gate_a.release()
        gate_b.release()

        wait_until(lambda: receiver.ids() >= set(ids), 300, interval=0.1,
                   message=lambda: f"{len(set(ids) - receiver.ids())} callbacks missing, e.g. "
                                   f"{sorted(set(ids) - receiver.ids())[:3]}\n{gw_a.describe()}\n"
                                   f"{gw_b.describe()}")
        # Once every call's callback is recorded as sent no other is coming: count them then.
        wait_until(lambda: all(self.call(gw_b, i)["callback"]["state"] == "sent" for i in ids), 60,
                   interval=0.2, message=lambda: "callbacks not all recorded as sent")
        self.assertEqual(receiver.ids(), set(ids))
        with receiver.lock:
            posts = list(receiver.posts)
        per_id = collections.Counter(headers.get("x-call-id") for _, headers, _ in posts)
        self.assertEqual({i: n for i, n in per_id.items() if n != 1}, {}, "ids called back twice")
        who = collections.Counter()
        for _, headers, body in posts:
            got = parse_kv(body.decode())
            self.assertEqual(headers.get("x-function-status"), "200", (headers, body))
            self.assertEqual(got.get("call"), headers.get("x-call-id"), (headers, body))
            self.assertEqual(ids[int(got["name"])], got["call"], (headers, body))
            who[got.get("who")] += 1
        self.assertEqual(set(who), {"a", "b"}, who)
        self.assertEqual(sum(who.values()), total, who)
        self.assertGreater(min(who.values()), 0, who)
        for call_id in ids:  # each gateway reports every call, POSTed to A as they all were
            for gw in (gw_b, gw_a):
                report = self.call(gw, call_id)
                self.assertEqual((report["status"], report["function"], report["function_status"],
                                  report["attempts"]), ("done", "work", 200, 1), report)
        result = gw_b.get(f"/_fn/calls/{ids[0]}/result")
        self.assertEqual(result.status, 200, repr(result))
        self.assertEqual(parse_kv(result.text).get("call"), ids[0], repr(result))
        # Each gateway counts the runs it made.
        runs_a = gw_a.metrics().get("fastfn_async_runs_total", code="200")
        runs_b = gw_b.metrics().get("fastfn_async_runs_total", code="200")
        self.assertEqual((runs_a, runs_b), (who["a"], who["b"]))

    def test_calls_held_by_a_gateway_killed_9_are_run_again_by_another_with_the_same_id(self):
        server = self.nats()
        receiver = self.receiver()
        gate = self.gate()
        # A's function blocks; B's does not. A short timeout, so the ack wait (timeout + 5 s) is
        # short; long enough for the test to see the calls running and kill A before A's own
        # timeout answers them 504 (had it, they would still be run again by B: only fewer
        # of them would show the redelivery).
        config = {"timeout_ms": 5000, "async": {"max_concurrency": 4}}
        fns_b = self.worker("b", None, config)
        gw_a = self.nats_gateway(self.worker("a", gate.dir, config), server.url, ["work"])
        ids = [self.enqueue(gw_a, f"/async-function/work?name={i}", b"",
                            {"X-Callback-Url": receiver.url + "/hook"}).headers["X-Call-Id"]
               for i in range(10)]
        wait_until(lambda: len(gate.started()) >= 4, 60, interval=0.02,
                   message=lambda: f"A did not start 4 calls: {sorted(gate.started())}\n"
                                   f"{gw_a.describe()}")
        self.assertEqual(len(gate.started()), 4, f"max_concurrency 4: {sorted(gate.started())}")
        held = [ids[int(name)] for name in gate.started()]
        wait_until(lambda: all(self.call(gw_a, i)["status"] == "running" for i in held), 30,
                   interval=0.02, message=lambda: f"not running: {[self.call(gw_a, i) for i in held]}")
        handlers = list(gate.started().values())
        gw_a.kill()  # SIGKILL, then every watchdog and handler left of it
        self.assertEqual(gw_a.returncode, -signal.SIGKILL, gw_a.describe())
        wait_until(lambda: not gw_a.related_processes(), 15,
                   message=lambda: f"A's processes linger: {gw_a.related_processes()}")
        self.assertEqual([pid for pid in handlers if harness.pid_alive(pid)], [],
                         "A's handlers outlived it")
        self.assertEqual(receiver.ids(), set(), "no call finished on A")

        gw_b = self.nats_gateway(fns_b, server.url, ["work"])
        wait_until(lambda: receiver.ids() >= set(ids), 120, interval=0.1,
                   message=lambda: f"callbacks missing: {sorted(set(ids) - receiver.ids())}; "
                                   f"{[self.call(gw_b, i) for i in sorted(set(ids) - receiver.ids())]}"
                                   f"\n{gw_b.describe()}")
        self.assertEqual(receiver.ids(), set(ids))
        with receiver.lock:
            posts = list(receiver.posts)
        for _, headers, body in posts:
            got = parse_kv(body.decode())
            self.assertEqual((headers.get("x-function-status"), got.get("who"), got.get("call")),
                             ("200", "b", headers.get("x-call-id")), (headers, body))
            self.assertEqual(ids[int(got["name"])], got["call"], (headers, body))
        for call_id in ids:
            report = self.call(gw_b, call_id)
            self.assertEqual((report["status"], report["function_status"]), ("done", 200), report)
            if call_id in held:  # begun on A, begun again on B
                self.assertGreaterEqual(report["attempts"], 2, report)
            else:  # never begun on A
                self.assertEqual(report["attempts"], 1, report)


class UnreachableQueueTest(NatsCase):
    def test_a_nats_queue_that_cannot_be_reached_stops_the_gateway_with_one_line(self):
        tmp = self.make_tempdir("fastfn-nats-none-")
        fns = self.functions()
        port = harness.free_port()  # bound and closed: nothing listens there
        url = f"nats://127.0.0.1:{port}"
        result = run_gateway_cli(["--listen", f"127.0.0.1:{harness.free_port()}", str(fns)],
                                 env={"FN_QUEUE": url, "FN_SOCKET_BASE_DIR": os.path.join(tmp, "s")},
                                 cwd=tmp, timeout=60)
        self.assertEqual(result.returncode, 2, result.describe())
        lines = result.stderr_lines()
        self.assertEqual(len(lines), 1, result.describe())
        self.assertIn(url, lines[0], result.describe())
        self.assertNotIn("not supported", lines[0], result.describe())


def setUpModule():
    check_binaries()


if __name__ == "__main__":
    unittest.main()
