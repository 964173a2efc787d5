#!/usr/bin/env python3
"""The metrics of issue 20, against the real binaries, Debian's promtool and a real Prometheus.

- `promtool check metrics` says nothing about a watchdog's /_/metrics (formats cgi, http, server)
  or the gateway's /_fn/metrics, each after traffic that includes errors.
- The gateway's /_fn/metrics carries every watchdog's series with `function` and `index`, the
  counters are there at 0 before the first request, and a hung watchdog (SIGSTOP) costs one scrape
  deadline and shows as fastfn_gateway_watchdog_scrape_ok 0.
- A real Prometheus (/usr/bin/prometheus, scrape_interval 1s) scrapes a gateway; once it has
  counted every request sent, each query of docs/OPERATIONS.md (read from the document, so the two
  cannot drift) gives a sensible answer: the error ratio is errors / total.

Run alone: python3 tests/integration/test_metrics.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, check_binaries  # noqa: E402
from harness import wait_until  # noqa: E402
from hot_support import PYTHON, hot_handler_command  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
OPERATIONS_MD = harness.REPO_ROOT / "docs" / "OPERATIONS.md"
EXIT_CODE_SH = str(harness.CGI_FIXTURES_DIR / "exit_code.sh")
APP_PY = str(harness.FIXTURES_DIR / "server" / "app.py")
# A cgi function that fails (exit 1: 500) when its query string starts with "fail".
FAILING_SH = '#!/bin/sh\ncase "$QUERY_STRING" in fail*) echo boom; exit 1;; esac\necho ok\n'


def setUpModule():
    check_binaries()
    for tool in (PROMTOOL, PROMETHEUS):
        if not os.access(tool, os.X_OK):
            raise unittest.SkipTest(f"{tool} is not installed (Debian's prometheus package; scripts/setup)")


def promtool_problems(text: str) -> str:
    """What `promtool check metrics` says of `text`: "" when it is clean."""
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=30)
    said = (result.stdout + result.stderr).strip()
    if result.returncode != 0 and not said:
        said = f"promtool exited {result.returncode}"
    return said


def operations_queries() -> dict[str, str]:
    """Each "### Title" of docs/OPERATIONS.md's Queries section -> the ```promql block under it."""
    text = OPERATIONS_MD.read_text(encoding="utf-8")
    section = text.split("\n## Queries\n", 1)[1].split("\n## ", 1)[0]
    return {title.strip(): query.strip() for title, query in
            re.findall(r"^### (.+?)\n.*?```promql\n(.*?)```", section, re.S | re.M)}


class PromtoolTest(GatewayTestCase):
    """promtool check metrics finds nothing to say, after traffic with errors."""

    def assert_clean(self, text: str, what: str, describe) -> None:
        self.assertIn("# TYPE", text, f"{what} has no metrics\n{describe()}")
        problems = promtool_problems(text)
        self.assertEqual(problems, "", f"promtool check metrics on {what}:\n{problems}\n{text[:4000]}")

    def test_the_checker_does_complain(self):
        # So that a promtool that says nothing of anything cannot pass the tests below.
        self.assertNotEqual(promtool_problems("# TYPE x counter\nx 1\nx 2\n"), "")
        self.assertNotEqual(promtool_problems("# HELP a_total A.\n# TYPE a_total gauge\na_total 1\n"), "")

    def test_watchdog_cgi(self):
        wd = self.start_watchdog([EXIT_CODE_SH], ["--name", "cgi"])
        self.assertEqual(wd.get("/").status, 200)
        self.assertEqual(wd.get("/?code=1").status, 500)
        self.assert_clean(wd.get("/_/metrics").text, "the cgi watchdog's /_/metrics", wd.describe)

    def test_watchdog_http(self):
        wd = self.start_watchdog(hot_handler_command(), ["--format", "http", "--name", "hot"])
        self.assertEqual(wd.get("/pid").status, 200)
        self.assertEqual(wd.get("/exit").status, 502)
        self.assert_clean(wd.get("/_/metrics").text, "the http watchdog's /_/metrics", wd.describe)

    def test_watchdog_server(self):
        wd = self.start_watchdog([PYTHON, APP_PY], ["--format", "server", "--name", "app"])
        self.assertEqual(wd.get("/pid").status, 200)
        self.assertGreaterEqual(wd.get("/exit").status, 500)
        self.assert_clean(wd.get("/_/metrics").text, "the server watchdog's /_/metrics", wd.describe)

    def test_gateway(self):
        fns = self.functions()
        fns.add("fails", {"handler.sh": FAILING_SH})
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["fails", "hot"],
                                env={"FN_RUNTIME_DAEMONS": "sh=2"})
        for path, status in (("/fails", 200), ("/fails?fail", 500), ("/hot", 200), ("/nothing", 404)):
            self.assertEqual(gw.get(path).status, status, gw.describe())
        self.assert_clean(gw.get("/_fn/metrics").text, "the gateway's /_fn/metrics", gw.describe)


