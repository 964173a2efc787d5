#!/usr/bin/env python3
"""Integration tests of `fastfn-watchdog --format server` (issue 17): apps that listen on a port or
socket of their own, started, routed by their concurrency and scaled like Passenger.

The app is tests/fixtures/server/app.py, an ordinary ThreadingHTTPServer app, and Flask under
Debian's gunicorn; gated routes block until a file the test creates appears, so the tests poll
conditions and never guess timings.
Run alone: python3 tests/integration/test_watchdog_server.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from hot_support import PYTHON, Gate, HotTestCase, live_children, metrics  # noqa: E402

APP = str(harness.FIXTURES_DIR / "server" / "app.py")
SERVER = ["--format", "server", "--name", "app"]
GUNICORN = shutil.which("gunicorn", path="/usr/bin:/bin")
FLASK_APP = harness.FIXTURES_DIR / "server" / "flask_app.py"


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")


class ServerTestCase(HotTestCase):
    def start_server(self, options=(), command=None, **kwargs) -> harness.Watchdog:
        wd = self.start_watchdog(list(command or [PYTHON, APP]), [*SERVER, *options], **kwargs)
        # Not healthy yet (an app that fails at start): the watchdog listens all the same.
        wait_until(lambda: wd.address.accepts_connections(), 15.0,
                   message=lambda: f"the watchdog does not listen\n{wd.describe()}")
        return wd


class ServingTest(ServerTestCase):
    """The app gets where to listen, and requests and answers go through unchanged."""

    def test_app_listens_on_the_port_it_is_given_and_serves_through_the_watchdog(self):
        wd = self.start_server()
        body = self.json_of(wd.get("/pid"), wd)
        self.assertIn(body["pid"], live_children(wd), f"the app must be the watchdog's child: {body}")
        self.assertEqual(body["env"]["HOST"], "127.0.0.1")
        self.assertTrue(body["env"]["PORT"].isdigit(), body)
        response = wd.get("/pid")
        self.assertTrue(response.headers.get("X-Fn-Request-Id"), response)
        self.assertEqual(self.json_of(response, wd)["pid"], body["pid"], "one process serves both")

    def test_bodies_both_ways_small_large_and_chunked(self):
        wd = self.start_server()
        for size in (0, 10, 70_000, 3 * harness.MIB):
            data = os.urandom(size)
            response = wd.post("/echo", data, timeout=30.0)
            self.assert_status(response, 200, wd, f"{size} bytes:")
            self.assertEqual(response.body, data, f"{size} bytes came back changed")
        chunked = wd.get("/chunked")
        self.assertEqual(chunked.body, b"first\nsecond\n", chunked)

    def test_the_app_sees_the_clients_headers_and_x_forwarded_for(self):
        wd = self.start_server()
        headers = self.json_of(wd.get("/headers", headers={"X-Custom": "yes", "Host": "example.test"}), wd)
        self.assertEqual(headers.get("x-custom"), "yes", headers)
        self.assertEqual(headers.get("host"), "example.test", headers)
        self.assertEqual(headers.get("x-forwarded-for"), "127.0.0.1", headers)
        self.assertEqual(headers.get("x-forwarded-host"), "example.test", headers)
        self.assertTrue(headers.get("x-fn-request-id"), headers)

    def test_port_in_the_arguments_is_replaced_without_a_shell(self):
        wd = self.start_server(command=[PYTHON, APP, "--port", "$PORT", "--tag=${HOST}"])
        body = self.json_of(wd.get("/pid"), wd)
        self.assertEqual(body["argv"], ["--port", body["env"]["PORT"], "--tag=127.0.0.1"], body)

    def test_listen_socket_gives_a_private_unix_socket(self):
        wd = self.start_server(["--listen-socket"])
        env = self.json_of(wd.get("/pid"), wd)["env"]
        self.assertIsNone(env["PORT"], env)
        self.assertEqual(env["FN_LISTENER"], "unix:" + env["SOCKET"], env)
        folder = os.path.dirname(env["SOCKET"])
        self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700, "the socket's folder is private")
        wd.stop()
        self.assertFalse(os.path.exists(folder), "the socket's folder goes with the app")


class ScalingTest(ServerTestCase):
    """Passenger's rules: least busy below max-concurrency, spawn when all are full, then queue."""

    def test_one_process_takes_requests_up_to_its_max_concurrency(self):
        wd = self.start_server(["--max-concurrency", "4", "--max-instances", "2"])
        gate = Gate(self)
        pool = self.executor(4)
        names = [f"g{i}" for i in range(4)]
        futures = [pool.submit(wd.get, gate.path(name), timeout=30.0) for name in names]
        started = gate.wait_started(names, wd)
        self.assertEqual(len(set(started.values())), 1, f"4 requests at once fit one process: {started}")
        self.assertEqual(len(live_children(wd)), 1, "no second process while the first has room")
        gate.release()
        for future in futures:
            self.assert_status(self.result(future, wd, "gated"), 200, wd)

    def test_a_full_process_makes_the_pool_spawn_and_then_queue(self):
        wd = self.start_server(["--max-concurrency", "1", "--max-instances", "2"])
        gate = Gate(self)
        pool = self.executor(3)
        first = [pool.submit(wd.get, gate.path(name), timeout=30.0) for name in ("a", "b")]
        started = gate.wait_started(["a", "b"], wd)
        self.assertEqual(len(set(started.values())), 2, f"each full process makes another: {started}")
        third = pool.submit(wd.get, gate.path("c"), timeout=30.0)
        self.wait_metric(wd, "fastfn_watchdog_requests_queued", 1)
        self.assertEqual(len(live_children(wd)), 2, "max-instances holds")
        gate.release("a")
        self.assert_status(self.result(first[0], wd, "a"), 200, wd)
        self.assertEqual(gate.wait_started(["c"], wd)["c"], started["a"],
                         "the queued request takes the slot that freed")
        gate.release()
        for future in (first[1], third):
            self.assert_status(self.result(future, wd, "gated"), 200, wd)

    def test_idle_processes_beyond_min_instances_stop(self):
        wd = self.start_server(["--min-instances", "0", "--idle-timeout", "200ms"])
        pid = self.pid_of(wd.get("/pid"), wd)
        self.wait_gone([pid], wd)
        self.wait_metric(wd, "fastfn_watchdog_kills_total", 1, reason="idle")
        self.assertEqual(self.json_of(wd.get("/pid"), wd)["served"], 1, "a fresh process serves again")

    def test_max_requests_and_sighup_replace_the_app(self):
        """--max-requests and SIGHUP recycle apps as they do hot handlers: a new process serves,
        the old one is stopped, nothing is refused."""
        wd = self.start_server(["--max-requests", "2"])
        first = self.pid_of(wd.get("/pid"), wd)
        self.assertEqual(self.pid_of(wd.get("/pid"), wd), first)
        second = self.pid_of(wd.get("/pid"), wd)
        self.assertNotEqual(second, first, "served 2 requests: the app must be replaced")
        self.wait_gone([first], wd)
        self.wait_metric(wd, "fastfn_watchdog_kills_total", 1, reason="max_requests")
        wd.send_signal(signal.SIGHUP)
        self.wait_gone([second], wd)
        third = self.pid_of(wd.get("/pid"), wd)
        self.assertNotIn(third, (first, second), "SIGHUP: a new app serves")


