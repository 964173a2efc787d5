#!/usr/bin/env python3
"""Each starter function in templates/ is a valid function folder and answers correctly when served
through fastfn-watchdog the way the gateway runs it (its format, its folder as the working dir).

cpp-http and go-http are built binaries: FASTFN_CPP_HANDLER and FASTFN_GO_HANDLER, by default in
<repo>/build/templates/. node-http and node-express need `node` on PATH (skipped otherwise). The app
servers' templates also run as a user gets them, folders behind fastfn-gateway.
Run alone: python3 tests/integration/test_templates.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase  # noqa: E402
from harness import MIB  # noqa: E402
from hot_support import PYTHON, TEMPLATES_DIR, Gate, HotTestCase  # noqa: E402

TEMPLATES = {  # folder -> (handler file, expected fn.config.json runtime, format)
    "python-http": ("handler.py", "python", "http"),
    "node-http": ("handler.js", "node", "http"),
    "cpp-http": ("handler.cpp", "exec", "http"),
    "sh-cgi": ("handler.sh", "sh", "cgi"),
    "python-flask": ("app.py", "exec", "server"),
    "python-fastapi": ("app.py", "exec", "server"),
    "node-express": ("app.js", "exec", "server"),
    "go-http": ("main.go", "exec", "server"),
    "rust-http": ("Cargo.toml", "rust", "server"),
    "php-cgi": ("handler.php", "php", "cgi"),
    "lua-cgi": ("handler.lua", "lua", "cgi"),
    "python-event": ("handler.py", "python", None),  # the event contract: FastFN's, no format
    "node-event": ("handler.js", "node", None),
}
APP_SERVERS = ("python-flask", "python-fastapi", "node-express", "go-http")
NODE = shutil.which("node")
GUNICORN = shutil.which("gunicorn", path="/usr/bin:/bin")


def cpp_handler() -> str:
    return os.path.abspath(os.environ.get("FASTFN_CPP_HANDLER") or str(
        harness.REPO_ROOT / "build" / "templates" / "cpp-http" / "handler"))


def go_handler() -> str:
    return os.path.abspath(os.environ.get("FASTFN_GO_HANDLER") or str(
        harness.REPO_ROOT / "build" / "templates" / "go-http" / "handler"))


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")


class TemplateFolderTest(unittest.TestCase):

    def test_each_template_is_a_function_folder(self):
        for name, (handler, runtime, fmt) in TEMPLATES.items():
            with self.subTest(template=name):
                folder = TEMPLATES_DIR / name
                self.assertTrue((folder / handler).is_file(), f"{folder / handler}")
                config = json.loads((folder / "fn.config.json").read_text())
                self.assertEqual(config.get("runtime"), runtime, config)
                self.assertEqual(config.get("format"), fmt, config)
                readme = [line for line in (folder / "README.md").read_text().splitlines() if line.strip()]
                self.assertEqual(len(readme), 1, f"README.md is one line: {readme}")
                self.assertIn("fastfn-watchdog", readme[0], "it says how to run it alone")
        self.assertTrue(os.access(TEMPLATES_DIR / "sh-cgi" / "handler.sh", os.X_OK))


class TemplateServeTest(HotTestCase):

    def serve(self, name: str, command, fmt: str = "http", options=()) -> harness.Watchdog:
        return self.start_watchdog(command, ["--format", fmt, "--name", name,
                                             "--workdir", str(TEMPLATES_DIR / name), *options])

    def check_greeting_and_echo(self, wd: harness.Watchdog) -> None:
        # One keep-alive connection: each request starts once the previous one is fully done, so
        # the same hot process must answer them all.
        with wd.connection(timeout=30) as conn:
            first = conn.request("GET", "/?name=ada")
            self.assert_status(first, 200, wd)
            match = re.fullmatch(r"hello ada from pid (\d+)\n", first.text)
            self.assertIsNotNone(match, f"greeting: {first!r}")
            pid = match.group(1)
            self.assertEqual(conn.request("GET", "/").text, f"hello world from pid {pid}\n",
                             "the same hot process answers again")
            body = os.urandom(MIB)
            echoed = conn.request("POST", "/", body=body)
            self.assert_status(echoed, 200, wd)
            self.assertEqual(hashlib.sha256(echoed.body).digest(), hashlib.sha256(body).digest())
            head = conn.request("HEAD", "/?name=ada")
            self.assert_status(head, 200, wd)
            self.assertEqual(head.body, b"")
            self.assertEqual(conn.request("GET", "/?name=bo").text, f"hello bo from pid {pid}\n",
                             "the process is still in step after HEAD and a large body")
        self.assertEqual(harness.children(wd.pid), [int(pid)], "one process served everything")

    def test_python_http(self):
        wd = self.serve("python-http", [PYTHON, "handler.py"])
        self.check_greeting_and_echo(wd)

    def check_app_server(self, name: str, command, options=()) -> harness.Watchdog:
        """Greets, echoes 1 MiB, answers HEAD, and the same process answers again."""
        wd = self.serve(name, command, "server", options)
        with wd.connection(timeout=30) as conn:
            first = conn.request("GET", "/?name=ada")
            self.assert_status(first, 200, wd)
            self.assertRegex(first.text, r"^hello ada from pid \d+\n$")
            body = os.urandom(MIB)
            echoed = conn.request("POST", "/", body=body)
            self.assertEqual(hashlib.sha256(echoed.body).digest(), hashlib.sha256(body).digest())
            head = conn.request("HEAD", "/?name=ada")
            self.assert_status(head, 200, wd)
            self.assertEqual(head.body, b"")
            self.assertEqual(conn.request("GET", "/").text, first.text.replace("ada", "world"),
                             "the same process answers again")
        return wd

    @unittest.skipUnless(GUNICORN, "gunicorn (Debian's package; scripts/setup installs it) is missing")
    def test_python_flask(self):
        config = json.loads((TEMPLATES_DIR / "python-flask" / "fn.config.json").read_text())
        self.check_app_server("python-flask", config["command"])

    def test_python_fastapi(self):
        config = json.loads((TEMPLATES_DIR / "python-fastapi" / "fn.config.json").read_text())
        command = [PYTHON if word == "python3" else word for word in config["command"]]
        self.check_app_server("python-fastapi", command,
                              ["--max-concurrency", str(config["max_concurrency"])])

    @unittest.skipUnless(NODE, "node is not installed")
    def test_node_express(self):
        config = json.loads((TEMPLATES_DIR / "node-express" / "fn.config.json").read_text())
        command = [NODE if word == "node" else word for word in config["command"]]
        self.check_app_server("node-express", command, ["--max-concurrency", str(config["max_concurrency"])])

    def test_rust_http(self):
        cargo = shutil.which("cargo")
        self.assertIsNotNone(cargo, "cargo is missing (scripts/setup installs Debian's)")
        crate = os.path.join(self.make_tempdir(), "rust-http")
        shutil.copytree(TEMPLATES_DIR / "rust-http", crate)  # cargo writes its Cargo.lock there
        built = subprocess.run([cargo, "build", "--release", "--offline", "--target-dir",
                                os.path.join(crate, "target")],
                               cwd=crate, capture_output=True, text=True, timeout=600)
        self.assertEqual(built.returncode, 0, built.stderr)
        config = json.loads((TEMPLATES_DIR / "rust-http" / "fn.config.json").read_text())
        self.check_app_server("rust-http", [os.path.join(crate, "target", "release", "rust-http")],
                              ["--max-concurrency", str(config["max_concurrency"])])

    def test_go_http(self):
        binary = go_handler()
        harness.check_executable(binary, "the go-http template (FASTFN_GO_HANDLER; Go builds it)")
        config = json.loads((TEMPLATES_DIR / "go-http" / "fn.config.json").read_text())
        self.check_app_server("go-http", [binary], ["--max-concurrency", str(config["max_concurrency"])])

    def test_python_event(self):
        shim = str(harness.REPO_ROOT / "shims" / "python" / "fastfn_event.py")
        self.check_greeting_and_echo(self.serve("python-event", [PYTHON, shim, "handler.py"]))

    @unittest.skipUnless(NODE, "node is not installed")
    def test_node_event(self):
        shim = str(harness.REPO_ROOT / "shims" / "node" / "fastfn_event.js")
        self.check_greeting_and_echo(self.serve("node-event", [NODE, shim, "handler.js"]))

    @unittest.skipUnless(NODE, "node is not installed")
    def test_node_http(self):
        wd = self.serve("node-http", [NODE, "handler.js"])
        self.check_greeting_and_echo(wd)

    def test_cpp_http(self):
        binary = cpp_handler()
        harness.check_executable(binary, "the cpp-http template (FASTFN_CPP_HANDLER)")
        wd = self.serve("cpp-http", [binary])
        pid = self.wait_children(wd, 1)[0]
        with wd.connection(timeout=30) as conn:
            ok = conn.request("GET", "/")
            self.assert_status(ok, 200, wd)
            self.assertEqual(ok.body, b"ok", "the 2-byte body scripts/bench measures")
            body = os.urandom(3 * MIB)
            echoed = conn.request("POST", "/anything", body=body,
                                  headers={"Content-Type": "application/x-test"})
            self.assert_status(echoed, 200, wd)
            self.assertEqual(echoed.headers.get("Content-Type"), "application/x-test")
            self.assertEqual(hashlib.sha256(echoed.body).digest(), hashlib.sha256(body).digest())
            chunked = conn.request("POST", "/", body=iter([b"a", b"bc"]))
            self.assertEqual(chunked.body, b"abc")
            self.assert_status(conn.request("DELETE", "/"), 405, wd)
            self.assertEqual(conn.request("HEAD", "/").body, b"")
            for _ in range(50):
                self.assertEqual(conn.request("GET", "/").body, b"ok")
        self.assertEqual(harness.children(wd.pid), [pid], "one process served everything")

    def test_sh_cgi(self):
        wd = self.serve("sh-cgi", ["sh", "handler.sh"], fmt="cgi")
        greeting = wd.get("/hello/there?x=1&name=ada")
        self.assert_status(greeting, 200, wd)
        self.assertEqual(greeting.text, "hello ada from GET /hello/there\n")
        self.assertEqual(wd.get("/").text, "hello world from GET /\n")
        posted = wd.post("/?name=bo", b"line one\nline two\n")
        self.assertEqual(posted.text, "hello bo from POST /\nline one\nline two\n")
        response = wd.get("/", headers={"X-Fn-Request-Id": "sh-cgi-1"})
        self.assert_status(response, 200, wd)
        self.wait_log(wd, r"request_id=sh-cgi-1")


class PythonLibraryTest(HotTestCase):
    """fastfn_http.serve() beyond the greeting: streaming, errors, stray prints."""

    HANDLER = """
