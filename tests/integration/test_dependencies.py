#!/usr/bin/env python3
"""Integration tests of per-function dependencies (issue 19): a python function's requirements.txt
is installed with pip into its own <folder>/.fastfn/python before it starts, and again when the
file changes; a node function's package.json with npm into its folder's node_modules. While it
installs the function is listed "installing" and answers 503 with that; a failed install makes it
not ready with pip's reason, and the other functions serve on. Python packages come from a wheel
built here and served by a local index (only the npm registry is reachable); the node test
installs a real package (is-number) from the npm registry. Starts the real gateway (FASTFN_GATEWAY).
Run alone: python3 tests/integration/test_dependencies.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import base64  # noqa: E402
import hashlib  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import unittest  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gateway_support import (PYTHON, FunctionsDir, GatewayTestCase, check_binaries,  # noqa: E402
                             functions_listing)

INSTALL_TIMEOUT = 180.0  # pip and npm on a loaded machine; the npm registry is remote

PY_HANDLER = """import fastfn_dep_probe

def handler(event):
    return {"version": fastfn_dep_probe.VERSION}
"""

NODE_HANDLER = """const isNumber = require('is-number');
exports.handler = async () => ({ five: isNumber(5), word: isNumber('five') });
"""


def build_wheel(directory: Path, version: str) -> Path:
    """A pure-Python wheel of module fastfn_dep_probe, VERSION = `version`."""
    name, dist = "fastfn_dep_probe", f"fastfn_dep_probe-{version}.dist-info"
    files = {
        f"{name}.py": f'VERSION = "{version}"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: fastfn-dep-probe\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: fastfn-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


class GatedIndex:
    """A --find-links page for a folder of wheels over HTTP, whose answers wait for release()."""

    def __init__(self, directory: Path):
        self.released = threading.Event()
        self.asked = threading.Event()
        gate = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                gate.asked.set()
                gate.released.wait(INSTALL_TIMEOUT)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def setUpModule():
    check_binaries()


class DependenciesTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.wheels = Path(self.make_tempdir("fastfn-wheels-"))
        for version in ("1.0", "2.0"):
            build_wheel(self.wheels, version)
        self.fns = FunctionsDir()
        self.addCleanup(self.fns.cleanup)

    def summary(self, gw, name):
        return functions_listing(gw.get_json("/_fn/functions")).get(name, {}).get("summary") or {}

    def requirements(self, source: str, version: str) -> str:
        return f"--no-index\n--find-links {source}\nfastfn-dep-probe=={version}\n"

    def test_python_requirements_install_into_the_folder_and_again_when_changed(self):
        index = GatedIndex(self.wheels)
        self.addCleanup(index.close)
        folder = self.fns.add("py", {"handler.py": PY_HANDLER,
                                     "requirements.txt": self.requirements(index.url, "1.0")})
        self.fns.add("plain", {"handler.sh": "#!/bin/sh\necho plain\n"})
        gw = self.start_gateway(self.fns, wait_for=["plain"])
        # pip is waiting for the index: the function says it is installing, and answers so.
        self.assertTrue(index.asked.wait(INSTALL_TIMEOUT), gw.describe())
        summary = self.summary(gw, "py")
        self.assertEqual((summary.get("installing"), summary.get("ready")), (True, False), summary)
        self.assertIn("installing its dependencies (requirements.txt)", summary.get("error") or "")
        waiting = gw.get("/py")
        self.assertEqual(waiting.status, 503, repr(waiting))
        self.assertIn("installing its dependencies", waiting.json()["error"])
        self.assertEqual(gw.get("/plain").text, "plain\n", "the other functions serve meanwhile")
        index.release()
        served = gw.wait_answer("/py", lambda r: r.status == 200, INSTALL_TIMEOUT,
                                "the installed function")
        self.assertEqual(served.json(), {"version": "1.0"})
        self.assertFalse(self.summary(gw, "py").get("installing"))
        # Into the function's folder, not the system.
        self.assertTrue((folder / ".fastfn" / "python" / "fastfn_dep_probe.py").is_file())
        outside = subprocess.run([PYTHON, "-c", "import fastfn_dep_probe"], capture_output=True,
                                 cwd=self.make_tempdir())
        self.assertNotEqual(outside.returncode, 0, "the package reached the system's Python")
        # A changed manifest is installed again, and the function restarted on it.
        self.fns.write("py", "requirements.txt", self.requirements(index.url, "2.0"))
        gw.wait_answer("/py", lambda r: r.status == 200 and r.json() == {"version": "2.0"},
                       INSTALL_TIMEOUT, "version 2.0 after requirements.txt changed")
        # Installed once per manifest: the state survives a restart of the gateway.
        gw.close()
        gw = self.start_gateway(self.fns, wait_for=["py"])
        self.assertEqual(gw.get("/py").json(), {"version": "2.0"})
        self.assertNotIn("install function=py queued", gw.log())

    def test_a_failed_install_is_the_functions_reason_and_nothing_else_breaks(self):
        self.fns.add("bad", {"handler.py": PY_HANDLER,
                             "requirements.txt": "--no-index\n--find-links "
                                                 f"{self.wheels}\nno-such-package-fastfn==1.0\n"})
        self.fns.add("plain", {"handler.sh": "#!/bin/sh\necho plain\n"})
        gw = self.start_gateway(self.fns, wait_for=["plain"])
        failed = gw.wait_answer("/bad", lambda r: r.status == 503 and "install failed" in r.text,
                                INSTALL_TIMEOUT, "the failed install's reason")
        reason = failed.json()["error"]
        self.assertIn("requirements.txt: the install failed: pip install ended with exit code", reason)
        self.assertIn("no-such-package-fastfn", reason)
        summary = self.summary(gw, "bad")
        self.assertEqual((summary.get("installing"), summary.get("ready")), (False, False), summary)
        self.assertEqual(gw.get("/plain").text, "plain\n")
        self.assertIn("install function=bad", gw.log(), "pip's output is in the log")
        # Fixed: installed and served.
        self.fns.write("bad", "requirements.txt", self.requirements(str(self.wheels), "1.0"))
        served = gw.wait_answer("/bad", lambda r: r.status == 200, INSTALL_TIMEOUT, "the fixed function")
        self.assertEqual(served.json(), {"version": "1.0"})

    def test_node_package_json_installs_a_real_npm_package(self):
        manifest = {"name": "probe", "version": "1.0.0", "private": True,
                    "dependencies": {"is-number": "7.0.0"}}
        folder = self.fns.add("js", {"handler.js": NODE_HANDLER, "package.json": json.dumps(manifest)})
        gw = self.start_gateway(self.fns)
        served = gw.wait_answer("/js", lambda r: r.status == 200, INSTALL_TIMEOUT, "the node function")
        self.assertEqual(served.json(), {"five": True, "word": False})
        self.assertTrue((folder / "node_modules" / "is-number" / "package.json").is_file())
        self.assertFalse((folder / "package-lock.json").exists(), "npm wrote a lock file")

    def test_php_composer_json_installs_its_autoloader_into_vendor(self):
        # No package from packagist (not reachable from here): the autoloader composer writes for
        # the function's own classes is what the handler needs and cannot have without the install.
        manifest = {"autoload": {"psr-4": {"Probe\\": "src/"}}}
        handler = ("<?php\nrequire __DIR__ . '/vendor/autoload.php';\n"
                   "header('Content-Type: text/plain');\necho \\Probe\\Greeter::hi('ada');\n")
        greeter = ("<?php\nnamespace Probe;\nclass Greeter {\n"
                   "  public static function hi(string $name): string { return \"hi $name from composer\"; }\n}\n")
        folder = self.fns.add("php", {"handler.php": handler, "composer.json": json.dumps(manifest),
                                      "src/Greeter.php": greeter})
        gw = self.start_gateway(self.fns)
        served = gw.wait_answer("/php", lambda r: r.status == 200, INSTALL_TIMEOUT, "the php function")
        self.assertEqual(served.text, "hi ada from composer")
        self.assertTrue((folder / "vendor" / "autoload.php").is_file())
        self.assertIn("composer install", gw.log())
        # The lock file composer writes is no part of the key: no second install for it.
        self.assertEqual(gw.log().count("install function=php queued"), 1, gw.log())


if __name__ == "__main__":
    unittest.main()
