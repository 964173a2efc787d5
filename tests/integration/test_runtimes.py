#!/usr/bin/env python3
"""Integration tests of the php, lua and go runtimes (issue 19, "More runtimes"): handler.php runs
under php-cgi with the variables it needs (SCRIPT_FILENAME, REDIRECT_STATUS) and its CGI headers
taken as the response's, handler.lua under lua5.4 as a CGI program; each template answers through
the real gateway (FASTFN_GATEWAY), copied as `fastfn new` copies it. A folder with a go.mod is built
with go build by the gateway (once per change of its sources) and run as format server. php-cgi,
lua5.4 and golang-go are Debian packages scripts/setup installs; without them the tests fail, they
do not skip.
Run alone: python3 tests/integration/test_runtimes.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateway_support import (TEMPLATES_DIR, FunctionsDir, GatewayTestCase,  # noqa: E402
                             SharedFunctionsCase, check_binaries, functions_listing)

BUILD_TIMEOUT = 240.0  # a first go build compiles net/http into an empty cache

PHP_SHAPES = """<?php
http_response_code(201);
header('X-Runtime: php');
setcookie('a', '1');
setcookie('b', '2');
header('Content-Type: application/json');
echo json_encode([
  'method' => $_SERVER['REQUEST_METHOD'],
  'path_info' => $_SERVER['PATH_INFO'] ?? '',
  'script_name' => $_SERVER['SCRIPT_NAME'] ?? '',
  'query' => $_GET,
  'form' => $_POST,
  'header' => $_SERVER['HTTP_X_CUSTOM'] ?? null,
  'proxy' => getenv('HTTP_PROXY'),
]);
"""

PHP_FAILS = """<?php
error_log('php says: SECRET-b31');
throw new RuntimeException('SECRET-b31');
"""


def setUpModule():
    check_binaries()
    for program in ("php-cgi", "lua5.4", "go"):
        if not shutil.which(program):
            raise RuntimeError(f"{program} is not installed (scripts/setup installs it)")


class RuntimesTest(SharedFunctionsCase):
    @classmethod
    def build(cls, fns):
        for template in ("php-cgi", "lua-cgi"):
            shutil.copytree(TEMPLATES_DIR / template, fns.root / template)
        fns.add("php/shapes", {"handler.php": PHP_SHAPES})
        fns.add("php/fails", {"handler.php": PHP_FAILS})

    def test_php_template_greets_and_echoes(self):
        greeting = self.gw.get("/php-cgi?name=ada")
        self.assertEqual(greeting.status, 200, f"{greeting!r}\n{self.gw.describe()}")
        self.assertRegex(greeting.text, r"^hello ada from PHP \d+ \(GET\)\n$")
        self.assertEqual(greeting.headers.get("Content-Type"), "text/plain; charset=utf-8")
        body = b"line one\nline two\n" * 1000
        echoed = self.gw.post("/php-cgi", body)
        self.assertEqual((echoed.status, echoed.body), (200, body), repr(echoed)[:300])

    def test_php_headers_status_and_request_reach_the_client(self):
        response = self.gw.post("/php/shapes/sub/path?x=1&y=two", b"k=v&n=3",
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "X-Custom": "yes", "Proxy": "http://evil.example"})
        self.assertEqual(response.status, 201, f"{response!r}\n{self.gw.describe()}")
        self.assertEqual(response.headers.get("X-Runtime"), "php")
        self.assertEqual(response.headers.get("Content-Type"), "application/json")
        self.assertEqual([c.split(";")[0] for c in response.headers.get_all("Set-Cookie")],
                         ["a=1", "b=2"])
        seen = response.json()
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["path_info"], "/sub/path")
        self.assertEqual(seen["script_name"], "/php/shapes")
        self.assertEqual(seen["query"], {"x": "1", "y": "two"})
        self.assertEqual(seen["form"], {"k": "v", "n": "3"})
        self.assertEqual(seen["header"], "yes")
        self.assertIs(seen["proxy"], False, "httpoxy: a Proxy header never becomes HTTP_PROXY")

    def test_php_error_is_a_500_and_its_message_stays_in_the_log(self):
        response = self.gw.get("/php/fails")
        self.assertEqual(response.status, 500, f"{response!r}\n{self.gw.describe()}")
        self.assertNotIn(b"SECRET-b31", response.body)
        self.gw.wait_log(lambda log: "SECRET-b31" in log, what="the PHP error in the log")

    def test_lua_template_greets_and_echoes(self):
        greeting = self.gw.get("/lua-cgi?name=ada")
        self.assertEqual((greeting.status, greeting.text), (200, "hello ada from Lua 5.4 GET\n"),
                         f"{greeting!r}\n{self.gw.describe()}")
        echoed = self.gw.post("/lua-cgi?name=bo", b"some\nbody\n")
        self.assertEqual(echoed.text, "hello bo from Lua 5.4 POST\nsome\nbody\n")

    def test_runtimes_are_listed(self):
        listed = functions_listing(self.gw.get_json("/_fn/functions"))
        for name, runtime in (("php-cgi", "php"), ("php/shapes", "php"), ("lua-cgi", "lua")):
            summary = listed.get(name, {}).get("summary", {})
            self.assertEqual((summary.get("runtime"), summary.get("format")), (runtime, "cgi"),
                             f"{name}: {listed.get(name)}")


class GoTest(GatewayTestCase):
    def test_a_go_module_is_built_served_and_built_again_when_changed(self):
        fns = FunctionsDir()
        self.addCleanup(fns.cleanup)
        source = (TEMPLATES_DIR / "go-http" / "main.go").read_text()
        folder = fns.add("hello", {"main.go": source,
                                   "go.mod": (TEMPLATES_DIR / "go-http" / "go.mod").read_text()})
        fns.add("broken", {"main.go": "package main\n\nfunc main() { undefinedCall() }\n",
                           "go.mod": "module example.com/broken\n\ngo 1.19\n"})
        gw = self.start_gateway(fns)
        hello = gw.wait_answer("/hello?name=ada", lambda r: r.status == 200, BUILD_TIMEOUT,
                               "the built program")
        self.assertRegex(hello.text, r"^hello ada from pid \d+\n$")
        self.assertTrue((folder / ".fastfn" / "go" / "handler").is_file())
        summary = functions_listing(gw.get_json("/_fn/functions"))["hello"]["summary"]
        self.assertEqual((summary["runtime"], summary["format"]), ("go", "server"), summary)
        failed = gw.wait_answer("/broken", lambda r: r.status == 503 and "build failed" in r.text,
                                BUILD_TIMEOUT, "the failed build")
        reason = failed.json()["error"]
        self.assertRegex(reason, r"^go.mod: the build failed: go build ended with exit code \d+: "
                                 r"\./main.go:3:\d+: undefined: undefinedCall$")
        # A changed source is built again and the function restarted on it.
        fns.write("hello", "main.go", source.replace('"hello %s from pid', '"howdy %s from pid'))
        howdy = gw.wait_answer("/hello?name=bo", lambda r: r.text.startswith("howdy"),
                               BUILD_TIMEOUT, "the rebuilt program")
        self.assertTrue(re.fullmatch(r"howdy bo from pid \d+\n", howdy.text), howdy.text)


class RustTest(GatewayTestCase):
    def test_a_cargo_crate_is_built_served_and_built_again_when_changed(self):
        fns = FunctionsDir()
        self.addCleanup(fns.cleanup)
        template = TEMPLATES_DIR / "rust-http"
        source = (template / "src" / "main.rs").read_text()
        folder = fns.add("hello", {"Cargo.toml": (template / "Cargo.toml").read_text(),
                                   "src/main.rs": source})
        fns.add("broken", {"Cargo.toml": '[package]\nname = "broken"\nversion = "0.1.0"\n',
                           "src/main.rs": "fn main() { undefined_call(); }\n"})
        fns.add("nameless", {"Cargo.toml": "[workspace]\n", "src/main.rs": "fn main() {}\n"})
        gw = self.start_gateway(fns)
        hello = gw.wait_answer("/hello?name=ada", lambda r: r.status == 200, BUILD_TIMEOUT,
                               "the built program")
        self.assertRegex(hello.text, r"^hello ada from pid \d+\n$")
        self.assertTrue((folder / ".fastfn" / "cargo" / "release" / "rust-http").is_file())
        summary = functions_listing(gw.get_json("/_fn/functions"))["hello"]["summary"]
        self.assertEqual((summary["runtime"], summary["format"]), ("rust", "server"), summary)
        failed = gw.wait_answer("/broken", lambda r: r.status == 503 and "build failed" in r.text,
                                BUILD_TIMEOUT, "the failed build")
        self.assertRegex(failed.json()["error"],
                         r"^Cargo.toml: the build failed: cargo build ended with exit code \d+: ")
        self.assertIn("no [package] name", gw.get("/nameless").json()["error"])
        # A changed source is built again and the function restarted on it.
        fns.write("hello", "src/main.rs", source.replace('"hello {} from pid', '"howdy {} from pid'))
        howdy = gw.wait_answer("/hello?name=bo", lambda r: r.text.startswith("howdy"),
                               BUILD_TIMEOUT, "the rebuilt program")
        self.assertTrue(re.fullmatch(r"howdy bo from pid \d+\n", howdy.text), howdy.text)


if __name__ == "__main__":
    unittest.main()