import sys
sys.path.insert(0, {lib!r})
import os
import time
from fastfn_http import Response, serve

def stream(directory):
    yield "first\\n"
    while not os.path.exists(os.path.join(directory, "release")):
        time.sleep(0.005)
    yield b"second\\n"

def handle(request):
    if request.path == "/stream":
        return Response(200, stream(request.query.partition("dir=")[2]))
    if request.path == "/fail":
        raise ValueError("broken on purpose")
    if request.path == "/print":
        print("a stray print")
    return {{"pid": os.getpid(), "id": request.request_id, "deadline": request.deadline_ms}}

serve(handle)
"""

    def setUp(self):
        super().setUp()
        workdir = self.make_tempdir()
        script = os.path.join(workdir, "handler.py")
        with open(script, "w") as f:
            f.write(self.HANDLER.format(lib=str(TEMPLATES_DIR / "python-http")))
        self.wd = self.start_watchdog([PYTHON, script], ["--format", "http", "--name", "pylib"])

    def test_handler_errors_are_500_and_the_process_lives_on(self):
        pid = self.get_pid(self.wd)
        failed = self.wd.get("/fail")
        self.assert_status(failed, 500, self.wd)
        self.assertIn(b"broken on purpose", failed.body)
        self.assertEqual(self.get_pid(self.wd), pid)
        self.wait_log(self.wd, rf"\[fn\] pylib pid={pid} [^\n]*handler error: ValueError")

    def test_stray_print_goes_to_the_log_not_the_protocol(self):
        pid = self.get_pid(self.wd)
        self.assertEqual(self.get_pid(self.wd, "/print"), pid, "the stream stayed in step")
        self.wait_log(self.wd, rf"\[fn\] pylib pid={pid} [^\n]*a stray print")

    def test_request_id_and_deadline(self):
        data = self.json_of(self.wd.get("/", headers={"X-Fn-Request-Id": "lib-1"}), self.wd)
        self.assertEqual(data["id"], "lib-1")
        self.assertGreater(data["deadline"], 0)

    def test_iterator_body_is_streamed_chunked(self):
        gate = Gate(self)
        first = threading.Event()
        pool = self.executor(1)
        future = pool.submit(self.wd.get, f"/stream?dir={gate.dir}", timeout=30,
                             on_body=lambda data: first.set())
        self.assertTrue(first.wait(15), f"the first piece never arrived\n{self.wd.describe()}")
        gate.release()
        response = self.result(future, self.wd, "stream")
        self.assert_status(response, 200, self.wd)
        self.assertTrue(response.chunked)
        self.assertEqual(response.body_length, len(b"first\nsecond\n"))


class PythonLibraryWritesTest(unittest.TestCase):
    """fastfn_http's writes, on a recording stdout: with PYTHONUNBUFFERED, sys.stdout.buffer is a raw
    FileIO, and each write() call is one write(2), which may take less than it was given. An answer
    in two writes lets the watchdog see the inotify event of the second after it read the bytes (the
    kernel queues it after waking the reader), so a whole answer is one call."""

    class RawStdout:
        def __init__(self, most: int):
            self.most, self.calls = most, []

        def write(self, data) -> int:
            taken = bytes(data[:self.most])
            self.calls.append(taken)
            return len(taken)

        def flush(self) -> None:
            pass

    def library(self):
        sys.path.insert(0, str(TEMPLATES_DIR / "python-http"))
        self.addCleanup(sys.path.remove, str(TEMPLATES_DIR / "python-http"))
        import fastfn_http
        return fastfn_http

    def test_a_whole_answer_is_one_write_call(self):
        lib = self.library()
        out = self.RawStdout(most=1 << 20)
        lib._write_response(out, lib.Response(200, b"x" * 5000, {"Content-Type": "text/plain"}), "GET")
        self.assertEqual(len(out.calls), 1, out.calls)
        self.assertTrue(out.calls[0].startswith(b"HTTP/1.1 200 OK\r\n"), out.calls)
        self.assertTrue(out.calls[0].endswith(b"\r\n\r\n" + b"x" * 5000), out.calls)

    def test_a_short_write_is_continued(self):
        lib = self.library()
        out = self.RawStdout(most=7)
        lib._write_response(out, lib.Response(200, b"hello world", {}), "GET")
        whole = b"".join(out.calls)
        self.assertTrue(whole.endswith(b"Content-Length: 11\r\n\r\nhello world"), whole)
        self.assertTrue(all(len(c) <= 7 for c in out.calls))




class AppServersBehindTheGatewayTest(GatewayTestCase):

    def test_app_server_templates_as_folders_behind_the_gateway(self):
        """Each app-server template, copied as `fastfn new` copies it (node_modules installed, the
        Go program built), is a function the gateway serves at its folder's name: the app's `/`
        at /NAME/, its greeting, a 1 MiB echo, one process reused across requests."""
        harness.check_executable(go_handler(), "the go-http template (FASTFN_GO_HANDLER; Go builds it)")
        self.assertTrue(NODE and GUNICORN, "node and gunicorn (scripts/setup installs them)")
        fns = self.functions()
        for name in APP_SERVERS:
            target = fns.path(name)
            shutil.copytree(TEMPLATES_DIR / name, target, symlinks=True, ignore=shutil.ignore_patterns(
                "node_modules", "handler", "meson.build", "__pycache__"))
        os.symlink(TEMPLATES_DIR / "node-express" / "node_modules", fns.path("node-express") / "node_modules")
        shutil.copy2(go_handler(), fns.path("go-http") / "handler")
        # The templates name python3 and node: Debian's python3 has uvicorn, wherever node is.
        path = os.pathsep.join(dict.fromkeys([os.path.dirname(PYTHON), os.path.dirname(NODE), "/usr/bin", "/bin"]))
        gw = self.start_gateway(fns, wait_for=APP_SERVERS, env={"PATH": path})
        for name in APP_SERVERS:
            with self.subTest(template=name):
                first = gw.get(f"/{name}/?name=ada", timeout=30)
                self.assertEqual(first.status, 200, f"{name}: {first!r}\n{gw.describe()}")
                match = re.fullmatch(r"hello ada from pid (\d+)\n", first.text)
                self.assertIsNotNone(match, f"{name}'s greeting: {first!r}")
                body = os.urandom(MIB)
                echoed = gw.request("POST", f"/{name}/", body=body, timeout=30)
                self.assertEqual(echoed.status, 200, f"{name}: {echoed!r}")
                self.assertEqual(hashlib.sha256(echoed.body).digest(), hashlib.sha256(body).digest())
                again = gw.get(f"/{name}/", timeout=30)
                self.assertEqual(again.text, f"hello world from pid {match.group(1)}\n",
                                 f"{name}: the app process answers again")

if __name__ == "__main__":
    unittest.main(verbosity=2)
