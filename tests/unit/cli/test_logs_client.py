#!/usr/bin/env python3
"""`fastfn logs` against the contract of GET /_fn/logs/NAME (docs/CLI.md), served by a stand-in on
loopback: the lines as sent, ?lines=N and ?follow=1 asked for, -f printing each line as it comes
until Ctrl-C (exit 0, quietly), a 404 with the gateway's JSON error (exit 67). The gateway's own
side is tested in tests/integration/test_cli.py."""

import http.server
import json
import os
import select
import signal
import subprocess
import sys
import threading
import unittest

from cli_path import CLI_DIR

LAUNCHER = str(CLI_DIR / "fastfn")


class StandIn(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    paths: list = []
    release = threading.Event()  # the followed answer sends its second line once set

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        StandIn.paths.append(self.path)
        if not self.path.startswith("/_fn/logs/noisy"):
            body = json.dumps({"error": "no such function", "function": "nosuch",
                               "request_id": self.headers.get("X-Fn-Request-Id")}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.chunk(b"first line\n")
        if "follow=1" in self.path:
            StandIn.release.wait(30)
            self.chunk(b"second line\n")
            StandIn.release.clear()
            self.rfile.read(1)  # held open until the client goes
            return
        self.wfile.write(b"0\r\n\r\n")

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def line_within(stream, seconds: float) -> bytes:
    """The next line of `stream` (a pipe), or what came of it when none is whole within `seconds`."""
    data = b""
    while not data.endswith(b"\n") and select.select([stream], [], [], seconds)[0]:
        byte = os.read(stream.fileno(), 1)
        if not byte:
            break
        data += byte
    return data


class LogsClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
        cls.server.daemon_threads = True
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls):
        StandIn.release.set()
        cls.server.shutdown()
        cls.server.server_close()

    def run_logs(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, LAUNCHER, "logs", *args, "--url", self.url], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)

    def test_prints_the_lines_and_asks_for_the_last_n(self):
        result = self.run_logs("noisy", "-n", "5")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "first line\n", ""))
        self.assertEqual(StandIn.paths[-1], "/_fn/logs/noisy?lines=5")

    def test_an_unknown_function_exits_67_with_the_gateways_reason(self):
        result = self.run_logs("nosuch")
        self.assertEqual((result.returncode, result.stdout), (67, ""))
        self.assertEqual(result.stderr, "fastfn: logs nosuch: 404 Not Found: no such function\n")

    def test_follow_prints_each_line_as_it_comes_until_ctrl_c(self):
        proc = subprocess.Popen([sys.executable, LAUNCHER, "logs", "noisy", "-f", "--url", self.url],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        self.addCleanup(proc.stderr.close)
        self.addCleanup(proc.stdout.close)
        try:
            self.assertEqual(line_within(proc.stdout, 30), b"first line\n")
            StandIn.release.set()
            self.assertEqual(line_within(proc.stdout, 30), b"second line\n", "a line is printed when it comes")
            self.assertIsNone(proc.poll(), "-f keeps following")
            os.kill(proc.pid, signal.SIGINT)
            self.assertEqual(proc.wait(30), 0)
            self.assertEqual(proc.stderr.read(), b"", "Ctrl-C ends it quietly")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.assertIn("/_fn/logs/noisy?follow=1", StandIn.paths)


if __name__ == "__main__":
    unittest.main()