class GatewayWatchdogSeriesTest(GatewayTestCase):
    def test_watchdog_series_with_function_and_index_and_counters_at_zero(self):
        fns = self.functions()
        fns.add("fails", {"handler.sh": FAILING_SH})
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["fails", "hot"], env={"FN_RUNTIME_DAEMONS": "sh=2"})
        m = gw.metrics()
        # Before any request: the counters the error ratio needs are there, at 0.
        for code in ("200", "500", "502", "503", "504", "429"):
            for fn in ("fails", "hot"):
                with self.subTest(code=code, function=fn):
                    self.assertTrue(m.has("fastfn_gateway_requests_total", function=fn, code=code, method="GET"),
                                    m.text[:3000])
                    self.assertEqual(m.get("fastfn_gateway_requests_total", function=fn, code=code), 0)
                    self.assertTrue(m.has("fastfn_watchdog_requests_total", function=fn, index="0", code=code,
                                          method="POST"), m.text[-6000:])
        self.assertTrue(m.has("fastfn_gateway_requests_total", code="404", method="GET"))
        self.assertEqual(m.get("fastfn_gateway_requests_total", code="404"), 0)
        self.assertTrue(m.has("fastfn_watchdog_kills_total", function="hot", index="0", reason="timeout"))
        self.assertTrue(m.has("fastfn_watchdog_kills_total", function="hot", index="0", reason="exited"))
        self.assertTrue(m.has("fastfn_watchdog_kills_total", function="fails", index="1", reason="timeout"))
        # Every watchdog answered, each with its index; its process metrics are its own, renamed.
        for fn, index in (("fails", "0"), ("fails", "1"), ("hot", "0")):
            with self.subTest(function=fn, index=index):
                self.assertEqual(m.get("fastfn_gateway_watchdog_scrape_ok", function=fn, index=index), 1, m.text[-3000:])
                self.assertGreater(m.get("fastfn_watchdog_process_resident_memory_bytes", function=fn, index=index), 0)
                self.assertTrue(m.has("fastfn_watchdog_build_info", function=fn, index=index))
                self.assertTrue(m.has("fastfn_watchdog_requests_in_flight", function=fn, index=index))
        self.assertTrue(m.has("fastfn_watchdog_requests_queued", function="hot", index="0"))
        self.assertTrue(m.has("fastfn_watchdog_processes", function="hot", index="0", state="idle"))
        self.assertEqual(m.get("fastfn_watchdog_spawns_total", function="hot", index="0"), 1)
        self.assertFalse(m.has("process_resident_memory_bytes", function="hot"), "a watchdog's process_* "
                         "series must not mix with the gateway's own")
        self.assertEqual(sum(1 for s in m.samples if s[0] == "process_resident_memory_bytes"), 1)
        self.assertEqual(m.text.count("# TYPE fastfn_watchdog_requests_total "), 1)

        # Traffic: each request is in the gateway's series and in its watchdog's.
        for _ in range(3):
            self.assertEqual(gw.get("/hot").status, 200)
        self.assertEqual(gw.post("/fails?fail", b"x").status, 500)
        self.assertEqual(gw.request("PROPFIND", "/nothing").status, 404)
        m = self.wait_metric(gw, "fastfn_watchdog_requests_total", 3, function="hot", code="200", method="GET")
        self.assertEqual(m.get("fastfn_gateway_requests_total", function="hot", code="200", method="GET"), 3)
        self.assertEqual(m.get("fastfn_gateway_requests_total", function="fails", code="500", method="POST"), 1)
        self.assertEqual(m.get("fastfn_watchdog_requests_total", function="fails", code="500", method="POST"), 1)
        self.assertEqual(m.get("fastfn_gateway_requests_total", code="404", method="other"), 1, m.text[:4000])

    def test_a_hung_watchdog_costs_one_deadline_and_says_so(self):
        fns = self.functions()
        fns.add("fails", {"handler.sh": FAILING_SH})
        gw = self.start_gateway(fns, wait_for=["fails"], env={"FN_RUNTIME_DAEMONS": "sh=2"})
        pids = gw.watchdog_pids("fails")
        self.assertEqual(len(pids), 2, gw.describe())
        hung = gw.sockets("fails")[1]
        hung_pid = gw.watchdog_pid(hung)
        os.kill(hung_pid, signal.SIGSTOP)
        self.addCleanup(os.kill, hung_pid, signal.SIGCONT)
        started = time.monotonic()
        m = gw.metrics()  # its own 5 s timeout: the scrape's budget is 3 s
        took = time.monotonic() - started
        self.assertLess(took, 5.0)
        index = str(hung["index"])
        other = "0" if index == "1" else "1"
        self.assertEqual(m.get("fastfn_gateway_watchdog_scrape_ok", function="fails", index=index), 0, m.text[-2000:])
        self.assertFalse(m.has("fastfn_watchdog_requests_total", function="fails", index=index))
        self.assertEqual(m.get("fastfn_gateway_watchdog_scrape_ok", function="fails", index=other), 1)
        self.assertTrue(m.has("fastfn_watchdog_requests_total", function="fails", index=other))
        self.assertEqual(promtool_problems(m.text), "")
        os.kill(hung_pid, signal.SIGCONT)
        self.wait_metric(gw, "fastfn_gateway_watchdog_scrape_ok", 1, function="fails", index=index)


