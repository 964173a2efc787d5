#!/usr/bin/env python3
"""Integration tests of `--log-format json` (issue 20, "Logs"; docs/CONFIG.md, "Log format").

The real watchdog alone, and the real gateway with a function, log in JSON: every stderr line is one
object whose first keys are time (RFC 3339 with its zone), level, logger and msg, and whose fields
are keys of their own; the access lines carry function, status, ms and request_id with their types;
a fatal start-up error is one JSON line and exit 2.
Run alone: python3 tests/integration/test_json_logs.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, run_gateway_cli  # noqa: E402

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
FIRST_KEYS = ["time", "level", "logger", "msg"]


def fixture(name: str) -> str:
    return str(harness.CGI_FIXTURES_DIR / name)


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")


class JsonLines:
    """Assertions on a log that must be JSON lines."""

    def records(self, log: str, describe) -> list:
        records = []
        for line in filter(str.strip, log.splitlines()):
            try:
                record = json.loads(line)
            except ValueError:
                self.fail(f"not a JSON line: {line!r}\n{describe()}")
            self.assertIsInstance(record, dict, line)
            self.assertEqual(list(record)[:4], FIRST_KEYS, line)
            self.assertRegex(record["time"], RFC3339, line)
            for key in FIRST_KEYS:
                self.assertIsInstance(record[key], str, line)
            records.append(record)
        return records

    def access(self, records: list, logger: str, request_id: str) -> dict:
        found = [r for r in records if r["logger"] == logger and r.get("request_id") == request_id]
        self.assertEqual(len(found), 1, f"one {logger} line for {request_id}: {records}")
        record = found[0]
        self.assertEqual(record["msg"], "request", record)
        self.assertIsInstance(record["status"], int, record)
        self.assertIsInstance(record["ms"], float, record)
        self.assertIsInstance(record["bytes"], int, record)
        self.assertIsInstance(record["function"], str, record)
        return record

    def assert_fatal_json(self, result: harness.CliResult, logger: str, mention: str) -> dict:
        self.assertEqual(result.returncode, 2, result.describe())
        lines = result.stderr_lines()
        self.assertEqual(len(lines), 1, result.describe())
        try:
            record = json.loads(lines[0])
        except ValueError:
            self.fail(f"the error line is not JSON\n{result.describe()}")
        self.assertEqual(list(record)[:4], FIRST_KEYS, lines[0])
        self.assertRegex(record["time"], RFC3339, lines[0])
        self.assertEqual((record["level"], record["logger"]), ("critical", logger), lines[0])
        self.assertIn(mention, lines[0])
        return record


class WatchdogJsonTest(JsonLines, harness.WatchdogTestCase):
    def test_every_line_is_json_and_the_access_line_names_the_function(self):
        wd = self.start_watchdog([fixture("stderr_lines.sh")], ["--log-format", "json", "--name", "lines"])
        # All digits: an id stays a string, whatever it looks like.
        response = wd.get("/", headers={"X-Fn-Request-Id": "12345"})
        self.assertEqual(response.status, 200, wd.describe())
        pid = int(re.search(rb"pid=(\d+)", response.body).group(1))
        harness.wait_until(lambda: '"watchdog.access"' in wd.log() and "stderr-line-two" in wd.log(), 10,
                           message=wd.describe)
        wd.stop()
        records = self.records(wd.log(), wd.describe)
        access = self.access(records, "watchdog.access", "12345")
        self.assertEqual((access["function"], access["status"], access["method"], access["path"]),
                         ("lines", 200, "GET", "/"), access)
        child = [r for r in records if r["logger"] == "fn"]
        self.assertEqual([r["msg"] for r in child], [f"stderr-line-one pid={pid}", "stderr-line-two"], child)
        for record in child:
            self.assertEqual((record["function"], record["pid"], record["request_id"]), ("lines", pid, "12345"),
                             record)
        listening = [r for r in records if r["msg"] == "listening"]
        self.assertEqual(len(listening), 1, records)
        self.assertEqual(listening[0]["function"], "lines", listening[0])
        self.assertIsInstance(listening[0]["max_connections"], int, listening[0])

    def test_a_bad_command_line_is_one_json_line_and_exit_2(self):
        cases = [(["--log-format", "json", "--bogus", "--", "cat"], {}, "--bogus"),
                 (["--log-format=json", "--max-body", "lots", "--", "cat"], {}, "--max-body"),
                 (["--max-body", "lots", "--", "cat"], {"log_format": "json"}, "--max-body")]
        for args, env, mention in cases:
            with self.subTest(args=args, env=env):
                record = self.assert_fatal_json(harness.run_cli(args, env=env), "watchdog", mention)
                self.assertIn(mention, record["msg"])

    def test_a_listener_that_cannot_open_is_one_json_line_and_exit_2(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = harness.run_cli(["--log-format", "json", "--listen", f"127.0.0.1:{port}", "--", "cat"])
        self.assert_fatal_json(result, "watchdog", str(port))

    def test_text_stays_text(self):
        for args, env in ((["--bogus", "--", "cat"], {}),
                          (["--log-format", "xml", "--", "cat"], {"log_format": "json"}),
                          (["--flags-only", "--bogus", "--", "cat"], {"log_format": "json"})):
            with self.subTest(args=args, env=env):
                result = harness.run_cli(args, env=env)
                self.assertEqual(result.returncode, 2, result.describe())
                self.assertEqual(len(result.stderr_lines()), 1, result.describe())
                self.assertTrue(result.stderr_lines()[0].startswith("fastfn-watchdog: "), result.describe())


class GatewayJsonTest(JsonLines, GatewayTestCase):
    def test_every_line_is_json_and_both_access_lines_name_the_function(self):
        fns = self.functions()
        fns.sh_env("hello")
        gw = self.start_gateway(fns, args=["--log-format", "json"], wait_for=["hello"])
        self.assertEqual(gw.get("/hello", headers={"X-Fn-Request-Id": "rid-hello"}).status, 200, gw.describe())
        self.assertEqual(gw.get("/nowhere", headers={"X-Fn-Request-Id": "rid-none"}).status, 404, gw.describe())
        gw.wait_log(lambda log: log.count('"request_id":"rid-') >= 3, 15, what="the three access lines")
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait(20), 0, gw.describe())
        records = self.records(gw.log(), gw.describe)
        edge = self.access(records, "gateway.access", "rid-hello")
        self.assertEqual((edge["function"], edge["status"], edge["path"]), ("hello", 200, "/hello"), edge)
        daemon = self.access(records, "watchdog.access", "rid-hello")
        self.assertEqual((daemon["function"], daemon["status"]), ("hello", 200), daemon)
        missing = self.access(records, "gateway.access", "rid-none")
        self.assertEqual((missing["function"], missing["status"]), ("-", 404), missing)
        self.assertFalse([r for r in records if r["logger"] == "watchdog.access" and r["request_id"] == "rid-none"])

    def test_fatal_start_up_errors_are_one_json_line_and_exit_2(self):
        port = ["--listen", f"127.0.0.1:{harness.free_port()}"]
        missing = os.path.join(self.make_tempdir(), "absent.json")
        cases = [(["--log-format", "json", "--bogus"], {}, "--bogus"),
                 ([*port, "--max-connections"], {"FN_LOG_FORMAT": "json"}, "--max-connections"),
                 ([*port, "--log-format", "json", "--config", missing, self.make_tempdir()], {}, missing),
                 ([*port, "--log-level", "loud"], {"FN_LOG_FORMAT": "json"}, "--log-level")]
        for args, env, mention in cases:
            with self.subTest(args=args, env=env):
                self.assert_fatal_json(run_gateway_cli(args, env=env), "gateway", mention)

    def test_text_stays_text(self):
        for args, env in ((["--bogus"], {}), (["--log-format", "xml"], {"FN_LOG_FORMAT": "json"})):
            with self.subTest(args=args, env=env):
                result = run_gateway_cli(args, env=env)
                self.assertEqual(result.returncode, 2, result.describe())
                self.assertEqual(len(result.stderr_lines()), 1, result.describe())
                self.assertTrue(result.stderr_lines()[0].startswith("fastfn-gateway: "), result.describe())


if __name__ == "__main__":
    unittest.main(verbosity=2)
