#!/usr/bin/env python3
"""Integration tests of asynchronous calls (issue 18) on the embedded queue: POST
/async-function/NAME answers 202 once the call is committed, the gateway runs it later through its
own edge with the request intact and X-Call-Id added, retries 429/502/503/504 with backoff, reports
it at /_fn/calls/ID, posts the result to X-Callback-Url (retrying a receiver that fails), keeps
async.max_concurrency, and loses nothing to kill -9. Starts the real gateway (FASTFN_GATEWAY) with a
callback receiver of the test's own on loopback.
Run alone: python3 tests/integration/test_async.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import concurrent.futures  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import CallbackReceiver, GatewayTestCase, check_binaries, wait_until  # noqa: E402

# A CGI function driven by its query: it logs each run's X-Call-Id to STATE_DIR/runs.log, answers
# 503 while the call's attempt is at most ?fail=N, else ?status=S (200), with what it received.
PROBE = r'''import json, os, sys, urllib.parse
query = dict(urllib.parse.parse_qsl(os.environ.get("QUERY_STRING", "")))
call = os.environ.get("HTTP_X_CALL_ID", "")
log = os.path.join(os.environ["STATE_DIR"], "runs.log")
with open(log, "a") as f:
    f.write(call + "\n")
with open(log) as f:
    attempt = sum(1 for line in f if line.strip() == call)
body = sys.stdin.buffer.read().decode()
status = 503 if attempt <= int(query.get("fail", "0")) else int(query.get("status", "200"))
out = json.dumps({"call_id": call, "attempt": attempt, "method": os.environ["REQUEST_METHOD"],
                  "path_info": os.environ.get("PATH_INFO", ""), "query": os.environ["QUERY_STRING"],
                  "body": body, "custom": os.environ.get("HTTP_X_CUSTOM", "")})
sys.stdout.write(f"Status: {status} Probe\r\nContent-Type: application/json\r\n\r\n{out}\n")
'''

FAST_RETRIES = {"initial_retry_wait": "20ms", "max_retry_wait": "100ms", "max_retry_attempts": 4,
                "max_callback_attempts": 4}


def check_retried_statuses(case, gw) -> None:
    """Through `gw`'s probe function (FAST_RETRIES: 4 attempts): a call that fails twice is done
    on its third run, one that always fails is failed after its fourth, a 500 is final at once;
    the metrics count each run. `case` enqueues, waits and counts runs (AsyncTest's methods)."""
    recovers = case.enqueue(gw, "/async-function/probe?fail=2").headers["X-Call-Id"]
    gives_up = case.enqueue(gw, "/async-function/probe?fail=99").headers["X-Call-Id"]
    final = case.enqueue(gw, "/async-function/probe?status=500").headers["X-Call-Id"]
    report = case.wait_call(gw, recovers)
    case.assertEqual((report["status"], report["attempts"], report["function_status"]),
                     ("done", 3, 200), report)
    report = case.wait_call(gw, gives_up)
    case.assertEqual((report["status"], report["attempts"], report["function_status"]),
                     ("failed", 4, 503), report)
    case.assertIn("503", report["error"])
    report = case.wait_call(gw, final)
    case.assertEqual((report["status"], report["attempts"], report["function_status"]),
                     ("done", 1, 500), report)
    case.assertEqual((case.runs(recovers), case.runs(gives_up), case.runs(final)), (3, 4, 1))
    metrics = gw.metrics()
    case.assertEqual(metrics.get("fastfn_async_retries_total"), 2 + 3, metrics.text[:3000])
    case.assertEqual(metrics.get("fastfn_async_runs_total", code="503"), 2 + 4)
    case.assertEqual(metrics.get("fastfn_async_runs_total", code="500"), 1)
    case.assertEqual(metrics.get("fastfn_async_runs_total", code="200"), 1)


class ProbeCalls:
    """What the tests of both queues do with a gateway's calls: a TestCase mixin (not one itself,
    so that importing it runs no test). runs() counts the probe's runs in self.state."""

    def receiver(self, fail_first: int = 0) -> CallbackReceiver:
        receiver = CallbackReceiver(fail_first)
        self.addCleanup(receiver.close)
        return receiver

    def enqueue(self, gw, path: str, body: bytes = b"", headers=None, status: int = 202,
                connection=None):
        if connection is not None:
            response = connection.request("POST", path, body=body, headers=headers or {})
        else:
            response = gw.request("POST", path, body=body, headers=headers or {})
        self.assertEqual(response.status, status, f"{path}: {response!r}\n{gw.describe()}")
        if status == 202:
            self.assertTrue(response.headers.get("X-Call-Id"), repr(response))
        return response

    def call(self, gw, call_id: str) -> dict:
        return self.json_of(gw.get(f"/_fn/calls/{call_id}"), gw)

    def wait_call(self, gw, call_id: str, states=("done", "failed"), timeout: float = 60.0) -> dict:
        wait_until(lambda: self.call(gw, call_id)["status"] in states, timeout, interval=0.05,
                   message=lambda: f"call {call_id}: {self.call(gw, call_id)}\n{gw.describe()}")
        return self.call(gw, call_id)

    def runs(self, call_id: str) -> int:
        try:
            with open(os.path.join(self.state, "runs.log")) as f:
                return sum(1 for line in f if line.strip() == call_id)
        except FileNotFoundError:
            return 0


class AsyncTest(ProbeCalls, GatewayTestCase):
    def probe_gateway(self, async_config=None, env=None, extra=None):
        fns = self.functions()
        self.state = self.make_tempdir("fastfn-async-state-")
        config = {"format": "cgi", "cgi_headers": True, "env": {"STATE_DIR": self.state},
                  "async": {**FAST_RETRIES, **(async_config or {})}}
        fns.add("probe", {"handler.py": PROBE}, config)
        if extra:
            extra(fns)
        return self.start_gateway(fns, env=env, wait_for=["probe"])

    def test_a_call_is_accepted_at_once_and_run_later_with_its_request_intact(self):
        gw = self.probe_gateway()
        queued = self.enqueue(gw, "/async-function/probe/sub/path?x=1&y=two", b"the body",
                              {"X-Custom": "kept", "Content-Type": "text/plain"})
        call_id = queued.headers.get("X-Call-Id")
        self.assertTrue(call_id, repr(queued))
        self.assertEqual(queued.headers.get("Location"), f"/_fn/calls/{call_id}")
        self.assertEqual(queued.json()["call_id"], call_id)
        report = self.wait_call(gw, call_id)
        self.assertEqual((report["status"], report["function"], report["function_status"],
                          report["attempts"]), ("done", "probe", 200, 1), report)
        result = gw.get(f"/_fn/calls/{call_id}/result")
        self.assertEqual(result.status, 200, repr(result))
        self.assertEqual(result.headers.get("X-Function-Status"), "200")
        got = result.json()
        self.assertEqual((got["call_id"], got["method"], got["path_info"], got["query"], got["body"],
                          got["custom"]),
                         (call_id, "POST", "/sub/path", "x=1&y=two", "the body", "kept"), got)

    def test_the_clients_call_id_is_kept_and_a_repeated_post_queues_it_once(self):
        gw = self.probe_gateway()
        first = self.enqueue(gw, "/async-function/probe", b"1", {"X-Call-Id": "client-chosen.1"})
        self.assertEqual(first.headers.get("X-Call-Id"), "client-chosen.1")
        self.wait_call(gw, "client-chosen.1")
        again = self.enqueue(gw, "/async-function/probe", b"1", {"X-Call-Id": "client-chosen.1"})
        self.assertEqual(again.headers.get("X-Call-Id"), "client-chosen.1")
        # Another call after it, on the same queue: once it is done, the repeat had its chance.
        later = self.enqueue(gw, "/async-function/probe").headers.get("X-Call-Id")
        self.wait_call(gw, later)
        self.assertEqual(self.runs("client-chosen.1"), 1)
        bad = gw.request("POST", "/async-function/probe", headers={"X-Call-Id": "no spaces"})
        self.assert_json_error(bad, 400, gw)

    def test_unknown_functions_methods_and_bodies_are_refused_at_once(self):
        def extra(fns):
            fns.add("small", {"handler.py": PROBE},
                    {"format": "cgi", "cgi_headers": True, "max_body_bytes": 8,
                     "methods": ["POST"], "env": {"STATE_DIR": self.state}})
        gw = self.probe_gateway(extra=extra)
        self.assert_json_error(gw.request("POST", "/async-function/nothing-here"), 404, gw)
        self.assert_json_error(gw.request("POST", "/async-function/"), 404, gw)
        self.assert_json_error(gw.request("POST", "/async-function/small", body=b"x" * 9), 413, gw)
        refused = gw.request("GET", "/async-function/small")
        self.assert_json_error(refused, 405, gw)
        self.assertEqual(refused.headers.get("Allow"), "POST")
        bad_callback = gw.request("POST", "/async-function/probe",
                                  headers={"X-Callback-Url": "ftp://example.org/"})
        self.assert_json_error(bad_callback, 400, gw)
        self.assert_json_error(gw.get("/_fn/calls/unknown-id"), 404, gw)
        self.assertEqual(os.path.exists(os.path.join(self.state, "runs.log")), False)

    def test_paths_the_edge_answers_itself_are_no_calls_even_under_a_root_route(self):
        def extra(fns):
            fns.add("root", {"handler.py": PROBE},
                    {"format": "cgi", "cgi_headers": True, "routes": ["/"],
                     "env": {"STATE_DIR": self.state}})
        gw = self.probe_gateway(extra=extra)
        # Replayed from inside, these would reach /_fn/reload or the console as a local client.
        for path in ("/_fn/reload", "/_fn", "/console/", "/async-function/probe"):
            self.assert_json_error(gw.request("POST", "/async-function" + path), 404, gw)
        self.assertNotIn("reloaded", gw.log())
        root = self.enqueue(gw, "/async-function/anything/else").headers["X-Call-Id"]
        self.assertEqual(self.wait_call(gw, root)["function"], "root")

    def test_retried_statuses_are_run_again_until_the_last_attempt_others_are_final(self):
        check_retried_statuses(self, self.probe_gateway())

    def test_the_result_is_posted_to_the_callback_and_a_failing_receiver_retried(self):
        receiver = self.receiver(fail_first=2)
        gw = self.probe_gateway()
        call_id = self.enqueue(gw, "/async-function/probe?fail=1", b"payload",
                               {"X-Callback-Url": receiver.url + "/hook"}).headers["X-Call-Id"]
        wait_until(lambda: receiver.of(call_id), 60,
                   message=lambda: f"no callback: {self.call(gw, call_id)}\n{gw.describe()}")
        [(path, headers, body)] = receiver.of(call_id)
        self.assertEqual(path, "/hook")
        self.assertEqual(headers.get("x-function-status"), "200")
        self.assertEqual(headers.get("x-function-name"), "probe")
        self.assertEqual(headers.get("content-type"), "application/json")
        self.assertGreaterEqual(float(headers.get("x-duration-seconds")), 0.0)
        got = json.loads(body)
        self.assertEqual((got["call_id"], got["body"], got["attempt"]), (call_id, "payload", 2))
        wait_until(lambda: self.call(gw, call_id)["callback"]["state"] == "sent", 10)
        self.assertEqual(self.call(gw, call_id)["callback"]["attempts"], 3)
        self.assertEqual(gw.metrics().get("fastfn_async_callbacks_total", result="failed"), 2)

    def test_no_more_than_max_concurrency_calls_of_a_function_run_at_once(self):
        gate = self.gate()

        def extra(fns):
            fns.gate("gated", gate.dir, {"async": {"max_concurrency": 2}})
        gw = self.probe_gateway(extra=extra)
        ids = [self.enqueue(gw, f"/async-function/gated?name={i}").headers["X-Call-Id"]
               for i in range(5)]
        gate.wait_started(["0", "1"], describe=gw.describe)
        # Once a later call of another function is done, the dispatcher has looked again since
        # the two started: had the limit let more through, they would have started by then.
        self.wait_call(gw, self.enqueue(gw, "/async-function/probe").headers["X-Call-Id"])
        self.assertEqual(sorted(gate.started()), ["0", "1"])
        metrics = gw.metrics()
        self.assertEqual(metrics.get("fastfn_async_running", function="gated"), 2)
        self.assertEqual(metrics.get("fastfn_async_queued", function="gated"), 3)
        gate.release()
        for call_id in ids:
            self.assertEqual(self.wait_call(gw, call_id)["status"], "done")

    def test_kill_9_with_calls_queued_and_running_loses_none(self):
        gate = self.gate()
        receiver = self.receiver()
        queue = "sqlite:" + os.path.join(self.make_tempdir("fastfn-queue-"), "queue.db")
        fns = self.functions()
        fns.gate("gated", gate.dir, {"async": {"max_concurrency": 2}})
        gw = self.start_gateway(fns, env={"FN_QUEUE": queue}, wait_for=["gated"])
        ids = [self.enqueue(gw, f"/async-function/gated?name={i}",
                            headers={"X-Callback-Url": receiver.url + "/hook"}).headers["X-Call-Id"]
               for i in range(40)]
        gate.wait_started(["0", "1"], describe=gw.describe)
        gw.kill()  # SIGKILL, and every handler below it
        gate.release()
        again = self.start_gateway(fns, env={"FN_QUEUE": queue}, wait_for=["gated"])
        wait_until(lambda: receiver.ids() >= set(ids), 120,
                   message=lambda: f"callbacks missing: {sorted(set(ids) - receiver.ids())}\n"
                                   f"{again.describe()}")
        self.assertEqual(receiver.ids(), set(ids))
        for call_id in ids[:2]:  # running when the gateway died: run again, same id
            report = self.call(again, call_id)
            self.assertEqual((report["status"], report["attempts"]), ("done", 2), report)
        for call_id in ids[2:]:
            self.assertEqual(self.call(again, call_id)["attempts"], 1)

    def test_a_burst_of_a_thousand_calls_with_callbacks_is_accounted_for_by_id(self):
        receiver = self.receiver()
        gw = self.probe_gateway({"max_concurrency": 8})

        def post(batch):
            connection = gw.connection(timeout=60)
            try:
                return [connection.request("POST", "/async-function/probe", body=str(i).encode(),
                                           headers={"X-Callback-Url": receiver.url + "/hook"})
                        for i in batch]
            finally:
                connection.close()
        batches = [range(i, 1000, 8) for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = [r for batch in pool.map(post, batches) for r in batch]
        self.assertEqual([r.status for r in responses], [202] * 1000)
        ids = {r.headers.get("X-Call-Id") for r in responses}
        self.assertEqual(len(ids), 1000)
        wait_until(lambda: receiver.ids() >= ids, 300,
                   message=lambda: f"{len(ids - receiver.ids())} callbacks missing\n{gw.describe()}")
        self.assertEqual(receiver.ids(), ids)
        bodies = sorted(json.loads(body)["body"] for _, _, body in receiver.posts)
        self.assertEqual(bodies, sorted(str(i) for i in range(1000)))


def setUpModule():
    check_binaries()


if __name__ == "__main__":
    unittest.main()
