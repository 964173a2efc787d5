#!/usr/bin/env python3
"""Integration tests of FastFN's event contract (issue 19): a handler.py that defines
`def handler(event)` or a handler.js that exports `handler`, copied in as FastFN users write them
(no fn.config.json, or FastFN's own), runs hot through fastfn's shim and answers what it returns.
Also: fastfn's own python-http and node-http templates copied without their config still run hot,
and a CGI script stays CGI. Starts the real gateway (FASTFN_GATEWAY) on a functions dir.
Run alone: python3 tests/integration/test_event_contract.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateway_support import (TEMPLATES_DIR, FunctionsDir, GatewayTestCase, SharedFunctionsCase,  # noqa: E402
                             check_binaries, functions_listing)

SECRET = "secret-7d41: only the log may hold it"

PY_ECHO = """import os

def handler(event):
    return {"status": 200, "headers": {"X-Echo": "1"},
            "body": {"pid": os.getpid(), "event": event}}
"""

PY_SHAPES = """import asyncio
import os


async def handler(event):
    await asyncio.sleep(0)
    path = event["path"]
    if path.endswith("/text"):
        return "plain words"
    if path.endswith("/html"):
        return "<p>markup</p>"
    if path.endswith("/bytes"):
        return b"\\x00\\x01\\x02"
    if path.endswith("/none"):
        return None
    if path.endswith("/list"):
        return [1, 2, 3]
    if path.endswith("/cookies"):
        return {"statusCode": 201, "headers": {"Set-Cookie": ["a=1", "b=2"]}, "body": "made"}
    if path.endswith("/binary"):
        return {"status": 200, "headers": {"Content-Type": "image/png"},
                "is_base64": True, "body_base64": base64_of(event)}
    if path.endswith("/raise"):
        raise RuntimeError(os.environ["SECRET"])
    if path.endswith("/badstatus"):
        return {"status": "two hundred"}
    if path.endswith("/split"):
        return {"status": 200, "headers": {"X-A": "1\\r\\nX-Injected: 1"}, "body": ""}
    return {"message": "a dict without status is a JSON 200"}


def base64_of(event):
    return event["body_base64"] if event["is_base64"] else ""
"""

PY_NAMED = """print("this top-level print would make it CGI, but invoke.handler names the function")

def answer(event):
    return {"status": 202, "body": "named " + event["method"]}
"""

PY_CGI = """def handler():
    print("cgi here")

