#!/usr/bin/env python3
"""Integration tests of functions started on demand (min-warm 0, worker_pool.min_warm 0): the gateway
starts no watchdog for them until their first request, parks them (watchdog and handlers stopped)
after idle-ttl without a request, and starts them again on the next one.

Real gateway and watchdog binaries on loopback (FASTFN_GATEWAY, FASTFN_WATCHDOG); processes are found
through /proc; every condition is polled with a deadline and every process is killed at the end.
Run alone: python3 tests/integration/test_gateway_on_demand.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import concurrent.futures  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import wait_until  # noqa: E402
from gateway_support import (Gateway, GatewayTestCase, check_binaries, cmdline,  # noqa: E402
                             failing_watchdog, function_entry, sockets_of)


def setUpModule():
    check_binaries()


ON_DEMAND = {"FN_MIN_WARM": "0", "FN_IDLE_TTL": "1s"}


class OnDemandCase(GatewayTestCase):
    def watchdogs(self, gw: Gateway) -> list[int]:
        """Pids of the gateway's live watchdog processes."""
        return [s.pid for s in gw.related_processes()
                if s.pid != gw.pid and "fastfn-watchdog" in cmdline(s.pid)]

    def everything_but_the_gateway(self, gw: Gateway) -> list[int]:
        return [s.pid for s in gw.related_processes() if s.pid != gw.pid]

    def entry(self, gw: Gateway, name: str) -> dict:
        return function_entry(gw.health(), name) or {}

    def wait_parked(self, gw: Gateway, name: str, timeout: float = 15.0) -> None:
        """Waits until `name` is cold and none of its processes is left."""
        wait_until(lambda: self.entry(gw, name).get("warm") is False and not self.everything_but_the_gateway(gw),
                   timeout, interval=0.05,
                   message=lambda: f"{name} was not parked: {self.entry(gw, name)}; processes "
                                   f"{self.everything_but_the_gateway(gw)}\n{gw.describe()}")

    def parked_lines(self, gw: Gateway) -> int:
        return sum("function parked" in line for line in gw.log().splitlines())


class StartOnDemandTest(OnDemandCase):
    def test_cold_function_runs_nothing_until_its_first_request(self):
        fns = self.functions()
        fns.python_http("hot")
        gw = self.start_gateway(fns, env=ON_DEMAND)
        health = gw.health()
        entry = function_entry(health, "hot")
        self.assertEqual((entry.get("up"), entry.get("warm"), entry.get("start")), (True, False, "on_demand"), entry)
        self.assertEqual(health.get("status"), "ok", "a cold function is not a degraded one")
        self.assertEqual([(s.get("state"), s.get("pid")) for s in sockets_of(health, "hot")], [("cold", None)])
        self.assertEqual(self.everything_but_the_gateway(gw), [], "a cold function must run no process")

        first = self.json_of(gw.get("/hot"), gw)
        self.assertEqual(len(self.watchdogs(gw)), 1, gw.describe())
        self.assertTrue(self.entry(gw, "hot").get("warm"))
        self.assertEqual(self.json_of(gw.get("/hot"), gw)["pid"], first["pid"],
                         "once started, the function stays hot between requests")

    def test_idle_function_is_parked_and_started_again_by_the_next_request(self):
        fns = self.functions()
        fns.python_http("hot")
        gw = self.start_gateway(fns, env=ON_DEMAND)
        first = self.json_of(gw.get("/hot"), gw)
        self.wait_parked(gw, "hot")
        self.assertIn("function parked name=hot", gw.log())
        self.assertEqual([s.get("state") for s in sockets_of(gw.health(), "hot")], ["cold"])

        second = self.json_of(gw.get("/hot"), gw)
        self.assertNotEqual(second["pid"], first["pid"], "the parked handler must have been stopped")
        self.assertEqual([s.get("restarts") for s in sockets_of(gw.health(), "hot")], [0],
                         "parking is not a crash: no restart may be counted")
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait(20), 0, gw.describe())
        self.assertEqual(self.everything_but_the_gateway(gw), [], "SIGTERM must stop what was started")

    def test_a_request_right_after_parking_is_served_by_a_new_watchdog(self):
        # The parked watchdog drains while the request arrives: the request must wait for the new one,
        # never reach the one that is going away.
        fns = self.functions()
        fns.python_http("hot")
        gw = self.start_gateway(fns, env=ON_DEMAND)
        for round_ in range(1, 5):
            self.json_of(gw.get(f"/hot?round={round_}"), gw)
            wait_until(lambda: self.parked_lines(gw) >= round_, 15.0, interval=0.005,
                       message=lambda: f"not parked a {round_}th time\n{gw.describe()}")
            self.json_of(gw.get(f"/hot?after_park={round_}"), gw)
        self.assertEqual([s.get("restarts") for s in sockets_of(gw.health(), "hot")], [0], gw.describe())

    def test_concurrent_first_requests_start_each_daemon_once(self):
        fns = self.functions()
        fns.python_http("hot", {"daemons": 2})
        gw = self.start_gateway(fns, env=ON_DEMAND)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: gw.get(f"/hot?i={i}", timeout=20).status, range(32)))
        self.assertEqual(statuses, [200] * 32, gw.describe())
        started = [line for line in gw.log().splitlines() if "watchdog started function=hot" in line]
        self.assertEqual(len(started), 2, "one start per daemon:\n" + "\n".join(started))
        self.assertEqual(len(self.watchdogs(gw)), 2, gw.describe())

    def test_function_min_warm_overrides_the_gateway_default(self):
        fns = self.functions()
        fns.python_http("warm", {"worker_pool": {"min_warm": 1}})
        fns.python_http("cold")
        fns.python_http("lazy", {"worker_pool": {"min_warm": 0, "idle_ttl_seconds": 1}})
        gw = self.start_gateway(fns, env={"FN_MIN_WARM": "0"}, wait_for=["warm"])
        self.assertEqual(self.entry(gw, "cold").get("warm"), False)
        self.json_of(gw.get("/lazy"), gw)
        wait_until(lambda: self.entry(gw, "lazy").get("warm") is False, 15.0, interval=0.05,
                   message=lambda: f"lazy was not parked after its idle_ttl_seconds\n{gw.describe()}")
        self.assertTrue(self.entry(gw, "warm").get("warm"), "min_warm 1 must never be parked")
        self.assertNotIn("function parked name=warm", gw.log())

        gw2 = self.start_gateway(fns, env={"FN_MIN_WARM": None}, wait_for=["warm", "cold"])
        self.assertEqual(self.entry(gw2, "lazy").get("warm"), False,
                         "worker_pool.min_warm 0 must win over the default of 1")

    def test_cold_function_whose_watchdog_cannot_start_answers_503(self):
        wrapper, flag = failing_watchdog(self.make_tempdir())
        open(flag, "w").close()
        fns = self.functions()
        fns.python_http("broken")
        gw = self.start_gateway(fns, env={**ON_DEMAND, "FN_WATCHDOG_BIN": wrapper})
        response = gw.get("/broken", timeout=20)
        body = self.json_of(response, gw, status=503)
        self.assertEqual(body.get("error"), "runtime unavailable", body)
        self.assertEqual(body.get("function"), "broken", body)


if __name__ == "__main__":
    unittest.main()