class FailureTest(ServerTestCase):
    """Start failures back off with the reason; slow requests get 504; SIGTERM drains."""

    def test_an_app_that_exits_at_start_is_503_with_its_reason(self):
        wd = self.start_server(command=[PYTHON, APP, "--exit-at-start"], wait_healthy=False)
        wait_until(lambda: wd.get("/_/health").status == 503, 15.0,
                   message=lambda: f"health never 503\n{wd.describe()}")
        data = self.assert_json_error(wd.get("/pid"), 503, wd, "app")
        self.assertIn("exited before it listened", data["error"])
        self.assertIn("exit code 3", data["error"])

    def test_an_app_that_never_listens_fails_at_start_timeout(self):
        wd = self.start_server(["--start-timeout", "300ms"], command=[PYTHON, APP, "--never-listen"],
                               wait_healthy=False)
        wait_until(lambda: metrics(wd).get("fastfn_watchdog_kills_total", reason="start_failed") >= 2,
                   30.0, message=lambda: f"no start failures counted\n{wd.describe()}")
        data = self.assert_json_error(wd.get("/pid"), 503, wd, "app")
        self.assertIn("did not listen", data["error"])

    # The exec timeout bounds the whole answer, queue wait included: 3 s, not less, so that a
    # loaded machine's Python app still answers /pid within it; the gated request never answers.
    def test_exec_timeout_504_keeps_a_concurrent_process(self):
        wd = self.start_server(["--max-concurrency", "4", "--exec-timeout", "3s"])
        gate = Gate(self)
        pid = self.pid_of(wd.get("/pid"), wd)
        self.assert_json_error(wd.get(gate.path("slow"), timeout=30.0), 504, wd, "app")
        self.assertEqual(self.pid_of(wd.get("/pid"), wd), pid,
                         "a process serving others is not killed for one slow request")

    def test_exec_timeout_replaces_a_process_that_serves_one_at_a_time(self):
        wd = self.start_server(["--exec-timeout", "3s"])
        gate = Gate(self)
        pid = self.pid_of(wd.get("/pid"), wd)
        self.assert_json_error(wd.get(gate.path("slow"), timeout=30.0), 504, wd, "app")
        self.wait_gone([pid], wd)
        self.wait_metric(wd, "fastfn_watchdog_kills_total", 1, reason="timeout")
        self.assertNotEqual(self.pid_of(wd.get("/pid"), wd), pid)

    def test_an_app_that_dies_mid_request_is_502_and_replaced(self):
        wd = self.start_server()
        pid = self.pid_of(wd.get("/pid"), wd)
        self.assert_json_error(wd.get("/exit"), 502, wd, "app")
        self.wait_gone([pid], wd)
        self.assertNotEqual(self.pid_of(wd.get("/pid"), wd), pid)

    def test_sigterm_lets_the_request_in_flight_finish(self):
        wd = self.start_server()
        gate = Gate(self)
        future = self.executor(1).submit(wd.get, gate.path("drain"), timeout=30.0)
        (pid,) = gate.wait_started(["drain"], wd).values()
        wd.send_signal(signal.SIGTERM)
        self.wait_log(wd, r"stopping signal=")  # draining now: new connections are refused
        gate.release()
        self.assert_status(self.result(future, wd, "drain"), 200, wd)
        self.assertEqual(wd.wait(15.0), 0, wd.describe())
        self.assertFalse(harness.pid_alive(pid), "the app stops with the watchdog")


