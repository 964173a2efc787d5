#!/usr/bin/env python3
"""Integration tests of FastFN's file routes (issue 19): folders without a handler whose files are
named by method and path (orders/get.py, orders/[id]/get.py, users/[id].js, blog/[...slug].py),
copied in as FastFN users write them. Each route file runs hot through fastfn's shim; the route's
parameters reach event["params"] (and python keyword arguments) from the gateway alone. Starts the
real gateway (FASTFN_GATEWAY) on a functions dir.
Run alone: python3 tests/integration/test_file_routes.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateway_support import SharedFunctionsCase, check_binaries, functions_listing  # noqa: E402


def py_route(file: str, signature: str = "event") -> str:
    return f"""from _shared import TAG

def handler({signature}):
    kwargs = {{k: v for k, v in locals().items() if k != "event"}}
    return {{"file": {file!r}, "tag": TAG, "method": event["method"], "params": event["params"],
             "kwargs": kwargs, "header_names": sorted(event["headers"])}}
"""


def js_route(file: str) -> str:
    return f"""'use strict';
exports.handler = async (event, params) => ({{
  file: {json.dumps(file)}, method: event.method, params: event.params, second: params,
  header_names: Object.keys(event.headers).sort(),
}});
"""


class FileRoutesTest(SharedFunctionsCase):
    @classmethod
    def build(cls, fns):
        shared = "TAG = 'shared helper'\n"
        fns.add("orders", {"get.py": py_route("orders/get.py"),
                           "post.py": py_route("orders/post.py"),
                           "_shared.py": shared,
                           "models.py": "ROWS = []\n"})
        fns.add("orders/[id]", {"get.py": py_route("orders/[id]/get.py", "event, id"),
                                "_shared.py": shared})
        fns.add("users", {"index.js": js_route("users/index.js"), "me.js": js_route("users/me.js"),
                          "[id].js": js_route("users/[id].js")})
        fns.add("blog", {"[...slug].py": py_route("blog/[...slug].py", "event, **params"),
                         "_shared.py": shared})

    def answer(self, method: str, path: str, **kwargs) -> dict:
        response = self.gw.request(method, path, **kwargs)
        self.assertEqual(response.status, 200, f"{method} {path}: {response!r}\n{self.gw.describe()}")
        return response.json()

    def test_the_method_prefix_picks_the_file_and_others_are_405(self):
        self.assertEqual(self.answer("GET", "/orders")["file"], "orders/get.py")
        self.assertEqual(self.answer("GET", "/orders")["tag"], "shared helper")
        self.assertEqual(self.answer("POST", "/orders", body=b"{}")["file"], "orders/post.py")
        refused = self.gw.request("PUT", "/orders", body=b"{}")
        self.assertEqual(refused.status, 405, repr(refused))
        self.assertEqual(refused.headers.get("Allow"), "GET, POST", repr(refused))
        # The helper modules are no routes: orders/[id] takes their names as it takes any.
        self.assertEqual(self.answer("GET", "/orders/models")["params"], {"id": "models"})
        self.assertEqual(self.answer("GET", "/orders/_shared")["params"], {"id": "_shared"})

    def test_a_parameter_reaches_params_and_the_keyword_argument(self):
        got = self.answer("GET", "/orders/42")
        self.assertEqual((got["file"], got["params"], got["kwargs"]),
                         ("orders/[id]/get.py", {"id": "42"}, {"id": "42"}))
        self.assertEqual(self.gw.get("/orders/42/more").status, 404)
        self.assertEqual(self.gw.request("DELETE", "/orders/42").status, 405)

    def test_a_fixed_segment_wins_over_a_parameter(self):
        self.assertEqual(self.answer("GET", "/users/me")["file"], "users/me.js")
        got = self.answer("GET", "/users/7")
        self.assertEqual((got["file"], got["params"], got["second"]), ("users/[id].js", {"id": "7"}, {"id": "7"}))
        self.assertEqual(self.answer("GET", "/users")["file"], "users/index.js")
        self.assertEqual(self.answer("POST", "/users", body=b"")["method"], "POST")  # index: any method

    def test_a_catch_all_takes_the_rest_of_the_path_decoded(self):
        got = self.answer("GET", "/blog/2026/12/hello%20world")
        self.assertEqual(got["params"], {"slug": "2026/12/hello world"})
        self.assertEqual(got["kwargs"], {"params": {"slug": "2026/12/hello world"}})
        self.assertEqual(self.gw.get("/blog").status, 404)

    def test_parameters_come_from_the_gateway_alone(self):
        forged = {"X-Fn-Params": '{"id": "forged"}'}
        got = self.answer("GET", "/orders", headers=forged)
        self.assertEqual((got["params"], got["kwargs"]), ({}, {}))
        self.assertNotIn("x-fn-params", got["header_names"])
        got = self.answer("GET", "/orders/5", headers=forged)
        self.assertEqual(got["params"], {"id": "5"})
        got = self.answer("GET", "/users/me", headers=forged)
        self.assertEqual(got["params"], {})
        self.assertNotIn("x-fn-params", got["header_names"])

    def test_each_route_file_is_listed_as_a_function(self):
        listing = functions_listing(self.gw.get_json("/_fn/functions"))
        for name in ("orders/get", "orders/post", "orders/:id/get", "users/index", "users/me",
                     "users/:id", "blog/:slug*"):
            self.assertIn(name, listing, f"{sorted(listing)}\n{self.gw.describe()}")
        self.assertNotIn("orders/models", listing)


def setUpModule():
    check_binaries()


if __name__ == "__main__":
    unittest.main(verbosity=2)