class Prometheus:
    """/usr/bin/prometheus scraping one gateway every second, in a temp dir of its own."""

    def __init__(self, gateway_port: int):
        self.dir = tempfile.mkdtemp(prefix="fastfn-prometheus-")
        self.port = harness.free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: fastfn\n    metrics_path: /_fn/metrics\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{gateway_port}']\n")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-30:])
        except OSError:
            return ""

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def query(self, promql: str) -> list:
        """The result vector of an instant query (now); raises when Prometheus refuses it."""
        status, body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        data = json.loads(body or b"{}")
        if status != 200 or data.get("status") != "success":
            raise AssertionError(f"query {promql!r}: {status} {body[:500]!r}")
        if data["data"]["resultType"] != "vector":
            raise AssertionError(f"query {promql!r} is not an instant vector: {data}")
        return data["data"]["result"]

    def value(self, promql: str) -> float:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else math.nan


class PrometheusQueriesTest(GatewayTestCase):
    OK, ERRORS, UNROUTED = 30, 10, 5

    def test_operations_queries_against_a_real_prometheus(self):
        queries = operations_queries()
        for title in ("Rate by function", "p99 by function", "Error ratio"):
            self.assertIn(title, queries, f"docs/OPERATIONS.md lost its query {title!r}: {sorted(queries)}")
        fns = self.functions()
        fns.add("fails", {"handler.sh": FAILING_SH})
        gw = self.start_gateway(fns, wait_for=["fails"])
        prometheus = Prometheus(gw.port)
        self.addCleanup(prometheus.close)

        def describe() -> str:
            return f"prometheus log:\n{prometheus.log_tail()}\n{gw.describe()}"

        wait_until(lambda: prometheus.get("/-/ready")[0] == 200 or prometheus.proc.poll() is not None, 60,
                   interval=0.1, message=lambda: "Prometheus never got ready\n" + describe())
        self.assertIsNone(prometheus.proc.poll(), "Prometheus exited\n" + describe())
        # Scraped once before the first request: the counters declared at 0 are seen at 0, so rate()
        # has their whole growth (a counter that appeared with its first errors would lose them).
        wait_until(lambda: prometheus.value('fastfn_gateway_sockets_up{function="fails"}') == 1, 60,
                   interval=0.2, message=lambda: "Prometheus never scraped the gateway\n" + describe())
        for _ in range(self.OK):
            self.assertEqual(gw.get("/fails").status, 200)
        for _ in range(self.ERRORS):
            self.assertEqual(gw.get("/fails?fail").status, 500)
        for _ in range(self.UNROUTED):
            self.assertEqual(gw.get("/no/such/function").status, 404)
        total = self.OK + self.ERRORS + self.UNROUTED
        wait_until(lambda: prometheus.value("sum(fastfn_gateway_requests_total)") == total, 60, interval=0.2,
                   message=lambda: f"Prometheus counted {prometheus.value('sum(fastfn_gateway_requests_total)')}"
                                   f" requests of {total}\n{describe()}")

        for title, promql in queries.items():
            with self.subTest(query=title):
                result = prometheus.query(promql)
                self.assertTrue(result, f"{title}: {promql} is empty\n{describe()}")
                values = {r["metric"].get("function", ""): float(r["value"][1]) for r in result}
                if title == "Rate by function":
                    self.assertGreater(values.get("fails", 0), 0, result)
                    self.assertNotIn("", values, "requests to no function are no function's rate")
                elif title == "p99 by function":
                    self.assertTrue(0 < values.get("fails", math.nan) <= 30, result)
                elif title == "Error ratio":
                    self.assertEqual(len(result), 1, result)
                    self.assertAlmostEqual(values[""], self.ERRORS / total, places=3, msg=result)
                else:
                    self.assertTrue(all(math.isfinite(v) and v >= 0 for v in values.values()), result)


if __name__ == "__main__":
    unittest.main(verbosity=2)
