#!/usr/bin/env python3
"""What fastfn asks the gateway for, built without I/O: gateway URLs (Target), request paths of
invoke (routes, --path), methods and headers, logs' path, describe's URLs and configuration."""

import os
import unittest
from unittest import mock

import cli_path  # noqa: F401

from fastfn_cli.client import Target, own_headers  # noqa: E402
from fastfn_cli.describe import (config_lines, find_function, function_urls, sockets_of,  # noqa: E402
                                 state_text)
from fastfn_cli.errors import CliError  # noqa: E402
from fastfn_cli.invoke import default_method, function_route, parse_header, with_sub_path  # noqa: E402
from fastfn_cli.logs import logs_path  # noqa: E402

LISTING = {"functions": [
    {"name": "hello", "summary": {"routes": ["/hello"]}},
    {"name": "routed", "summary": {"routes": ["/custom/place", "/other"]}},
    {"name": "bare", "summary": {"routes": []}},
]}


class TargetTest(unittest.TestCase):
    def test_base_urls(self):
        for url, base in (("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
                          ("127.0.0.1:9000", "http://127.0.0.1:9000"), ("https://h", "https://h"), ("http://h:80/fn/", "http://h/fn"),
                          ("http://[::1]:8080", "http://[::1]:8080"), ("unix:/run/gw.sock", "unix:/run/gw.sock")):
            with self.subTest(url=url):
                self.assertEqual(Target(url).base(), base)
        self.assertEqual(Target("http://h/fn").prefix, "/fn")

    def test_bad_urls_are_usage_errors(self):
        for url in ("unix:", "ftp://h", "http://h:99999", "http://"):
            with self.subTest(url=url), self.assertRaises(CliError) as caught:
                Target(url)
            self.assertEqual(caught.exception.code, 64)


class OwnHeadersTest(unittest.TestCase):
    def test_the_status_token_is_sent_as_a_bearer_token_when_set(self):
        with mock.patch.dict(os.environ, {"FN_STATUS_TOKEN": "s3cret"}):
            self.assertEqual(own_headers()["Authorization"], "Bearer s3cret")
        with mock.patch.dict(os.environ, {"FN_STATUS_TOKEN": ""}):
            self.assertNotIn("Authorization", own_headers())
        self.assertTrue(own_headers()["X-Fn-Request-Id"].startswith("fastfn-cli-"))


class InvokePathTest(unittest.TestCase):
    def test_the_first_route_or_none(self):
        self.assertEqual(function_route(LISTING, "routed"), "/custom/place")
        self.assertEqual(function_route(LISTING, "bare"), "/bare", "no routes: /NAME")
        self.assertIsNone(function_route(LISTING, "nosuch"))

    def test_sub_paths_and_queries(self):
        for route, sub, path in (("/hello", "", "/hello"), ("/hello", "/a/b", "/hello/a/b"),
                                 ("/hello", "a", "/hello/a"), ("/hello", "?x=1", "/hello?x=1"),
                                 ("/hello/", "/a", "/hello/a"), ("/hello", "/with space", "/hello/with%20space"),
                                 ("/hello", "?q=a&b=%20", "/hello?q=a&b=%20")):
            with self.subTest(route=route, sub=sub):
                self.assertEqual(with_sub_path(route, sub), path)

    def test_method_defaults_to_post_with_a_body(self):
        self.assertEqual(default_method(None, False), "GET")
        self.assertEqual(default_method(None, True), "POST")
        self.assertEqual(default_method("put", True), "PUT")
        self.assertEqual(default_method("GET", True), "GET", "-X wins over the body")
        with self.assertRaises(CliError) as caught:
            default_method("BAD METHOD", False)
        self.assertEqual(caught.exception.code, 64)

    def test_headers(self):
        self.assertEqual(parse_header("X-Test:  yes please "), ("X-Test", "yes please"))
        for bad in ("no colon", ": v", "bad name: v", "X: a\nb"):
            with self.subTest(header=bad), self.assertRaises(CliError) as caught:
                parse_header(bad)
            self.assertEqual(caught.exception.code, 64)


class LogsPathTest(unittest.TestCase):
    def test_lines_and_follow(self):
        self.assertEqual(logs_path("hello", None, False), "/_fn/logs/hello")
        self.assertEqual(logs_path("hello", 20, False), "/_fn/logs/hello?lines=20")
        self.assertEqual(logs_path("hello", None, True), "/_fn/logs/hello?follow=1")
        self.assertEqual(logs_path("hello", 0, True), "/_fn/logs/hello?lines=0&follow=1")

    def test_nested_names_keep_their_slashes_and_the_rest_is_quoted(self):
        self.assertEqual(logs_path("api/users", None, False), "/_fn/logs/api/users")
        self.assertEqual(logs_path("/api/users/", None, False), "/_fn/logs/api/users")
        self.assertEqual(logs_path("a b?c", None, False), "/_fn/logs/a%20b%3Fc")


class DescribeTest(unittest.TestCase):
    def test_urls_sync_and_queued(self):
        self.assertEqual(function_urls("http://h:1", ["/hello", "/other"]),
                         {"urls": ["http://h:1/hello", "http://h:1/other"],
                          "async_urls": ["http://h:1/async-function/hello", "http://h:1/async-function/other"]})
        self.assertEqual(function_urls("unix:/gw.sock", ["/hello"])["async_urls"],
                         ["unix:/gw.sock /async-function/hello"])

    def test_find_function(self):
        self.assertEqual(find_function(LISTING, "routed")["summary"]["routes"][1], "/other")
        self.assertIsNone(find_function(LISTING, "nosuch"))

    def test_config_lines_flatten_and_leave_unset_keys_out(self):
        config = {"name": "hello", "dir": "/d", "command": ["sh"], "methods": [], "timeout_ms": 300,
                  "max_body_bytes": None, "worker_pool": {"enabled": False, "max_workers": 4},
                  "external_sockets": []}
        self.assertEqual(config_lines(config), [("timeout_ms", "300"), ("worker_pool.enabled", "false"),
                                                ("worker_pool.max_workers", "4"), ("external_sockets", "-")])

    def test_state_and_sockets(self):
        self.assertEqual(state_text({"ready": True, "up": True, "start": "always", "warm": True}),
                         "ready, up, start always, warm")
        self.assertEqual(state_text({"ready": False, "up": False, "start": "on-demand", "warm": False}),
                         "NOT READY, down, start on-demand, cold")
        health = {"runtimes": {"sh": {"sockets": [{"function": "b", "index": 1}, {"function": "a", "index": 0},
                                                  {"function": "b", "index": 0}]}}}
        self.assertEqual([s["index"] for s in sockets_of(health, "b")], [0, 1])


if __name__ == "__main__":
    unittest.main()