class OpenFaasTest(ServerTestCase):
    """An of-watchdog image's environment, unchanged: mode=http, fprocess, upstream_url."""

    def test_mode_http_with_upstream_url_proxies_to_the_apps_own_port(self):
        port = harness.free_port()
        wd = self.start_watchdog(None, [], env={"mode": "http", "fprocess": f"{PYTHON} {APP} --port {port}",
                                                "upstream_url": f"http://127.0.0.1:{port}",
                                                "exec_timeout": "0", "function_name": "app"})
        body = self.json_of(wd.get("/pid"), wd)
        self.assertEqual(body["argv"], ["--port", str(port)], body)
        self.assertIsNone(body["env"]["PORT"], "with upstream_url the app picks its own port")


@unittest.skipUnless(GUNICORN, "gunicorn (Debian's package; scripts/setup installs it) is missing")
class GunicornFlaskTest(ServerTestCase):
    """An unmodified Flask app under gunicorn's sync workers, which close every connection."""

    def test_flask_under_gunicorn_serves_and_scales_to_max_instances(self):
        command = [GUNICORN, "--bind", "127.0.0.1:$PORT", "--workers", "1",
                   "--chdir", str(FLASK_APP.parent), "flask_app:app"]
        wd = self.start_server(["--max-instances", "2"], command=command)
        gate = Gate(self)
        pool = self.executor(2)
        futures = [pool.submit(wd.get, gate.path(name), timeout=30.0) for name in ("a", "b")]
        started = gate.wait_started(["a", "b"], wd)
        self.assertEqual(len(set(started.values())), 2, f"two sync apps for two requests: {started}")
        gate.release()
        for future in futures:
            self.assert_status(self.result(future, wd, "gated"), 200, wd)
        for _ in range(5):
            self.assertEqual(wd.post("/echo", b"flask").body, b"flask")


if __name__ == "__main__":
    unittest.main()
