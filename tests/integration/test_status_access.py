#!/usr/bin/env python3
"""Who may read the gateway's own endpoints (issue 20): /_fn/* and /console/ answer loopback
clients by default, FN_STATUS_REMOTE=1 or a bearer FN_STATUS_TOKEN opens them, /_fn/health answers
every prober with its status only, and a Host header that does not name the gateway (a page in a
browser reading it through DNS rebinding) is refused, while function routes ignore Host.
Run alone: python3 tests/integration/test_status_access.py
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, check_binaries  # noqa: E402

TOKEN = "t0ken-for-the-test"


def setUpModule():
    check_binaries()


def non_loopback_address() -> str:
    done = subprocess.run(["hostname", "-I"], capture_output=True, text=True)
    for address in done.stdout.split():
        if re.fullmatch(r"[\d.]+", address) and not address.startswith("127."):
            return address
    return ""


class StatusAccessTest(GatewayTestCase):
    def start(self, env=None, on_all_addresses=False):
        fns = self.functions()
        fns.sh_env("hello")
        if not on_all_addresses:
            return self.start_gateway(fns, wait_for=["hello"], env=env or {})
        port = harness.free_port()
        return self.start_gateway(fns, wait_for=["hello"], listen=None, port=port,
                                  args=["--listen", f"0.0.0.0:{port}"], env=env or {})

    def remote(self, gw, path, headers=None, method="GET"):
        """`path` asked from this machine's non-loopback address: a remote client to the gateway."""
        address = non_loopback_address()
        if not address:
            self.skipTest("no non-loopback IPv4 address on this machine")
        with harness.HttpConnection(harness.Address.tcp(gw.port, address), timeout=10) as conn:
            return conn.request(method, path, headers=headers)

    def assert_refused(self, response, status, mentions):
        self.assertEqual(response.status, status, response)
        reason = json.loads(response.body)["error"]
        self.assertIn(mentions, reason, response)

    def test_a_host_that_does_not_name_the_gateway_is_refused_but_functions_ignore_host(self):
        gw = self.start()
        for host in (f"127.0.0.1:{gw.port}", f"localhost:{gw.port}", "app.localhost", "[::1]:1"):
            with self.subTest(host=host):
                self.assertEqual(gw.get("/_fn/functions", headers={"Host": host}).status, 200)
        for path in ("/_fn/functions", "/_fn/metrics", "/console/"):
            with self.subTest(path=path):
                self.assert_refused(gw.get(path, headers={"Host": "attacker.example"}), 403,
                                    "Host header")
        health = gw.get("/_fn/health", headers={"Host": "attacker.example:80"})
        self.assertEqual((health.status, json.loads(health.body)), (200, {"status": "ok"}), health)
        self.assertIn("functions", json.loads(gw.get("/_fn/health").body), "loopback sees it all")
        hello = gw.get("/hello", headers={"Host": "attacker.example"})
        self.assertEqual(hello.status, 200, "a function route does not check Host")

    def test_fn_status_hosts_adds_names(self):
        gw = self.start(env={"FN_STATUS_HOSTS": "gw.internal, Status.Example"})
        for host in ("gw.internal:8080", "status.example"):
            with self.subTest(host=host):
                self.assertEqual(gw.get("/_fn/functions", headers={"Host": host}).status, 200)
        self.assertEqual(gw.get("/_fn/functions", headers={"Host": "example"}).status, 403)

    def test_remote_clients_get_health_status_only_unless_opened(self):
        gw = self.start(on_all_addresses=True)
        for path in ("/_fn/functions", "/_fn/metrics", "/_fn/calls/x", "/console/"):
            with self.subTest(path=path):
                self.assert_refused(self.remote(gw, path), 403, "loopback clients only")
        health = self.remote(gw, "/_fn/health")
        self.assertEqual((health.status, json.loads(health.body)), (200, {"status": "ok"}), health)

    def test_fn_status_remote_opens_the_reads_not_the_console(self):
        gw = self.start(env={"FN_STATUS_REMOTE": "1"}, on_all_addresses=True)
        self.assertEqual(self.remote(gw, "/_fn/functions").status, 200)
        self.assertIn("functions", json.loads(self.remote(gw, "/_fn/health").body))
        self.assert_refused(self.remote(gw, "/console/"), 403, "FN_CONSOLE_REMOTE")

    def test_the_bearer_token_opens_everything_and_a_wrong_one_is_401(self):
        gw = self.start(env={"FN_STATUS_TOKEN": TOKEN}, on_all_addresses=True)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/_fn/functions", "/_fn/metrics", "/console/"):
            with self.subTest(path=path):
                self.assertEqual(self.remote(gw, path, headers=bearer).status, 200)
        rebound = dict(bearer, Host="attacker.example")
        self.assertEqual(gw.get("/_fn/functions", headers=rebound).status, 200,
                         "a page cannot know the token, so it needs no Host check")
        missing = self.remote(gw, "/_fn/functions")
        self.assert_refused(missing, 401, "FN_STATUS_TOKEN")
        self.assertEqual(missing.headers.get("WWW-Authenticate"), 'Bearer realm="fastfn"', missing)
        self.assert_refused(self.remote(gw, "/_fn/functions", headers={"Authorization": "Bearer no"}),
                            401, "not FN_STATUS_TOKEN")
        self.assert_refused(gw.get("/_fn/functions", headers={"Authorization": "Bearer no"}), 401,
                            "not FN_STATUS_TOKEN")
        self.assertEqual(gw.get("/_fn/functions").status, 200, "loopback needs no token")


if __name__ == "__main__":
    unittest.main(verbosity=2)