handler()
"""

NODE_ECHO = """'use strict';
exports.handler = async (event) => ({
  status: 200, headers: { 'X-Echo': '1' }, body: { pid: process.pid, event },
});
"""

NODE_SHAPES = """console.error('imported');
exports.handler = async (event) => {
  const path = event.path;
  if (path.endsWith('/text')) return 'plain words';
  if (path.endsWith('/bytes')) return Buffer.from([0, 1, 2]);
  if (path.endsWith('/cookies')) {
    return { statusCode: 201, headers: { 'Set-Cookie': ['a=1', 'b=2'] }, body: 'made' };
  }
  if (path.endsWith('/binary')) {
    return { status: 200, headers: { 'Content-Type': 'image/png' }, is_base64: true,
      body_base64: event.is_base64 ? event.body_base64 : '' };
  }
  if (path.endsWith('/raise')) throw new Error(process.env.SECRET);
  if (path.endsWith('/split')) return { status: 200, headers: { 'X-A': '1\\r\\nX-Injected: 1' } };
  return { message: 'an object without status is a JSON 200' };
};
"""

NODE_ESM = """export async function handler(event) {
  return { status: 200, body: { esm: true, method: event.method } };
}
"""

BINARY = bytes(range(256)) * 4  # not UTF-8


def setUpModule():
    check_binaries()


class EventContractTest(SharedFunctionsCase):
    @classmethod
    def build(cls, fns):
        env = {"env": {"SECRET": SECRET}}
        fns.add("py/echo", {"handler.py": PY_ECHO})
        fns.add("py/shapes", {"handler.py": PY_SHAPES}, {"runtime": "python", **env})
        fns.add("py/named", {"handler.py": PY_NAMED},
                {"runtime": "python", "invoke": {"handler": "answer"}})
        fns.add("py/cgi", {"handler.py": PY_CGI})
        fns.add("js/echo", {"handler.js": NODE_ECHO})
        fns.add("js/shapes", {"handler.js": NODE_SHAPES}, env)
        fns.add("js/esm", {"handler.mjs": NODE_ESM})
        # fastfn's own hot templates, copied without their fn.config.json.
        fns.add("tpl/python", {"handler.py": TEMPLATES_DIR / "python-http" / "handler.py",
                               "fastfn_http.py": TEMPLATES_DIR / "python-http" / "fastfn_http.py"})
        fns.add("tpl/node", {"handler.js": TEMPLATES_DIR / "node-http" / "handler.js",
                             "fastfn_http.js": TEMPLATES_DIR / "node-http" / "fastfn_http.js"})


    def event_of(self, path, runtime="py", **kwargs):
        response = self.gw.request(kwargs.pop("method", "GET"), f"/{runtime}/echo{path}", **kwargs)
        self.assertEqual(response.status, 200, f"{response!r}\n{self.gw.describe()}")
        self.assertEqual(response.headers.get("X-Echo"), "1", repr(response))
        self.assertEqual(response.headers.get("Content-Type"), "application/json", repr(response))
        return response, response.json()

    def check_echo(self, runtime):
        response, answer = self.event_of("/sub?a=1&a=2&b=x&empty=", runtime, method="POST",
                                         body=b'{"n": 1}',
                                         headers={"X-Custom": "yes", "User-Agent": "probe/1"})
        event = answer["event"]
        self.assertEqual(event["method"], "POST")
        self.assertEqual(event["path"], f"/{runtime}/echo/sub")
        self.assertEqual(event["raw_path"], f"/{runtime}/echo/sub?a=1&a=2&b=x&empty=")
        self.assertEqual(event["query"], {"a": ["1", "2"], "b": "x", "empty": ""})
        self.assertEqual(event["headers"]["x-custom"], "yes")
        self.assertEqual(event["client"]["ua"], "probe/1")
        self.assertEqual(event["client"]["ip"], "127.0.0.1")
        self.assertEqual(event["body"], '{"n": 1}')
        self.assertIs(event["is_base64"], False)
        self.assertEqual(event["params"], {})
        context = event["context"]
        self.assertEqual(context["request_id"], response.headers.get("X-Fn-Request-Id"))
        self.assertEqual(event["id"], context["request_id"])
        self.assertEqual(context["function_name"], f"{runtime}/echo")
        self.assertGreater(context["deadline_ms"], event["ts"])
        self.assertGreater(context["timeout_ms"], 0)
        # Hot: the next request is answered by the same process.
        _, again = self.event_of("", runtime)
        self.assertEqual(again["pid"], answer["pid"])
        # A body that is not UTF-8 arrives as base64, flagged.
        _, binary = self.event_of("", runtime, method="POST", body=BINARY)
        self.assertIs(binary["event"]["is_base64"], True)
        self.assertEqual(base64.b64decode(binary["event"]["body_base64"]), BINARY)
        self.assertEqual(binary["event"]["body"], binary["event"]["body_base64"])

    def test_python_handler_event_reaches_the_function_hot(self):
        self.check_echo("py")

    def test_node_handler_event_reaches_the_function_hot(self):
        self.check_echo("js")

    def check_shapes(self, runtime):
        get = lambda path, **kw: self.gw.request(kw.pop("method", "GET"), f"/{runtime}/shapes/{path}", **kw)
        text = get("text")
        self.assertEqual((text.status, text.body), (200, b"plain words"), repr(text))
        self.assertTrue(text.headers.get("Content-Type").startswith("text/plain"), repr(text))
        raw = get("bytes")
        self.assertEqual((raw.status, raw.body), (200, b"\x00\x01\x02"), repr(raw))
        self.assertEqual(raw.headers.get("Content-Type"), "application/octet-stream", repr(raw))
        cookies = get("cookies")
        self.assertEqual((cookies.status, cookies.body), (201, b"made"), repr(cookies))
        self.assertEqual(cookies.headers.get_all("Set-Cookie"), ["a=1", "b=2"], repr(cookies))
        binary = get("binary", method="POST", body=BINARY)
        self.assertEqual((binary.status, binary.body), (200, BINARY), repr(binary)[:300])
        self.assertEqual(binary.headers.get("Content-Type"), "image/png")
        plain = get("other")
        self.assertEqual(plain.status, 200, repr(plain))
        self.assertEqual(plain.headers.get("Content-Type"), "application/json")
        self.assertIn("JSON 200", plain.json()["message"])
        # A line break in a header value would split the response: refused as a 500.
        split = get("split")
        self.assertEqual(split.status, 500, repr(split))
        self.assertNotIn("X-Injected", split.headers)
        # An exception: 500 with a JSON reason, the message (which may hold secrets) only in the log.
        failed = get("raise")
        self.assertEqual(failed.status, 500, repr(failed))
        self.assertEqual(failed.headers.get("Content-Type"), "application/json")
        reason = failed.json()
        self.assertEqual(reason["request_id"], failed.headers.get("X-Fn-Request-Id"))
        self.assertNotIn(SECRET.encode(), failed.body)
        self.gw.wait_log(lambda log: SECRET in log and reason["request_id"] in log,
                         what="the exception with its request id")
        # The process lives on after the exception and answers the next request.
        self.assertEqual(get("text").body, b"plain words")

    def test_python_responses_take_every_shape_and_errors_stay_in_the_log(self):
        self.check_shapes("py")
        html = self.gw.get("/py/shapes/html")
        self.assertEqual(html.body, b"<p>markup</p>")
        self.assertTrue(html.headers.get("Content-Type").startswith("text/html"), repr(html))
        self.assertEqual(self.gw.get("/py/shapes/list").json(), [1, 2, 3])
        empty = self.gw.get("/py/shapes/none")
        self.assertEqual((empty.status, empty.body), (200, b""), repr(empty))
        bad = self.gw.get("/py/shapes/badstatus")
        self.assertEqual(bad.status, 500, repr(bad))
        self.assertIn("no valid response", bad.json()["error"])

    def test_node_responses_take_every_shape_and_errors_stay_in_the_log(self):
        self.check_shapes("js")

    def test_es_module_handler_mjs(self):
        response = self.gw.post("/js/esm", b"")
        self.assertEqual(response.status, 200, f"{response!r}\n{self.gw.describe()}")
        self.assertEqual(response.json(), {"esm": True, "method": "POST"})

    def test_invoke_handler_names_the_function_whatever_the_source(self):
        response = self.gw.get("/py/named")
        self.assertEqual((response.status, response.body), (202, b"named GET"),
                         f"{response!r}\n{self.gw.describe()}")
        # What the module printed at import went to the log, not into a response.
        self.gw.wait_log(lambda log: "this top-level print would make it CGI" in log,
                         what="the import-time print in the log")
        self.assertNotIn(b"top-level print", self.gw.get("/py/named").body)

    def test_a_cgi_script_defining_handler_stays_cgi(self):
        response = self.gw.get("/py/cgi")
        self.assertEqual((response.status, response.body), (200, b"cgi here\n"), repr(response))

    def test_templates_copied_without_config_run_hot(self):
        for name in ("tpl/python", "tpl/node"):
            first = self.gw.get(f"/{name}?name=copy")
            self.assertEqual(first.status, 200, f"{name}: {first!r}\n{self.gw.describe()}")
            self.assertTrue(first.text.startswith("hello copy from pid "), f"{name}: {first!r}")
            self.assertEqual(self.gw.get(f"/{name}?name=copy").body, first.body, name)

    def test_functions_list_says_how_each_runs(self):
        listed = functions_listing(self.gw.get_json("/_fn/functions"))
        for name, format_, contract in (("py/echo", "http", "event"), ("js/esm", "http", "event"),
                                        ("py/named", "http", "event"), ("tpl/python", "http", "stdio"),
                                        ("tpl/node", "http", "stdio"), ("py/cgi", "cgi", "cgi")):
            entry = listed.get(name, {}).get("summary")
            self.assertIsNotNone(entry, f"{name} missing from {json.dumps(listed)[:2000]}")
            self.assertEqual((entry.get("format"), entry.get("contract")), (format_, contract),
                             f"{name}: {entry}")


class EventContractFailures(GatewayTestCase):
    def test_a_handler_that_fails_to_import_is_not_ready_with_its_reason(self):
        fns = FunctionsDir()
        self.addCleanup(fns.cleanup)
        fns.add("broken", {"handler.py": "import no_such_module_9c\n\ndef handler(event):\n    pass\n"})
        fns.add("ok", {"handler.py": PY_ECHO})
        gw = self.start_gateway(fns)
        self.assertEqual(gw.get("/ok").status, 200)
        response = gw.get("/broken")
        self.assertGreaterEqual(response.status, 500, repr(response))
        gw.wait_log(lambda log: "no_such_module_9c" in log, what="the import error in the log")

    def test_invoke_handler_on_a_shell_handler_is_a_broken_function(self):
        fns = FunctionsDir()
        self.addCleanup(fns.cleanup)
        fns.add("sh", {"handler.sh": "#!/bin/sh\necho hi\n"}, {"invoke": {"handler": "main"}})
        gw = self.start_gateway(fns)
        response = gw.get("/sh")
        self.assertEqual(response.status, 503, repr(response))
        self.assertIn("invoke.handler", response.json()["error"])
        # The runtime has no function that runs: FastFN's health says so, with the reason.
        health = gw.health()["runtimes"]["sh"]["health"]
        self.assertIs(health["up"], False, health)
        self.assertTrue(health["reason"].startswith("sh: ") and "invoke.handler" in health["reason"],
                        health)


if __name__ == "__main__":
    unittest.main()
