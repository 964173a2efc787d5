#!/usr/bin/env python3
"""Integration tests of the gateway's supervision (issue 16, items 1, 2 and the gateway's half of 6):
a hung watchdog (SIGSTOP) is noticed and routed around, and comes back after SIGCONT; on-demand
watchdogs live as long as the gateway, not as long as the connection thread that started them; the
gateway as PID 1 reaps orphans; a function that cannot run says so in /_fn/health and its route
answers 503 with the reason.

Real gateway and watchdog binaries (FASTFN_GATEWAY, FASTFN_WATCHDOG); every condition is polled with
a deadline and every process is killed at the end.
Run alone: python3 tests/integration/test_supervision_gateway.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import http.server  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from gateway_support import (Gateway, GatewayTestCase, check_binaries, cmdline,  # noqa: E402
                             function_entry, sockets_of)


def setUpModule():
    check_binaries()


def alive(pid: int) -> bool:
    stat = harness.proc_stat(pid)
    return stat is not None and stat.state != "Z"


class HealthCounter:
    """An HTTP server on loopback that answers GET /_/health with 200 and counts the probes: a
    socket from FN_RUNTIME_SOCKETS whose probes the test can see."""

    def __init__(self):
        counter = self
        self.probes = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == "/_/health":
                    with counter.lock:
                        counter.probes += 1
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return self.probes

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TimedStream:
    """`threads` threads sending GET `path` in a loop until stop(), each outcome recorded with the
    time its request was sent: (sent, status or exception text, socket index or None)."""

    def __init__(self, gw: Gateway, path: str, threads: int = 4, timeout: float = 20.0):
        self.gw, self.path, self.timeout = gw, path, timeout
        self.outcomes: list = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def loop(self) -> None:
        while not self.stopped.is_set():
            sent = time.monotonic()
            try:
                response = self.gw.get(self.path, timeout=self.timeout)
                index = response.headers.get("X-Fn-Runtime-Socket-Index")
                outcome = (sent, response.status, int(index) if index is not None else None)
            except Exception as exc:  # recorded; the stream goes on
                outcome = (sent, f"{type(exc).__name__}: {exc}", None)
            with self.lock:
                self.outcomes.append(outcome)

    def sent_after(self, moment: float) -> list:
        with self.lock:
            return [o for o in self.outcomes if o[0] >= moment]

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)


class HungWatchdogTest(GatewayTestCase):
    def test_item1_a_stopped_watchdog_is_marked_down_and_comes_back(self):
        counter = HealthCounter()
        self.addCleanup(counter.close)
        fns = self.functions()
        # A request stuck on the stopped watchdog ends at the gateway's deadline (3 s + 2 s).
        fns.python_http("twin", {"daemons": 2, "include_debug_headers": True, "timeout_ms": 3000})
        interval = 0.5
        gw = self.start_gateway(fns, wait_for=["twin"], env={
            "FN_HEALTH_INTERVAL": "500ms",
            "FN_RUNTIME_SOCKETS": json.dumps({"remote": [f"tcp:127.0.0.1:{counter.port}"]})})
        wait_until(lambda: counter.count() > 0, 10, message="the remote socket is never probed")
        hung = gw.watchdog_pid(gw.sockets("twin")[0])
        self.assertIsNotNone(hung)

        os.kill(hung, signal.SIGSTOP)
        self.addCleanup(lambda: harness.pid_alive(hung) and os.kill(hung, signal.SIGCONT))
        stopped_at = time.monotonic()
        stream = TimedStream(gw, "/twin")
        self.addCleanup(stream.stop)
        probes_before = counter.count()

        def down(health):
            sock = sockets_of(health, "twin")[0]
            return sock.get("up") is False and sock.get("last_error")

        health = self.wait_health(gw, down, 15, what="the stopped watchdog's socket never went down",
                                  interval=0.05)
        down_at = time.monotonic()
        print(f"\n  stopped socket down after {down_at - stopped_at:.2f}s "
              f"(interval {interval}s): {sockets_of(health, 'twin')[0].get('last_error')}", flush=True)
        # The bound is generous (a busy machine); the design is two intervals plus the probe's floor.
        self.assertLess(down_at - stopped_at, 10.0)
        self.assertIs(sockets_of(health, "twin")[1].get("up"), True, health)
        # Other sockets are probed meanwhile, once per interval each.
        wait_until(lambda: counter.count() >= probes_before + 3, 15,
                   message=lambda: f"the remote socket was probed {counter.count() - probes_before} "
                                   f"times while the watchdog was stopped\n{gw.describe()}")
        self.assertEqual(harness.proc_stat(hung).state, "T", "the watchdog must still be stopped")
        # After the switch, requests go to the other socket and succeed.
        wait_until(lambda: len(stream.sent_after(down_at)) >= 20, 30,
                   message=lambda: f"the stream stalled: {stream.sent_after(down_at)[-5:]}\n{gw.describe()}")
        after = stream.sent_after(down_at)
        self.assertEqual([o for o in after if o[1] != 200 or o[2] != 1], [],
                         f"requests sent after the switch must all be served by socket 1\n{gw.describe()}")

        os.kill(hung, signal.SIGCONT)
        continued_at = time.monotonic()
        self.wait_health(gw, lambda h: sockets_of(h, "twin")[0].get("up") is True, 15,
                         what="the watchdog never came back after SIGCONT")
        wait_until(lambda: any(o[1] == 200 and o[2] == 0 for o in stream.sent_after(continued_at)), 15,
                   message=lambda: f"socket 0 got no request after SIGCONT\n{gw.describe()}")
        stream.stop()
        self.assertEqual([s.get("restarts") for s in gw.sockets("twin")], [0, 0],
                         "a stopped watchdog is routed around, not restarted")


class OnDemandWatchdogLifeTest(GatewayTestCase):
    # Poco's connection threads (common/http_server.cpp: ThreadPool(2, max, 60)) retire once idle for
    # 60 s, when the pool housekeeps: on every 32nd thread it hands out. A watchdog started from such a
    # thread with PR_SET_PDEATHSIG gets SIGTERM when that thread exits. No setting shortens the 60 s.
    IDLE_THREAD_LIFE = 60.0
    CONNECTIONS = 64

    def open_served(self, gw: Gateway, count: int) -> list:
        """`count` keep-alive connections, each with one request answered, all held open: each
        occupies a connection thread of its own, opened one after the other."""
        connections = []
        for _ in range(count):
            conn = gw.connection(timeout=10.0)
            connections.append(conn)
            self.addCleanup(conn.close)
            self.assert_status(conn.request("GET", "/_fn/functions"), 200, gw)
        return connections

    def test_item2_on_demand_watchdogs_keep_their_pid_while_connection_threads_retire(self):
        fns = self.functions()
        fns.python_http("lazy")
        gw = self.start_gateway(fns, env={"FN_MIN_WARM": "0", "FN_IDLE_TTL": "600s"})
        # Many connection threads at once; the function is started from the newest of them.
        held = self.open_served(gw, self.CONNECTIONS - 1)
        starter = gw.connection(timeout=20.0)
        self.addCleanup(starter.close)
        first = self.json_of(starter.request("GET", "/lazy", timeout=20.0), gw)
        pid = gw.watchdog_pids("lazy")[0]
        # The starter's thread goes idle first (the others still serve), then all the others but one.
        starter.close()
        for conn in held:
            conn.close()
        # More than a minute with those threads idle: the watchdog must not move meanwhile.
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < self.IDLE_THREAD_LIFE + 2.0:
            self.assertTrue(alive(pid), f"watchdog {pid} died while idle\n{gw.describe()}")
            time.sleep(0.5)
        # Enough new connection threads at once for the pool to housekeep (retire idle threads).
        burst = self.open_served(gw, self.CONNECTIONS)
        for conn in burst:
            conn.close()
        self.assert_stays(lambda: alive(pid) and "stopping signal" not in gw.log(), 3.0,
                          lambda: f"the on-demand watchdog {pid} was stopped when its starting thread "
                                  f"retired\n{gw.describe()}")
        again = self.json_of(gw.get("/lazy"), gw)
        self.assertEqual(again["pid"], first["pid"], "the handler must be the one the first request started")
        sockets = sockets_of(gw.health(), "lazy")
        self.assertEqual([(s.get("pid"), s.get("restarts")) for s in sockets], [(pid, 0)], gw.describe())


class BrokenFunctionTest(GatewayTestCase):
    def test_item6_broken_function_reports_not_ready_with_its_reason(self):
        fns = self.functions()
        fns.add("nocmd", {"README": "no program"}, {"command": ["fastfn-no-such-program"]})
        fns.add("noexec", {"run.sh": "#!/bin/sh\necho ran\n"}, {"command": ["./run.sh"]})
        os.chmod(fns.path("noexec") / "run.sh", 0o644)
        fns.sh_env("fine")
        gw = self.start_gateway(fns, wait_for=["fine"])
        # Discovery makes a command inside the function's folder absolute.
        ends = {"nocmd": 'cannot execute "fastfn-no-such-program": No such file or directory',
                "noexec": 'noexec/run.sh": Permission denied'}

        def reported(health):
            return all(str((function_entry(health, name) or {}).get("error")).endswith(end)
                       for name, end in ends.items())

        health = self.wait_health(gw, reported, 15, what="the broken functions never said why")
        self.assertEqual(health.get("status"), "degraded", health)
        for name in ends:
            entry = function_entry(health, name)
            reason = entry.get("error")
            self.assertTrue(reason.startswith('cannot execute "'), entry)
            self.assertEqual((entry.get("ready"), entry.get("up")), (False, False), entry)
            self.assertEqual([s.get("last_error") for s in sockets_of(health, name)], [reason], health)
            data = self.assert_json_error(gw.get(f"/{name}"), 503, gw, function=name)
            self.assertEqual(data["error"], reason, data)
        self.assertEqual((function_entry(health, "fine").get("ready"), function_entry(health, "fine").get("error")),
                         (True, None), health)
        self.assert_status(gw.get("/fine"), 200, gw)

        # Fixed: the function starts without a reload (the check is made again at each retry).
        os.chmod(fns.path("noexec") / "run.sh", 0o755)
        self.wait_health(gw, lambda h: (function_entry(h, "noexec") or {}).get("ready") is True
                         and all(s.get("up") for s in sockets_of(h, "noexec")), 15,
                         what="the fixed function never became ready")
        self.assertEqual(gw.get("/noexec").text.strip(), "ran")

    def test_item6_broken_on_demand_function_is_not_ready_before_its_first_request(self):
        fns = self.functions()
        fns.add("nocmd", {"README": "no program"}, {"command": ["fastfn-no-such-program"]})
        gw = self.start_gateway(fns, env={"FN_MIN_WARM": "0"})
        reason = 'cannot execute "fastfn-no-such-program": No such file or directory'
        entry = function_entry(gw.health(), "nocmd")
        self.assertEqual((entry.get("ready"), entry.get("up"), entry.get("error")), (False, False, reason), entry)
        data = self.assert_json_error(gw.get("/nocmd"), 503, gw, function="nocmd")
        self.assertEqual(data["error"], reason, data)


class Pid1Test(GatewayTestCase):
    def test_item6_gateway_as_pid1_reaps_orphans(self):
        # A container's entrypoint is PID 1: when a watchdog is killed, its hot handler is
        # reparented to the gateway, exits (its stdin closed), and is a zombie forever unless the
        # gateway reaps it.
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare(1) for a pid namespace")
        fns = self.functions()
        fns.python_http("hot")
        gw = Gateway(fns)
        gw.argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *gw.argv]
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        gw.start()
        self.json_of(gw.get("/hot"), gw)

        def find(word):
            return [s.pid for s in gw.related_processes() if s.state != "Z" and word in cmdline(s.pid)]

        watchdog = wait_until(lambda: find("fastfn-watchdog"), 10, message=lambda: gw.describe())[0]
        handlers = wait_until(lambda: [p for p in find("handler.py") if harness.proc_stat(p).ppid == watchdog],
                              10, message=lambda: f"no handler under watchdog {watchdog}\n{gw.describe()}")
        gateway_pid = [s.pid for s in gw.related_processes() if "fastfn-gateway" in cmdline(s.pid)
                       and "unshare" not in cmdline(s.pid)][0]
        os.kill(watchdog, signal.SIGKILL)
        for handler in handlers:
            wait_until(lambda: harness.proc_stat(handler) is None, 15,
                       message=lambda: f"handler {handler} not reaped: {harness.proc_stat(handler)} "
                                       f"(gateway {gateway_pid})\n{gw.describe()}")
        # And the gateway still supervises: the watchdog comes back and serves.
        wait_until(lambda: gw.get("/hot").status == 200, 15, message=lambda: gw.describe())


if __name__ == "__main__":
    unittest.main(verbosity=2)
