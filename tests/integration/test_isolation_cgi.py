#!/usr/bin/env python3
"""Issue 14, "CGI (format cgi)", items 5 to 9: what a CGI program prints never becomes a response the
watchdog did not mean to send.

Each test starts the real fastfn-watchdog (FASTFN_WATCHDOG) with --format cgi --cgi-headers on
tests/fixtures/cgi/cgi_isolation.sh, whose PATH_INFO picks the response. One test per item.
Run alone: python3 tests/integration/test_isolation_cgi.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402

FIXTURE = str(harness.CGI_FIXTURES_DIR / "cgi_isolation.sh")


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_fixtures_executable()


class CgiIsolationTest(harness.WatchdogTestCase):
    def start(self, *options: str) -> harness.Watchdog:
        return self.start_watchdog([FIXTURE], ["--format", "cgi", "--cgi-headers", *options])

    def assert_status(self, response: harness.Response, status: int, wd: harness.Watchdog,
                      note: str = "") -> None:
        self.assertEqual(response.status, status,
                         f"{note} expected {status}, got {response!r}\n{wd.describe()}")

    def error_of(self, response: harness.Response, wd: harness.Watchdog) -> str:
        self.assertIn("json", response.headers.get("Content-Type", ""), f"not a JSON error: {response!r}")
        try:
            return json.loads(response.body)["error"]
        except (ValueError, KeyError, TypeError):
            self.fail(f"not a JSON error body: {response!r}\n{wd.describe()}")

    # -- item 5 -------------------------------------------------------------------------------------

    def test_item5_interim_status_from_cgi_is_502(self):
        """Status: 1xx is no final answer: 502. The next request on the same kept-alive connection
        (pipelined right behind it) gets its own answer, not this one's place in the stream."""
        wd = self.start()
        with wd.connection() as conn:
            for code in (100, 101, 102, 103):
                with self.subTest(status=code):
                    conn.send_raw(f"GET /status/{code} HTTP/1.1\r\nHost: x\r\n\r\n"
                                  f"GET /echo?after-{code} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    first = conn.read_response()
                    self.assert_status(first, 502, wd, f"Status: {code}:")
                    self.assertIn("interim", self.error_of(first, wd), f"{first!r}")
                    self.assertTrue(first.keep_alive, f"the 502 closed the connection: {first!r}")
                    second = conn.read_response()
                    self.assert_status(second, 200, wd, f"the request after Status: {code}:")
                    self.assertEqual(second.body, f"answer to after-{code}".encode(),
                                     f"the next request got another's answer: {second!r}")
        self.assertIn("interim", wd.log())

    # -- item 6 -------------------------------------------------------------------------------------

    def test_item6_nonzero_exit_before_headers_is_500_with_exit_code(self):
        """With --cgi-headers, a program that fails before (or while) printing its headers is a 500
        with X-Fn-Exit-Code, and the log says how it ended. One that exits 0 without headers is
        still the program's fault at the gateway contract: 502."""
        wd = self.start()
        for path, code in (("/die", 3), ("/die", 1), ("/die-mid-headers", 2)):
            with self.subTest(path=path, code=code):
                response = wd.get(f"{path}?code={code}")
                self.assert_status(response, 500, wd, f"{path} exit {code}:")
                self.assertEqual(response.headers.get_all("X-Fn-Exit-Code"), [str(code)],
                                 f"{response!r}")
                request_id = response.headers.get("X-Fn-Request-Id")
                self.assertTrue(request_id, f"{response!r}")
                wait_until(lambda: any(request_id in line and f"exit code {code}" in line
                                       for line in wd.log().splitlines()), 5,
                           message=lambda: f"the exit is not logged\n{wd.describe()}")
        response = wd.get("/no-headers")
        self.assert_status(response, 502, wd, "exit 0 without headers:")

    # -- item 7 -------------------------------------------------------------------------------------

    def test_item7_head_keeps_the_programs_content_length(self):
        """HEAD to a program that declares Content-Length: 14 and rightly sends no body announces 14
        (RFC 9110 8.6), and the connection stays in step for the GET after it."""
        wd = self.start()
        with wd.connection() as conn:
            head = conn.request("HEAD", "/head-length")
            self.assert_status(head, 200, wd, "HEAD:")
            self.assertEqual(head.headers.get_all("Content-Length"), ["14"], f"{head!r}")
            get = conn.request("GET", "/head-length")
            self.assert_status(get, 200, wd, "GET after HEAD:")
            self.assertEqual(get.body, b"fourteen bytes", f"{get!r}")
            self.assertEqual(get.headers.get_all("Content-Length"), ["14"], f"{get!r}")
            # Past the 64 KiB held, the head leaves before the exit: the declared length still,
            # and no exit code that is not known yet.
            head = conn.request("HEAD", "/head-length-big")
            self.assert_status(head, 200, wd, "HEAD past 64 KiB:")
            self.assertEqual(head.headers.get_all("Content-Length"), ["200000"], f"{head!r}")
            self.assertNotIn("Transfer-Encoding", head.headers, f"{head!r}")
            self.assertEqual(head.headers.get_all("X-Fn-Exit-Code"), [], f"{head!r}")
            # Without a declared length the count of what it printed stands, as for GET.
            head = conn.request("HEAD", "/echo?counted")
            self.assertEqual(head.headers.get_all("Content-Length"),
                             [str(len(b"answer to counted"))], f"{head!r}")

    # -- item 8 -------------------------------------------------------------------------------------

    def test_item8_reason_phrase_is_kept_and_204_304_get_no_content_type(self):
        wd = self.start()
        with wd.connection() as conn:
            for path, status, reason in (("/teapot", 418, "I'm a teapot"),
                                         ("/custom", 299, "Custom Thing"),
                                         ("/no-reason", 404, "Not Found"),
                                         ("/teapot?code=1", 500, "Internal Server Error")):
                with self.subTest(path=path):
                    response = conn.request("GET", path)
                    self.assert_status(response, status, wd, f"{path}:")
                    self.assertEqual(response.reason, reason, f"{response!r}")
            for path, status in (("/no-content", 204), ("/not-modified", 304)):
                with self.subTest(path=path):
                    response = conn.request("GET", path)
                    self.assert_status(response, status, wd, f"{path}:")
                    self.assertNotIn("Content-Type", response.headers,
                                     f"a {status} got a Content-Type: {response!r}")
            self.assertEqual(conn.request("GET", "/echo?still").body, b"answer to still")

    # -- item 9 -------------------------------------------------------------------------------------

    def test_item9_programs_own_x_fn_exit_code_is_dropped(self):
        """The watchdog's own headers win: one X-Fn-Exit-Code (the real one), one X-Fn-Request-Id,
        no Trailer of the program's, whether the response is held or streams."""
        wd = self.start()
        for code in (0, 4):
            with self.subTest(code=code):
                response = wd.get(f"/spoof?code={code}", headers={"X-Fn-Request-Id": "real-id"})
                self.assert_status(response, 200 if code == 0 else 500, wd)
                self.assertEqual(response.headers.get_all("X-Fn-Exit-Code"), [str(code)],
                                 f"{response!r}")
                self.assertEqual(response.headers.get_all("X-Fn-Request-Id"), ["real-id"],
                                 f"{response!r}")
                self.assertNotIn("Trailer", response.headers, f"{response!r}")
        response = wd.get("/spoof-stream?code=5")
        self.assertTrue(response.chunked, f"expected a streamed response: {response!r}")
        self.assertEqual(response.headers.get_all("X-Fn-Exit-Code"), [],
                         f"the program's exit code went out in the head: {response!r}")
        self.assertEqual(response.headers.get_all("Trailer"), ["X-Fn-Exit-Code"], f"{response!r}")
        self.assertEqual(response.trailers.get_all("X-Fn-Exit-Code"), ["5"], f"{response!r}")
        self.assertEqual(response.body_length, 200000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
