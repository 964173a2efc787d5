#!/usr/bin/env python3
"""Integration tests of the `fastfn` command (cli/fastfn, docs/CLI.md).

The command runs as a real process ($FASTFN_CLI, default <repo>/cli/fastfn, under /usr/bin/python3)
against real gateways (FASTFN_GATEWAY, FASTFN_WATCHDOG) on free loopback ports over temp functions
dirs: `new` (templates, names, no overwrite), `list` and `health` (tables, --json, exit codes),
`invoke` (bodies, headers, paths, streaming, the function's exit code and one code per failure
class), `dev` (table, access lines plain / colour / JSON, hot reload, signals, exit status, gateway
cleanup) and the bash completion. Conditions are polled; every process started is killed at the end.
Run alone: python3 tests/integration/test_cli.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import collections  # noqa: E402
import concurrent.futures  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pty  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from gateway_support import (FASTFN_HTTP_PY, PYTHON, TEMPLATES_DIR, CallbackReceiver, FunctionsDir,  # noqa: E402
                             Gate, Gateway,
                             GatewayTestCase, check_binaries, cmdline, free_port_not_in_use,
                             gateway_binary, gateway_env)

CLI = os.environ.get("FASTFN_CLI") or str(harness.REPO_ROOT / "cli" / "fastfn")
LAUNCHER = str(harness.REPO_ROOT / "cli" / "fastfn")  # the source tree's: runs cli/fastfn_cli/
COMPLETION = str(harness.REPO_ROOT / "cli" / "fastfn.bash-completion")
# The program as installed: the zipapp cli/meson.build builds (FASTFN_CLI under meson test).
ZIPAPP = CLI if zipfile.is_zipfile(CLI) else str(harness.REPO_ROOT / "build" / "cli" / "fastfn")
DOCS = harness.REPO_ROOT / "docs" / "CLI.md"
ANSI = "\x1b["

# Exit codes as docs/CLI.md and `fastfn invoke --help` give them: a function's own exit code as it
# is, fastfn's own from sysexits.h.
EXIT_USAGE, EXIT_REFUSED, EXIT_NOINPUT, EXIT_NOTFOUND, EXIT_CONNECT = 64, 65, 66, 67, 69
EXIT_SERVER, EXIT_CANTCREAT, EXIT_PENDING, EXIT_TIMEOUT = 70, 73, 75, 124

ECHO_SH = """#!/bin/sh
# Prints what it received as key=value lines, then the body.
echo "method=$REQUEST_METHOD"
echo "script_name=$SCRIPT_NAME"
echo "path_info=$PATH_INFO"
echo "query=$QUERY_STRING"
echo "x_test=${HTTP_X_TEST:-}"
echo "content_type=${CONTENT_TYPE:-}"
echo "---"
cat
"""

# A hot handler answering ?status=N with that status and a body of its own.
STATUS_PY = """from fastfn_http import Response, serve


def handle(request):
    query = dict(p.split("=", 1) for p in request.query.split("&") if "=" in p)
    status = int(query.get("status", "200"))
    return Response(status, f"function says {status}\\n", {"Content-Type": "text/plain"})


if __name__ == "__main__":
    serve(handle)
"""

# A hot handler that breaks the stdio protocol: the watchdog answers 502.
GARBAGE_PY = """import sys
for line in sys.stdin:
    sys.stdout.write("this is not HTTP\\n")
    sys.stdout.flush()
"""


def setUpModule():
    check_binaries()
    harness.check_executable(PYTHON, "python3")
    if not os.path.isfile(CLI):
        raise RuntimeError(f"fastfn CLI not found: {CLI} (set FASTFN_CLI)")


def cli_env(url: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    env = gateway_env({"FASTFN_GATEWAY_BIN": gateway_binary(), "FN_WATCHDOG_BIN": harness.watchdog_binary(),
                       "FN_PYTHON_BIN": PYTHON, "FN_HEALTH_INTERVAL": "250ms", "NO_COLOR": None,
                       "FASTFN_URL": url,
                       # the installed zipapp's are in share/fastfn/templates; here, the source tree's
                       "FASTFN_TEMPLATES": str(TEMPLATES_DIR)})
    env = {k: v for k, v in env.items() if v is not None}
    env.update({k: v for k, v in (extra or {}).items() if v is not None})
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
    return env


class CliRun(harness.CliResult):
    """A finished `fastfn` run; stdout is bytes with binary_out."""

    def describe(self) -> str:
        out = self.stdout if isinstance(self.stdout, str) else repr(self.stdout[:2000])
        return f"  argv={self.argv} exit={self.returncode}\n  stdout:\n{out[-3000:]}\n  stderr:\n{self.stderr[-3000:]}"


def run_cli(args: Sequence[str], *, url: Optional[str] = None, env: Optional[dict] = None,
            input: Optional[bytes] = None, cwd: Optional[str] = None, timeout: float = 30.0,
            binary_out: bool = False) -> harness.CliResult:
    """Runs `fastfn ARGS` to completion in its own session; on timeout the session is killed and
    returncode is None."""
    argv = [PYTHON, CLI, *args]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(url, env), cwd=cwd,
                            start_new_session=True)
    code, out, err = harness.communicate_or_kill(proc, timeout, input)
    result = CliRun(code, out if binary_out else out.decode("utf-8", "replace"),
                               err.decode("utf-8", "replace"), argv)
    return result


def kill_session_and_named(pid: int, marker: str) -> None:
    """SIGKILLs what `fastfn dev` (pid, a session leader) left: its session, its descendants and any
    process whose command line names `marker` (its temp dir: the watchdogs' sockets)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tree = {s.pid for s in harness.descendants(pid)}
        victims = [s for s in harness.all_proc_stats() if s.state != "Z" and s.pid != os.getpid()
                   and (s.session == pid or s.pid in tree or s.pid == pid or marker in cmdline(s.pid))]
        if not victims:
            return
        for s in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(s.pid, signal.SIGKILL)
        time.sleep(0.02)


class Dev:
    """A `fastfn dev` process with its stdout and stderr in files."""

    def __init__(self, case: unittest.TestCase, args: Sequence[str], cwd: Optional[str] = None,
                 env: Optional[dict] = None, tty: bool = False):
        self.tmp = tempfile.mkdtemp(prefix="fastfn-clidev-")
        case.addCleanup(shutil.rmtree, self.tmp, True)
        self.port = free_port_not_in_use()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out_path = os.path.join(self.tmp, "stdout")
        self.err_path = os.path.join(self.tmp, "stderr")
        self.argv = [PYTHON, CLI, "dev", *args]
        self.env = cli_env(None, {"FN_SOCKET_BASE_DIR": os.path.join(self.tmp, "sockets"),
                                  "FASTFN_URL": self.url, **(env or {})})
        self.master: Optional[int] = None
        self.tty_data = b""
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            if tty:
                self.master, slave = pty.openpty()
                stdout: object = slave
            else:
                stdout = out
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err,
                                         env=self.env, cwd=cwd or self.tmp, start_new_session=True)
            if tty:
                os.close(slave)
        case.addCleanup(self.close)

    def close(self) -> None:
        kill_session_and_named(self.proc.pid, self.tmp)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def stdout(self) -> str:
        if self.master is not None:
            import select
            while select.select([self.master], [], [], 0)[0]:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.tty_data += data
            return self.tty_data.decode("utf-8", "replace")
        return Path(self.out_path).read_text(errors="replace")

    def stderr(self) -> str:
        return Path(self.err_path).read_text(errors="replace")

    def describe(self) -> str:
        return (f"fastfn dev {self.argv} exit={self.proc.poll()}\n--- stdout:\n{self.stdout()[-4000:]}"
                f"\n--- stderr:\n{self.stderr()[-4000:]}")

    def wait_stdout(self, predicate, timeout: float = 30.0, what: str = "") -> str:
        def check():
            text = self.stdout()
            return text if predicate(text) else ""
        return wait_until(check, timeout, interval=0.05, message=lambda: f"{what}\n{self.describe()}")

    def gateway_pids(self) -> list[int]:
        return [s.pid for s in harness.descendants(self.proc.pid)
                if s.state != "Z" and "fastfn-gateway" in cmdline(s.pid)]


class CliCase(GatewayTestCase):
    def assert_exit(self, result: harness.CliResult, code: int, note: str = "") -> None:
        self.assertEqual(result.returncode, code, f"{note}\n{result.describe()}")


# --------------------------------------------------------------------------------------------------


class TestHelpAndUsage(CliCase):
    def test_every_subcommand_has_help(self):
        for sub in ("dev", "new", "list", "describe", "health", "invoke", "call", "logs"):
            with self.subTest(sub=sub):
                result = run_cli([sub, "--help"])
                self.assert_exit(result, 0)
                self.assertIn(f"usage: fastfn {sub}", result.stdout)
        top = run_cli(["--help"])
        self.assert_exit(top, 0)
        for sub in ("dev", "new", "list", "describe", "health", "invoke", "call", "logs"):
            self.assertIn(sub, top.stdout)
        self.assertIn("usage: fastfn invoke", run_cli(["help", "invoke"]).stdout)

    def test_usage_errors_exit_2(self):
        for args in ([], ["frobnicate"], ["invoke"], ["list", "--bogus"], ["dev", "--log-format", "xml"],
                     ["invoke", "x", "-H", "no colon"], ["logs", "x", "-n", "-1"], ["describe"],
                     ["new", "x", "--template", "cobol"], ["call"], ["call", "a/b"], ["call", "x" * 129],
                     ["invoke", "x", "--call-id", "c1"], ["invoke", "x", "--callback", "http://h/"],
                     ["invoke", "x", "--async", "--call-id", "has space"],
                     ["invoke", "x", "--async", "--call-id", ""]):
            with self.subTest(args=args):
                result = run_cli(args, url="http://127.0.0.1:9")
                self.assert_exit(result, EXIT_USAGE)
                self.assertTrue(result.stderr.strip(), result.describe())

    def test_exit_codes_are_documented_in_help_and_docs(self):
        help_text = run_cli(["invoke", "--help"]).stdout
        docs = DOCS.read_text()
        for code, words in ((0, "2xx"), (64, "bad arguments"), (65, "4xx"), (66, "-d @FILE"),
                            (67, "no such function"), (69, "cannot connect"), (70, "5xx"),
                            (74, "connection broke"), (76, "not a fastfn gateway"), (124, "timed out")):
            with self.subTest(code=code):
                self.assertRegex(help_text, rf"(?m)^\s+{code}\s+.*{re.escape(words)}")
                self.assertRegex(docs, rf"(?m)^\|\s*`?{code}`?\s*\|.*{re.escape(words)}")
        self.assertIn("X-Fn-Exit-Code", help_text)
        self.assertIn("X-Fn-Exit-Code", docs)

    def test_call_exit_codes_are_documented_in_help_and_docs(self):
        help_text = run_cli(["call", "--help"]).stdout
        docs = DOCS.read_text()
        for code, words in ((0, "2xx"), (67, "no such call"), (70, "5xx"), (124, "504"),
                            (EXIT_PENDING, "not finished")):
            with self.subTest(code=code):
                self.assertRegex(help_text, rf"(?m)^\s+{code}\s+.*{re.escape(words)}")
                self.assertRegex(docs, rf"(?m)^\|\s*`?{code}`?\s*\|.*{re.escape(words)}")
        self.assertIn("--async", run_cli(["invoke", "--help"]).stdout)
        self.assertIn("fastfn call", docs)


# --------------------------------------------------------------------------------------------------


class TestVersionAndLauncher(CliCase):
    def project_version(self) -> str:
        meson = (harness.REPO_ROOT / "meson.build").read_text()
        return re.search(r"project\('fastfn'.*?version:\s*'([^']+)'", meson, re.S).group(1)

    def test_the_zipapp_runs_version_as_an_executable(self):
        self.assertTrue(zipfile.is_zipfile(ZIPAPP), f"{ZIPAPP}: not a zipapp (ninja -C build)")
        self.assertEqual(Path(ZIPAPP).read_bytes()[:23], b"#!/usr/bin/env python3\n")
        self.assertTrue(os.access(ZIPAPP, os.X_OK))
        result = subprocess.run([ZIPAPP, "--version"], capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL, env=cli_env())
        self.assertEqual((result.returncode, result.stdout, result.stderr),
                         (0, f"fastfn {self.project_version()}\n", ""))

    def test_the_source_launcher_runs_the_package_and_finds_the_templates_beside_it(self):
        version = subprocess.run([PYTHON, LAUNCHER, "--version"], capture_output=True, text=True,
                                 timeout=30, stdin=subprocess.DEVNULL, env=cli_env())
        self.assertEqual((version.returncode, version.stdout), (0, f"fastfn {self.project_version()}\n"))
        templates = subprocess.run([PYTHON, LAUNCHER, "new", "--list-templates"], capture_output=True,
                                   text=True, timeout=30, stdin=subprocess.DEVNULL,
                                   env=cli_env(extra={"FASTFN_TEMPLATES": None}))
        self.assertEqual(templates.returncode, 0, templates.stderr)
        self.assertIn("sh-cgi\truntime sh, format cgi\n", templates.stdout, "cli/../templates found")


class TestNew(CliCase):
    def template_files(self, name: str) -> dict[str, bytes]:
        """The template's own files (not scripts/dev's link to the built cpp-http handler; the
        stdio loop python-http and node-http link from shims/ is theirs, copied as a file)."""
        root = TEMPLATES_DIR / name
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and not (p.is_symlink() and p.name == "handler") and p.name != "meson.build" and "__pycache__" not in p.parts
                and "node_modules" not in p.parts and ".fastfn" not in p.parts and p.name != "Cargo.lock"}

    def test_creates_each_template_and_never_overwrites(self):
        base = self.make_tempdir()
        fns = os.path.join(base, "fns")
        for template in ("python-http", "node-http", "python-event", "node-event", "cpp-http", "sh-cgi",
                         "php-cgi", "lua-cgi", "python-flask", "python-fastapi", "node-express", "go-http",
                         "rust-http"):
            with self.subTest(template=template):
                name = f"my-{template}"
                result = run_cli(["new", name, "--template", template, "--dir", fns])
                self.assert_exit(result, 0)
                self.assertIn(name, result.stdout)
                folder = Path(fns) / name
                copied = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
                expected = self.template_files(template)
                for file_name, data in expected.items():
                    self.assertEqual(copied.get(file_name), data, f"{file_name} of {template}")
                self.assertNotIn("meson.build", copied)
                links = [p for p in folder.rglob("*") if p.is_symlink()]
                self.assertEqual(links, [], f"{template}: a link would break where the function moves")
                extra = set(copied) - set(expected)
                built = template in ("cpp-http", "go-http")
                self.assertEqual(extra, {"handler"} if built else set(), result.stdout)
        self.assertTrue(os.access(Path(fns) / "my-sh-cgi" / "handler.sh", os.X_OK))
        self.assertTrue(os.access(Path(fns) / "my-cpp-http" / "handler", os.X_OK))
        self.assertTrue(os.access(Path(fns) / "my-go-http" / "handler", os.X_OK), "go build made no handler")
        self.assertEqual([p.name for p in Path(fns).iterdir() if p.name.startswith(".")], [],
                         "the staging folder was left behind")

        # An existing folder is never touched.
        marker = Path(fns) / "my-sh-cgi" / "handler.sh"
        marker.write_text("#!/bin/sh\necho mine\n")
        result = run_cli(["new", "my-sh-cgi", "--template", "sh-cgi", "--dir", fns])
        self.assert_exit(result, EXIT_CANTCREAT)
        self.assertIn("already exists", result.stderr)
        self.assertEqual(marker.read_text(), "#!/bin/sh\necho mine\n")
        Path(fns, "plainfile").write_text("x")
        self.assert_exit(run_cli(["new", "plainfile", "--dir", fns]), EXIT_CANTCREAT)
        self.assertEqual(Path(fns, "plainfile").read_text(), "x")

    def test_default_dir_nested_names_and_bad_names(self):
        cwd = self.make_tempdir()
        result = run_cli(["new", "hello"], cwd=cwd)
        self.assert_exit(result, 0)
        self.assertTrue((Path(cwd) / "functions" / "hello" / "handler.py").is_file(),
                        "the default is ./functions and the python-http template")
        self.assert_exit(run_cli(["new", "api/users", "-t", "sh-cgi"], cwd=cwd), 0)
        self.assertTrue((Path(cwd) / "functions" / "api" / "users" / "handler.sh").is_file())
        for bad in ("a;b", "../up", ".hidden", "_private", "a//b", "console", "with space", "x/../y",
                    "node_modules", "é"):
            with self.subTest(name=bad):
                result = run_cli(["new", bad, "-t", "sh-cgi"], cwd=cwd)
                self.assert_exit(result, EXIT_USAGE)
                self.assertIn("name", result.stderr)
        self.assertEqual(sorted(p.name for p in (Path(cwd) / "functions").iterdir()), ["api", "hello"])
        self.assertFalse((Path(cwd) / "up").exists())

    def test_list_templates(self):
        result = run_cli(["new", "--list-templates"])
        self.assert_exit(result, 0)
        names = [line.split("\t")[0] for line in result.stdout.splitlines()]
        self.assertEqual(sorted(names), ["cpp-http", "go-http", "lua-cgi", "node-event", "node-express", "node-http", "php-cgi",
                          "python-event", "python-fastapi", "python-flask", "python-http", "rust-http", "sh-cgi"])

    def test_new_functions_are_ready_to_serve(self):
        fns = FunctionsDir(self.make_tempdir())
        templates = ["sh-cgi", "python-http", "cpp-http"] + (["node-http"] if shutil.which("node") else [])
        for template in templates:
            self.assert_exit(run_cli(["new", template.replace("-", ""), "-t", template, "--dir", str(fns)]), 0)
        names = [t.replace("-", "") for t in templates]
        gw = self.start_gateway(fns, wait_for=names)
        expected = {"shcgi": "hello world from GET", "pythonhttp": "hello world from pid",
                    "cpphttp": "ok", "nodehttp": "hello"}
        for name in names:
            with self.subTest(name=name):
                result = run_cli(["invoke", name], url=f"http://127.0.0.1:{gw.port}")
                self.assert_exit(result, 0)
                self.assertIn(expected[name], result.stdout)


# --------------------------------------------------------------------------------------------------


class GatewayClass(CliCase):
    """One gateway for the whole class (starting one per test would dominate the run time)."""

    gw: Gateway
    fns: FunctionsDir
    url: str

    @classmethod
    def add_functions(cls, fns: FunctionsDir) -> list[str]:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fns = FunctionsDir()
        try:
            names = cls.add_functions(cls.fns)
            cls.gw = Gateway(cls.fns, wait_for=names, env=cls.gateway_extra_env())
            cls.gw.start()
        except BaseException:
            if getattr(cls, "gw", None) is not None:
                print(cls.gw.describe())
                cls.gw.close()
            cls.fns.cleanup()
            raise
        cls.url = f"http://127.0.0.1:{cls.gw.port}"

    @classmethod
    def gateway_extra_env(cls) -> dict:
        return {}

    @classmethod
    def tearDownClass(cls):
        cls.gw.close()
        cls.fns.cleanup()
        super().tearDownClass()

    def invoke(self, *args: str, **kwargs) -> harness.CliResult:
        return run_cli(["invoke", *args], url=self.url, **kwargs)


class TestInvokeListHealth(GatewayClass):
    @classmethod
    def add_functions(cls, fns: FunctionsDir) -> list[str]:
        fns.add("echo", {"handler.sh": ECHO_SH})
        fns.add("routed", {"handler.sh": ECHO_SH}, {"routes": ["/custom/place"]})
        fns.add("fail", {"handler.sh": "#!/bin/sh\necho failing\nexit 3\n"})
        fns.add("big", {"handler.sh": "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' a\nexit 9\n"})
        fns.add("bigok", {"handler.sh": "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' b\n"})
        fns.add("slow", {"handler.sh": "#!/bin/sh\nexec sleep 30\n"}, {"timeout_ms": 300})
        fns.add("hang", {"handler.sh": "#!/bin/sh\nexec sleep 30\n"}, {"timeout_ms": 20000})
        fns.add("getonly", {"handler.sh": ECHO_SH}, {"methods": ["GET"]})
        fns.add("tiny", {"handler.sh": ECHO_SH}, {"max_body_bytes": 10})
        fns.add("status", {"handler.py": STATUS_PY, "fastfn_http.py": FASTFN_HTTP_PY}, {"format": "http"})
        fns.add("garbage", {"handler.py": GARBAGE_PY}, {"format": "http"})
        fns.add("lazy", {"handler.sh": ECHO_SH}, {"worker_pool": {"min_warm": 0}})  # stays cold: never called
        fns.add("noisy", {"handler.sh": "#!/bin/sh\necho \"noisy-line $QUERY_STRING\" >&2\necho ok\n"})
        return ["echo", "routed", "fail", "big", "slow", "getonly", "tiny", "status", "garbage", "noisy"]

    # -- invoke: what is sent
    def test_invoke_get_path_query_and_headers(self):
        result = self.invoke("echo", "--path", "/sub/x?name=ada&b=1", "-H", "X-Test: yes please")
        self.assert_exit(result, 0)
        kv = dict(line.split("=", 1) for line in result.stdout.split("---")[0].splitlines() if "=" in line)
        self.assertEqual(kv["method"], "GET")
        self.assertEqual(kv["script_name"], "/echo")
        self.assertEqual(kv["path_info"], "/sub/x")
        self.assertEqual(kv["query"], "name=ada&b=1")
        self.assertEqual(kv["x_test"], "yes please")
        only_query = self.invoke("echo", "--path", "?q=1")
        self.assertIn("query=q=1\n", only_query.stdout)
        self.assertIn("path_info=\n", only_query.stdout)

    def test_invoke_bodies_literal_file_and_stdin(self):
        literal = self.invoke("echo", "-d", "hello body", "-H", "Content-Type: text/x-test")
        self.assert_exit(literal, 0)
        self.assertIn("method=POST\n", literal.stdout, "-d makes it a POST")
        self.assertIn("content_type=text/x-test\n", literal.stdout)
        self.assertTrue(literal.stdout.endswith("---\nhello body"), literal.describe())
        put = self.invoke("echo", "-X", "put", "-d", "x")
        self.assertIn("method=PUT\n", put.stdout)

        data = os.urandom(3 * 1024 * 1024)
        path = os.path.join(self.make_tempdir(), "body.bin")
        Path(path).write_bytes(data)
        from_file = self.invoke("echo", "-d", f"@{path}", binary_out=True)
        self.assert_exit(from_file, 0)
        self.assertEqual(from_file.stdout.split(b"---\n", 1)[1], data, "a 3 MiB file body comes back whole")

        # stdin of unknown length goes chunked; a long echo must not deadlock.
        from_stdin = self.invoke("echo", "-d", "@-", input=data, binary_out=True)
        self.assert_exit(from_stdin, 0)
        self.assertEqual(from_stdin.stdout.split(b"---\n", 1)[1], data)

    def test_invoke_route_from_function_list_and_explicit_paths(self):
        result = self.invoke("routed", "--path", "/deeper")
        self.assert_exit(result, 0)
        self.assertIn("script_name=/custom/place\n", result.stdout)
        self.assertIn("path_info=/deeper\n", result.stdout)
        by_path = self.invoke("/custom/place/x")
        self.assert_exit(by_path, 0)
        self.assertIn("path_info=/x\n", by_path.stdout)

    def test_invoke_head_has_no_body(self):
        result = self.invoke("echo", "-X", "HEAD", "-i")
        self.assert_exit(result, 0)
        self.assertEqual(result.stdout, "")
        self.assertIn("HTTP/1.1 200", result.stderr)
        self.assertRegex(result.stderr, r"(?mi)^X-Fn-Request-Id: \S+")

    # -- invoke: exit codes
    def test_function_exit_code_from_header(self):
        result = self.invoke("fail")
        self.assert_exit(result, 3, "a cgi function's exit 3 (500 + X-Fn-Exit-Code: 3)")
        self.assertEqual(result.stdout, "failing\n", "its output still reaches stdout")
        ok = self.invoke("echo")
        self.assert_exit(ok, 0, "X-Fn-Exit-Code: 0 and 200")

    def test_function_exit_code_from_trailer_of_a_streamed_output(self):
        result = self.invoke("big", "-i", binary_out=True)
        self.assert_exit(result, 9, "past 64 KiB the exit code arrives as a trailer")
        self.assertEqual(result.stdout, b"a" * 300000)
        self.assertIn("HTTP/1.1 200", result.stderr, "the status was sent before the exit code was known")
        self.assertRegex(result.stderr, r"(?mi)^X-Fn-Exit-Code: 9$")
        ok = self.invoke("bigok", binary_out=True)
        self.assert_exit(ok, 0)
        self.assertEqual(len(ok.stdout), 300000)

    def test_4xx_classes_exit_67_for_404_else_65(self):
        cases = [
            (["nosuch"], "no function named 'nosuch'", EXIT_NOTFOUND),
            (["/no/such/path"], "404", EXIT_NOTFOUND),
            (["getonly", "-X", "POST"], "405", EXIT_REFUSED),
            (["tiny", "-d", "x" * 100], "413", EXIT_REFUSED),
        ]
        for args, needle, code in cases:
            with self.subTest(args=args):
                result = self.invoke(*args)
                self.assert_exit(result, code)
                self.assertIn(needle, result.stderr)
                self.assertEqual(result.stdout, "", "the gateway's own JSON error goes to stderr")
        own = self.invoke("status", "--path", "?status=404")
        self.assert_exit(own, EXIT_NOTFOUND)
        self.assertEqual(own.stdout, "function says 404\n", "a function's own 404 body stays on stdout")

    def test_5xx_classes_exit_70(self):
        own = self.invoke("status", "--path", "?status=503")
        self.assert_exit(own, EXIT_SERVER)
        self.assertEqual(own.stdout, "function says 503\n")
        broken = self.invoke("garbage")
        self.assert_exit(broken, EXIT_SERVER, "a handler that breaks the protocol: 502")
        self.assertIn("502", broken.stderr)

    def test_timeouts_exit_124(self):
        started = time.monotonic()
        gateway_timeout = self.invoke("slow")
        self.assert_exit(gateway_timeout, EXIT_TIMEOUT, "504: the function ran past timeout_ms")
        self.assertIn("504", gateway_timeout.stderr)
        client_timeout = self.invoke("/hang", "--timeout", "1")  # a path: no /_fn/functions lookup
        self.assert_exit(client_timeout, EXIT_TIMEOUT, "no answer within --timeout")
        self.assertIn("--timeout", client_timeout.stderr)
        self.assertLess(time.monotonic() - started, 20)

    def test_cannot_connect_exits_69(self):
        port = free_port_not_in_use()
        for command in (["invoke", "echo"], ["list"], ["health"]):
            with self.subTest(command=command):
                result = run_cli(command, url=f"http://127.0.0.1:{port}")
                self.assert_exit(result, EXIT_CONNECT)
                self.assertIn("cannot connect", result.stderr)
        missing_socket = run_cli(["list"], url=f"unix:{self.make_tempdir()}/none.sock")
        self.assert_exit(missing_socket, EXIT_CONNECT)

    # -- invoke: stdin as the body
    def test_piped_stdin_is_the_body_of_a_post(self):
        piped = self.invoke("echo", input=b"piped body")
        self.assert_exit(piped, 0)
        self.assertIn("method=POST\n", piped.stdout, "a body makes it a POST, as with -d")
        self.assertTrue(piped.stdout.endswith("---\npiped body"), piped.describe())
        data = os.urandom(1 << 20)
        large = self.invoke("echo", "-X", "PUT", input=data, binary_out=True)
        self.assert_exit(large, 0)
        self.assertIn(b"method=PUT\n", large.stdout)
        self.assertEqual(large.stdout.split(b"---\n", 1)[1], data, "1 MiB of stdin streamed whole")
        literal = self.invoke("echo", "-d", "from -d", input=b"not this")
        self.assertTrue(literal.stdout.endswith("---\nfrom -d"), "-d wins over stdin")

    def test_no_body_from_dev_null_an_empty_pipe_or_no_stdin(self):
        for what, kwargs, args in (("/dev/null", {}, ()), ("an empty pipe", {"input": b""}, ()),
                                   ("--no-stdin", {"input": b"ignored"}, ("--no-stdin",))):
            with self.subTest(stdin=what):
                result = self.invoke("echo", *args, **kwargs)
                self.assert_exit(result, 0)
                self.assertIn("method=GET\n", result.stdout)
                self.assertTrue(result.stdout.endswith("---\n"), result.describe())

    def test_no_stdin_never_waits_for_a_pipe_that_never_ends(self):
        argv = [PYTHON, CLI, "invoke", "echo", "--no-stdin"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=cli_env(self.url), start_new_session=True)
        self.addCleanup(proc.stdin.close)  # held open until it has exited: the pipe never ends
        try:
            code = proc.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        out = proc.stdout.read().decode()
        proc.stdout.close()
        proc.stderr.close()
        self.assertEqual(code, 0)
        self.assertIn("method=GET\n", out)

    def test_unreadable_body_file_exits_66(self):
        result = self.invoke("echo", "-d", "@/nonexistent/file")
        self.assert_exit(result, EXIT_NOINPUT)
        self.assertIn("/nonexistent/file", result.stderr)

    # -- describe
    def test_describe_text_and_json(self):
        result = run_cli(["describe", "routed"], url=self.url)
        self.assert_exit(result, 0)
        fields = dict(re.findall(r"(?m)^([a-z ]+):\s+(.*)$", result.stdout))
        self.assertEqual((fields["name"], fields["runtime"], fields["format"], fields["routes"]),
                         ("routed", "sh", "cgi", "/custom/place"))
        self.assertEqual(fields["url"], f"{self.url}/custom/place")
        self.assertEqual(fields["async url"], f"{self.url}/async-function/custom/place")
        self.assertRegex(fields["state"], r"^ready, up, ")
        self.assertRegex(fields["sockets"], r"^1/1 up, ")
        self.assertEqual(fields["dir"], str(self.fns.path("routed")))
        self.assertEqual(fields["command"], "sh handler.sh")
        pid = json.loads(self.gw.get("/_fn/health").body)
        pids = [str(s["pid"]) for r in pid["runtimes"].values() for s in r["sockets"] if s["function"] == "routed"]
        self.assertRegex(result.stdout, rf"(?m)^0\s+up\s+{pids[0]}\s+0\s")

        as_json = run_cli(["describe", "tiny", "--json"], url=self.url)
        self.assert_exit(as_json, 0)
        data = json.loads(as_json.stdout)
        listed = [f for f in json.loads(self.gw.get("/_fn/functions").body)["functions"] if f["name"] == "tiny"][0]
        self.assertEqual((data["summary"]["routes"], data["config"]), (listed["summary"]["routes"], listed["config"]))
        self.assertEqual((data["urls"], data["async_urls"]), ([f"{self.url}/tiny"], [f"{self.url}/async-function/tiny"]))
        self.assertEqual(data["config"]["max_body_bytes"], 10)
        self.assertEqual([s["index"] for s in data["sockets"]], [0])

    def test_describe_unknown_function_exits_67(self):
        result = run_cli(["describe", "nosuch"], url=self.url)
        self.assert_exit(result, EXIT_NOTFOUND)
        self.assertEqual(result.stdout, "")
        self.assertRegex(result.stderr, r"\Afastfn: no function named 'nosuch' at .*\(functions: .*echo.*\)\n\Z")
        self.assert_exit(run_cli(["describe", "echo"], url=f"http://127.0.0.1:{free_port_not_in_use()}"),
                         EXIT_CONNECT)

    # -- logs
    def test_logs_recent_lines_and_the_last_n(self):
        for i in range(3):
            self.assert_exit(self.invoke("noisy", "--path", f"?call{i}"), 0)
        wanted = ["noisy-line call0", "noisy-line call1", "noisy-line call2"]

        def logged() -> Optional[harness.CliResult]:
            result = run_cli(["logs", "noisy"], url=self.url)
            return result if result.returncode == 0 and all(w in result.stdout for w in wanted) else None
        result = wait_until(logged, 20, message=lambda: run_cli(["logs", "noisy"], url=self.url).describe())
        self.assertTrue(result.stdout.endswith("\n"))
        self.assertEqual([w for line in result.stdout.splitlines() for w in wanted if w in line], wanted,
                         "oldest first")
        # The watchdog's own lines may still come in: -n 2's are the last two of a log between the
        # one read before and the one read after.
        before = result.stdout.splitlines()
        last = run_cli(["logs", "noisy", "-n", "2"], url=self.url)
        self.assert_exit(last, 0)
        after = run_cli(["logs", "noisy"], url=self.url).stdout.splitlines()
        self.assertTrue(any(after[m - 2:m] == last.stdout.splitlines() for m in range(len(before), len(after) + 1)),
                        f"-n 2 gave {last.stdout!r}; the log:\n" + "\n".join(after))

    def test_logs_follow_prints_new_lines_until_ctrl_c(self):
        out_path = os.path.join(self.make_tempdir(), "out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([PYTHON, CLI, "logs", "noisy", "-f", "-n", "0"], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.PIPE, env=cli_env(self.url),
                                    start_new_session=True)
        self.addCleanup(self.stop_session, proc)
        markers: list[str] = []

        def followed() -> bool:
            markers.append(f"follow{len(markers)}")
            self.assert_exit(self.invoke("noisy", "--path", f"?{markers[-1]}"), 0)
            text = Path(out_path).read_text()
            return any(f"noisy-line {marker}\n" in text for marker in markers)
        # The follower may connect after the first call: each try is a call of its own.
        wait_until(followed, 20, message=lambda: f"no followed line:\n{Path(out_path).read_text()}")
        self.assertIsNone(proc.poll(), "-f keeps following")
        os.kill(proc.pid, signal.SIGINT)
        self.assertEqual(proc.wait(20), 0, "Ctrl-C ends -f with exit 0")
        self.assertEqual(proc.stderr.read(), b"", "quietly")

    @staticmethod
    def stop_session(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()

    def test_logs_of_an_unknown_function_exit_67(self):
        result = run_cli(["logs", "nosuch"], url=self.url)
        self.assert_exit(result, EXIT_NOTFOUND)
        self.assertEqual(result.stdout, "")
        self.assertIn("404", result.stderr)
        self.assert_exit(run_cli(["logs", "noisy"], url=f"http://127.0.0.1:{free_port_not_in_use()}"),
                         EXIT_CONNECT)

    def test_url_flag_wins_over_fastfn_url(self):
        result = run_cli(["invoke", "echo", "--url", self.url], url="http://127.0.0.1:9")
        self.assert_exit(result, 0)
        self.assertIn("method=GET", result.stdout)

    # -- list
    def test_list_table_json_and_names(self):
        listing = json.loads(self.gw.get("/_fn/functions").body)
        names = sorted(f["name"] for f in listing["functions"])
        table = run_cli(["list"], url=self.url)
        self.assert_exit(table, 0)
        lines = table.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "RUNTIME", "FORMAT", "ROUTES", "UP", "URL"])
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        self.assertEqual(sorted(rows), names)
        self.assertEqual(rows["routed"][1:4], ["sh", "cgi", "/custom/place"])
        self.assertEqual(rows["status"][1:3], ["python", "http"])
        self.assertEqual(rows["echo"][4], "1/1")
        self.assertEqual(rows["echo"][5], f"{self.url}/echo")
        self.assertEqual(rows["lazy"][4], "cold", "a function started on demand and not called yet")
        as_json = run_cli(["list", "--json"], url=self.url)
        self.assert_exit(as_json, 0)
        self.assertEqual(sorted(f["name"] for f in json.loads(as_json.stdout)["functions"]), names)
        only_names = run_cli(["list", "--names"], url=self.url)
        self.assertEqual(only_names.stdout.splitlines(), names)

    # -- health
    def test_health_table_and_json(self):
        result = run_cli(["health"], url=self.url)
        self.assert_exit(result, 0)
        self.assertIn(f"gateway {self.url}: ok", result.stdout)
        health = json.loads(self.gw.get("/_fn/health").body)
        pids = {str(s["pid"]) for r in health["runtimes"].values() for s in r["sockets"] if s["pid"]}
        for name in ("echo", "status"):
            self.assertRegex(result.stdout, rf"(?m)^{name}\s+\S+\s+\S+\s+yes\s+1/1")
        self.assertRegex(result.stdout, r"(?m)^lazy\s+sh\s+cgi\s+yes\s+cold\s")
        for pid in pids:
            self.assertRegex(result.stdout, rf"(?m)^\S+\s+0\s+up\s+{pid}\s")
        as_json = run_cli(["health", "--json"], url=self.url)
        self.assert_exit(as_json, 0)
        data = json.loads(as_json.stdout)
        self.assertEqual(data["status"], "ok")
        self.assertEqual(set(data["functions"]), set(health["functions"]))


class TestDegradedGateway(GatewayClass):
    """A remote-only function whose socket does not exist: health is degraded, calls get 503."""

    @classmethod
    def add_functions(cls, fns: FunctionsDir) -> list[str]:
        fns.add("fine", {"handler.sh": "#!/bin/sh\necho fine\n"})
        fns.add("misconfigured", {"handler.sh": "#!/bin/sh\necho never\n"}, {"no_such_key": 1})
        return ["fine"]

    @classmethod
    def gateway_extra_env(cls) -> dict:
        cls.ghost_dir = tempfile.mkdtemp(prefix="fastfn-ghost-")
        return {"FN_RUNTIME_SOCKETS": json.dumps({"ghost": [f"unix:{cls.ghost_dir}/nothing.sock"]})}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.ghost_dir, ignore_errors=True)

    def test_health_degraded_exits_1(self):
        self.wait_health(self.gw, lambda h: h.get("status") == "degraded", what="ghost is down")
        result = run_cli(["health"], url=self.url)
        self.assert_exit(result, 1)
        self.assertIn(": degraded", result.stdout)
        self.assertRegex(result.stdout, r"(?m)^ghost\s+remote\s+\S+\s+NO\s+0/1")
        # A broken function is listed with its reason, not only counted down.
        self.assertRegex(result.stdout, r'(?m)^  misconfigured: .*fn\.config\.json: unknown key "no_such_key"')
        as_json = run_cli(["health", "--json"], url=self.url)
        self.assert_exit(as_json, 1)
        self.assertEqual(json.loads(as_json.stdout)["status"], "degraded")

    def test_unavailable_function_exits_70(self):
        result = run_cli(["invoke", "ghost"], url=self.url)
        self.assert_exit(result, EXIT_SERVER)
        self.assertIn("503", result.stderr)
        self.assertIn("unavailable", result.stderr)
        self.assert_exit(run_cli(["invoke", "fine"], url=self.url), 0)


# --------------------------------------------------------------------------------------------------


# A cgi function that appends each run's X-Call-Id to STATE_DIR/runs, then says which call it ran.
RUNS_SH = """#!/bin/sh
echo "$HTTP_X_CALL_ID" >> "$STATE_DIR/runs"
echo "ran $HTTP_X_CALL_ID"
"""

FAST_RETRIES = {"initial_retry_wait": "20ms", "max_retry_wait": "50ms", "max_retry_attempts": 2}


class TestAsync(GatewayClass):
    """`fastfn invoke --async` and `fastfn call` against a gateway with a queue of its own."""

    @classmethod
    def add_functions(cls, fns: FunctionsDir) -> list[str]:
        cls.gate_dir = tempfile.mkdtemp(prefix="fastfn-cli-gate-")
        cls.state_dir = tempfile.mkdtemp(prefix="fastfn-cli-state-")
        fns.add("echo", {"handler.sh": ECHO_SH})
        fns.add("fail", {"handler.sh": "#!/bin/sh\necho failing\nexit 3\n"})
        fns.add("status", {"handler.py": STATUS_PY, "fastfn_http.py": FASTFN_HTTP_PY}, {"format": "http"})
        fns.add("slow", {"handler.sh": "#!/bin/sh\nexec sleep 30\n"}, {"timeout_ms": 300, "async": FAST_RETRIES})
        fns.add("runs", {"handler.sh": RUNS_SH}, {"env": {"STATE_DIR": cls.state_dir}})
        fns.add("getonly", {"handler.sh": ECHO_SH}, {"methods": ["GET"]})
        fns.add("tiny", {"handler.sh": ECHO_SH}, {"max_body_bytes": 10})
        fns.gate("gated", cls.gate_dir)
        return ["echo", "fail", "status", "slow", "runs", "getonly", "tiny", "gated"]

    @classmethod
    def gateway_extra_env(cls) -> dict:
        cls.queue_dir = tempfile.mkdtemp(prefix="fastfn-cli-queue-")
        return {"FN_QUEUE": f"sqlite:{cls.queue_dir}/queue.db"}

    @classmethod
    def tearDownClass(cls):
        Gate(cls.gate_dir).release()  # no gated handler waits in vain
        super().tearDownClass()
        for path in (cls.gate_dir, cls.state_dir, cls.queue_dir):
            shutil.rmtree(path, ignore_errors=True)

    def call(self, *args: str, **kwargs) -> harness.CliResult:
        return run_cli(["call", *args], url=self.url, **kwargs)

    def submit(self, *args: str) -> str:
        """`fastfn invoke --async ARGS`: checks it printed one id and nothing else; returns it."""
        result = self.invoke("--async", *args)
        self.assert_exit(result, 0)
        self.assertRegex(result.stdout, r"\A[A-Za-z0-9._-]{1,128}\n\Z", "only the id and a newline on stdout")
        self.assertEqual(result.stderr, "", result.describe())
        return result.stdout.strip()

    def state(self, call_id: str) -> dict:
        return self.json_of(self.gw.get(f"/_fn/calls/{call_id}"), self.gw)

    def test_async_call_is_queued_and_its_result_fetched(self):
        call_id = self.submit("echo", "--path", "/sub/x?name=ada", "-d", "queued body",
                              "-H", "X-Test: from the queue")
        state = self.state(call_id)
        self.assertEqual((state["id"], state["function"], state["method"], state["path"]),
                         (call_id, "echo", "POST", "/echo/sub/x?name=ada"))
        self.assertIn(state["status"], ("queued", "running", "retrying", "done"))

        waited = self.call(call_id, "--wait")
        self.assert_exit(waited, 0)
        kv = dict(line.split("=", 1) for line in waited.stdout.split("---")[0].splitlines() if "=" in line)
        self.assertEqual((kv["method"], kv["script_name"], kv["path_info"], kv["query"], kv["x_test"]),
                         ("POST", "/echo", "/sub/x", "name=ada", "from the queue"))
        self.assertTrue(waited.stdout.endswith("---\nqueued body"), waited.describe())
        self.assertEqual(waited.stderr, "", "a call that went well prints only its result")

        again = self.call(call_id)  # finished: no --wait needed, the same result
        self.assert_exit(again, 0)
        self.assertEqual(again.stdout, waited.stdout)

        as_json = self.call(call_id, "--json")
        self.assert_exit(as_json, 0)
        data = json.loads(as_json.stdout)
        self.assertEqual((data["id"], data["status"], data["function_status"], data["attempts"]),
                         (call_id, "done", 200, 1))
        self.assertEqual(data["result_bytes"], len(waited.stdout.encode()))

    def test_piped_stdin_is_the_body_of_a_queued_call(self):
        queued = self.invoke("--async", "echo", input=b"queued from stdin")
        self.assert_exit(queued, 0)
        waited = self.call(queued.stdout.strip(), "--wait")
        self.assert_exit(waited, 0)
        self.assertIn("method=POST\n", waited.stdout)
        self.assertTrue(waited.stdout.endswith("---\nqueued from stdin"), waited.describe())

    def test_binary_result_is_written_as_is(self):
        data = os.urandom(200000)
        path = os.path.join(self.make_tempdir(), "big.bin")
        Path(path).write_bytes(data)
        call_id = self.submit("echo", "-d", f"@{path}")
        result = self.call(call_id, "--wait", binary_out=True)
        self.assert_exit(result, 0)
        self.assertEqual(result.stdout.split(b"---\n", 1)[1], data)

    def test_function_errors_give_the_exit_code_of_their_status(self):
        failing_id = self.submit("fail")
        failing = self.call(failing_id, "--wait")
        self.assert_exit(failing, 3, "a queued cgi call exits with the function's exit code, as invoke does")
        self.assertEqual(failing.stdout, "failing\n", "the function's own error body stays on stdout")
        state = self.state(failing_id)
        self.assertEqual((state["status"], state["function_status"], state["exit_code"]), ("done", 500, 3))
        self.assert_exit(self.call(failing_id, "--json"), 3, "--json exits as the result would")
        result = self.gw.get(f"/_fn/calls/{failing_id}/result")
        self.assertEqual(result.headers.get("X-Fn-Exit-Code"), "3")
        self.assertNotIn("exit_code", self.state(self.submit("status", "--path", "?status=200")),
                         "a hot function reports no exit code")

        own_404 = self.call(self.submit("status", "--path", "?status=404"), "--wait")
        self.assert_exit(own_404, EXIT_NOTFOUND)
        self.assertEqual(own_404.stdout, "function says 404\n")

        # 504 is retried; after max_retry_attempts runs the call has failed with it.
        call_id = self.submit("slow")
        timed_out = self.call(call_id, "--wait")
        self.assert_exit(timed_out, EXIT_TIMEOUT)
        self.assertEqual(timed_out.stdout, "", "the gateway's own 504 error goes to stderr, as with invoke")
        self.assertIn("504", timed_out.stderr)
        self.assertIn(f"{call_id}: failed", timed_out.stderr)
        self.assertEqual((self.state(call_id)["status"], self.state(call_id)["attempts"]), ("failed", 2))
        as_json = self.call(call_id, "--json")
        self.assert_exit(as_json, EXIT_TIMEOUT, "--json exits as the result would")
        self.assertEqual(json.loads(as_json.stdout)["function_status"], 504)

    def test_call_id_is_kept_and_a_repeat_queues_nothing(self):
        call_id = "cli-own.id_1"
        result = self.invoke("--async", "runs", "--call-id", call_id)
        self.assert_exit(result, 0)
        self.assertEqual(result.stdout, f"{call_id}\n")
        done = self.call(call_id, "--wait")
        self.assert_exit(done, 0)
        self.assertEqual(done.stdout, f"ran {call_id}\n", "the function got the id as X-Call-Id")
        before = self.state(call_id)

        repeat = self.invoke("--async", "runs", "--call-id", call_id)
        self.assert_exit(repeat, 0)
        self.assertEqual(repeat.stdout, f"{call_id}\n")
        runs = Path(self.state_dir, "runs")
        self.assert_stays(lambda: runs.read_text().split() == [call_id] and self.state(call_id) == before, 0.5,
                          lambda: f"the repeat ran again: {runs.read_text()!r} {self.state(call_id)}")

    def test_callback_receives_the_result(self):
        receiver = CallbackReceiver()
        self.addCleanup(receiver.close)
        call_id = self.submit("echo", "-d", "for the hook", "--callback", f"{receiver.url}/done")
        posts = wait_until(lambda: receiver.of(call_id), 20,
                           message=lambda: f"no callback for {call_id}: {receiver.posts}\n{self.gw.describe()}")
        path, headers, body = posts[0]
        self.assertEqual(path, "/done")
        self.assertEqual(headers.get("x-call-id"), call_id)
        self.assertEqual(headers.get("x-function-status"), "200")
        self.assertTrue(body.endswith(b"---\nfor the hook"), body)
        as_json = self.call(call_id, "--json")
        self.assertEqual(json.loads(as_json.stdout)["callback"]["url"], f"{receiver.url}/done")

    def test_a_burst_of_a_thousand_calls_with_callbacks_is_accounted_for_by_id(self):
        receiver = CallbackReceiver()
        self.addCleanup(receiver.close)
        before = self.gw.metrics()
        sent_before = before.get("fastfn_async_callbacks_total", result="sent")
        failed_before = before.get("fastfn_async_callbacks_total", result="failed")

        def submit(i: int) -> harness.CliResult:
            # The timeout only bounds a hung run: under this load a run may wait long for a core.
            return self.invoke("--async", "echo", "--callback", f"{receiver.url}/hook", "-d", str(i),
                               timeout=120)
        # A worker holds one CLI process at a time: 12 of them keep two cores busy with no idle gaps.
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            runs = list(pool.map(submit, range(1000)))
        bad = [run.describe() for run in runs if run.returncode != 0 or run.stderr
               or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}\n", run.stdout)]
        self.assertEqual(bad[:3], [], f"{len(bad)} of the 1000 runs did not print one id alone")
        index_of = {run.stdout.strip(): i for i, run in enumerate(runs)}
        self.assertEqual(len(index_of), 1000, "every call has an id of its own")

        wait_until(lambda: len(receiver.posts) >= 1000, 300,
                   message=lambda: f"{len(set(index_of) - receiver.ids())} callbacks missing\n{self.gw.describe()}")
        # The gateway counts a callback sent once the receiver has answered it: at 1000 none is left
        # to come, so a late duplicate cannot slip past the checks below.
        self.wait_metric(self.gw, "fastfn_async_callbacks_total", sent_before + 1000, 30, result="sent")
        self.assertEqual(self.gw.metrics().get("fastfn_async_callbacks_total", result="failed"), failed_before,
                         "no callback was refused or timed out, so none was sent again")
        with receiver.lock:
            posts = list(receiver.posts)
        delivered = collections.Counter(headers.get("x-call-id") for _, headers, _ in posts)
        self.assertEqual(set(delivered), set(index_of), "no callback missing, none of a call the CLI did not print")
        # At least once repeats a callback only after a kill or a failed delivery; neither happened.
        self.assertEqual({call: n for call, n in delivered.items() if n != 1}, {}, "each callback exactly once")
        wrong = [(headers.get("x-call-id"), path, headers.get("x-function-status"), body[-40:])
                 for path, headers, body in posts
                 if (path, headers.get("x-function-status"), body.partition(b"\n---\n")[2])
                 != ("/hook", "200", str(index_of[headers.get("x-call-id")]).encode())]
        self.assertEqual(wrong[:3], [], f"{len(wrong)} callbacks do not carry their call's own result")

    def test_running_call_exits_75_until_it_has_finished(self):
        gate = Gate(self.gate_dir)
        self.addCleanup(gate.release, "held")
        call_id = self.submit("gated", "--path", "?name=held")
        gate.wait_started(["held"], describe=self.gw.describe)

        running = self.call(call_id)
        self.assert_exit(running, EXIT_PENDING)
        self.assertEqual(running.stdout, "", "nothing on stdout until there is a result")
        self.assertEqual(running.stderr, f"{call_id}: running (gated, attempt 1)\n")
        as_json = self.call(call_id, "--json")
        self.assert_exit(as_json, EXIT_PENDING)
        self.assertEqual(json.loads(as_json.stdout)["status"], "running")
        bounded = self.call(call_id, "--wait", "--timeout", "0.5")
        self.assert_exit(bounded, EXIT_PENDING, "--wait gives up after --timeout")
        self.assertIn("not finished within 0.5s", bounded.stderr)

        gate.release("held")
        released = self.call(call_id, "--wait")
        self.assert_exit(released, 0)
        self.assertEqual(released.stdout, "released held\n")

    def test_unknown_call_exits_67(self):
        result = self.call("no-such-call")
        self.assert_exit(result, EXIT_NOTFOUND)
        self.assertIn("no such call", result.stderr)
        self.assertEqual(result.stdout, "")
        self.assert_exit(self.call("no-such-call", "--wait"), EXIT_NOTFOUND)

    def test_refused_async_calls_exit_as_synchronous_errors(self):
        cases = [
            (["nosuch"], "no function named 'nosuch'"),
            (["/no/such/path"], "404"),
            (["getonly", "-X", "POST"], "405"),
            (["tiny", "-d", "x" * 100], "413"),
            (["echo", "--callback", "ftp://example.com/x"], "X-Callback-Url"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                result = self.invoke("--async", *args)
                self.assert_exit(result, EXIT_NOTFOUND if "404" in needle or "nosuch" in args else EXIT_REFUSED)
                self.assertIn(needle, result.stderr)
                self.assertEqual(result.stdout, "", "no call id for a refused call")

    def test_cannot_connect_exits_69(self):
        url = f"http://127.0.0.1:{free_port_not_in_use()}"
        for command in (["invoke", "echo", "--async"], ["call", "some-id"]):
            with self.subTest(command=command):
                result = run_cli(command, url=url)
                self.assert_exit(result, EXIT_CONNECT)
                self.assertIn("cannot connect", result.stderr)


# --------------------------------------------------------------------------------------------------


class TestDev(CliCase):
    def functions_dir(self) -> FunctionsDir:
        fns = self.functions()
        fns.add("hello", {"handler.sh": "#!/bin/sh\necho \"hello from $PATH_INFO\"\necho logged-line >&2\n"})
        return fns

    def start_dev(self, args: Sequence[str] = (), fns: Optional[FunctionsDir] = None, **kwargs) -> Dev:
        fns = fns or self.functions_dir()
        dev = Dev(self, [str(fns), *args], **kwargs) if fns is not False else Dev(self, list(args), **kwargs)
        return dev

    def ready_plain(self, dev: Dev) -> str:
        return dev.wait_stdout(lambda t: "Ctrl-C" in t, what="the start table")

    def test_table_access_lines_hot_reload_and_sigint(self):
        fns = self.functions_dir()
        dev = Dev(self, [str(fns)])
        text = self.ready_plain(dev)
        self.assertNotIn(ANSI, text, "stdout is not a terminal: no colour")
        self.assertRegex(text, r"(?m)^NAME\s+RUNTIME\s+FORMAT\s+ROUTES\s+UP\s+URL$")
        self.assertRegex(text, rf"(?m)^hello\s+sh\s+cgi\s+/hello\s+1/1\s+{re.escape(dev.url)}/hello$")

        result = run_cli(["invoke", "hello", "--path", "/abc", "-i"], url=dev.url)
        self.assert_exit(result, 0)
        self.assertEqual(result.stdout, "hello from /abc\n")
        request_id = re.search(r"(?mi)^X-Fn-Request-Id: (\S+)", result.stderr).group(1)
        line = dev.wait_stdout(lambda t: request_id in t, what="the access line").splitlines()
        access = [entry for entry in line if request_id in entry][0]
        self.assertRegex(access, r"^\d\d:\d\d:\d\d\.\d{3}\s+200 GET\s+/hello/abc\s+→ hello\s+\S+ms\s+\d+B\s+"
                         + request_id + "$")
        self.assertEqual(sum(request_id in entry for entry in line), 1, "one line per request")
        self.assertEqual([entry for entry in dev.stdout().splitlines() if "/_fn/" in entry], [],
                         "fastfn's own polls of /_fn/ are not shown")
        wait_until(lambda: "logged-line" in dev.stderr(), 10, message=dev.describe)
        run_cli(["invoke", "/nothing/here"], url=dev.url)
        dev.wait_stdout(lambda t: re.search(r"404 GET\s+/nothing/here", t), what="a 404 line")

        # Hot reload: a new function is announced and served, a removed one announced.
        self.assert_exit(run_cli(["new", "later", "-t", "sh-cgi", "--dir", str(fns)]), 0)
        dev.wait_stdout(lambda t: re.search(r"added\s+later\s+sh cgi\s+" + re.escape(dev.url) + "/later", t),
                        what="the added line")
        self.assert_exit(run_cli(["invoke", "later"], url=dev.url), 0)
        fns.remove("later")
        dev.wait_stdout(lambda t: re.search(r"removed\s+later", t), what="the removed line")

        gateways = dev.gateway_pids()
        self.assertEqual(len(gateways), 1, dev.describe())
        os.kill(dev.proc.pid, signal.SIGINT)
        self.assertEqual(dev.proc.wait(20), 0, dev.describe())
        wait_until(lambda: not harness.pid_alive(gateways[0]), 5, message="the gateway outlived fastfn dev")
        self.assertFalse(any(dev.tmp in cmdline(s.pid) for s in harness.all_proc_stats() if s.state != "Z"),
                         "a watchdog outlived fastfn dev")
        self.assertEqual(run_cli(["list"], url=dev.url).returncode, EXIT_CONNECT)

    def test_json_log_format(self):
        dev = self.start_dev(["--log-format", "json"])
        first = dev.wait_stdout(lambda t: t.endswith("\n"), what="the ready event").splitlines()[0]
        ready = json.loads(first)
        self.assertEqual(ready["event"], "ready")
        self.assertEqual(ready["url"], dev.url)
        self.assertEqual([(f["name"], f["format"], f["routes"], f["urls"]) for f in ready["functions"]],
                         [("hello", "cgi", ["/hello"], [f"{dev.url}/hello"])])
        self.assert_exit(run_cli(["invoke", "hello", "-X", "PUT", "-d", "x"], url=dev.url), 0)
        lines = dev.wait_stdout(lambda t: '"request"' in t, what="a request event").splitlines()
        events = [json.loads(line) for line in lines]  # every stdout line is JSON
        request = [e for e in events if e["event"] == "request"][0]
        self.assertEqual({k: request[k] for k in ("method", "path", "function", "status")},
                         {"method": "PUT", "path": "/hello", "function": "hello", "status": 200})
        self.assertIsInstance(request["ms"], float)
        self.assertTrue(request["request_id"])
        os.kill(dev.proc.pid, signal.SIGTERM)
        self.assertEqual(dev.proc.wait(20), 0, dev.describe())

    def test_colour_on_a_terminal_and_when_forced(self):
        tty = self.start_dev(tty=True)
        tty.wait_stdout(lambda t: "Ctrl-C" in t, what="the table on a pty")
        self.assert_exit(run_cli(["invoke", "hello"], url=tty.url), 0)
        text = tty.wait_stdout(lambda t: "→ hello" in t, what="the access line on a pty")
        access = [line for line in text.splitlines() if "→ hello" in line][0]
        self.assertIn("\x1b[32m200\x1b[0m", access, "a 2xx status is green on a terminal")

        never = self.start_dev(["--color", "never"], tty=True)
        never.wait_stdout(lambda t: "Ctrl-C" in t)
        self.assertNotIn(ANSI, never.stdout())

        forced = self.start_dev(["--color", "always"])
        forced.wait_stdout(lambda t: "Ctrl-C" in t)
        self.assert_exit(run_cli(["invoke", "/missing"], url=forced.url), EXIT_NOTFOUND)
        text = forced.wait_stdout(lambda t: "/missing" in t)
        self.assertIn("\x1b[33;1m404\x1b[0m", text, "a 4xx status is yellow")

        no_color = self.start_dev(tty=True, env={"NO_COLOR": "1"})
        no_color.wait_stdout(lambda t: "Ctrl-C" in t)
        self.assertNotIn(ANSI, no_color.stdout())

    def test_exit_status_of_the_gateway_port_in_use(self):
        first = self.start_dev()
        self.ready_plain(first)
        second = Dev(self, [str(self.functions_dir()), "--listen", f"127.0.0.1:{first.port}"])
        self.assertEqual(second.proc.wait(30), 2, second.describe())
        self.assertIn("in use", second.stderr())
        self.assertNotIn("NAME", second.stdout(), "no table of the other gateway")

    def test_gateway_stops_when_fastfn_dev_is_killed(self):
        dev = self.start_dev()
        self.ready_plain(dev)
        gateways = dev.gateway_pids()
        self.assertEqual(len(gateways), 1)
        os.kill(dev.proc.pid, signal.SIGKILL)
        dev.proc.wait(10)
        wait_until(lambda: not harness.pid_alive(gateways[0]), 20,
                   message="the gateway did not stop when fastfn dev died")

    def test_gateway_killed_gives_128_plus_signal(self):
        dev = self.start_dev()
        self.ready_plain(dev)
        os.kill(dev.gateway_pids()[0], signal.SIGKILL)
        self.assertEqual(dev.proc.wait(20), 128 + signal.SIGKILL, dev.describe())

    def test_default_dir_functions_then_templates(self):
        cwd = self.make_tempdir()
        self.assert_exit(run_cli(["new", "mine", "-t", "sh-cgi"], cwd=cwd), 0)
        dev = Dev(self, [], cwd=cwd)
        text = self.ready_plain(dev)
        self.assertRegex(text, r"(?m)^mine\s+sh\s+cgi\s+/mine")
        os.kill(dev.proc.pid, signal.SIGTERM)
        self.assertEqual(dev.proc.wait(20), 0)

        demo = Dev(self, [], cwd=self.make_tempdir())
        text = self.ready_plain(demo)
        self.assertIn("demo templates", text)
        self.assertRegex(text, r"(?m)^sh-cgi\s+sh\s+cgi\s+/sh-cgi")
        result = run_cli(["invoke", "sh-cgi", "--path", "?name=ada"], url=demo.url)
        self.assert_exit(result, 0)
        self.assertIn("hello ada from GET", result.stdout)

    def test_unix_socket_listen_and_fastfn_url(self):
        fns = self.functions_dir()
        sock_dir = self.make_tempdir()
        address = f"unix:{sock_dir}/gw.sock"
        dev = Dev(self, [str(fns), "--listen", address])
        text = self.ready_plain(dev)
        self.assertIn(address, text)
        result = run_cli(["invoke", "hello"], url=address)
        self.assert_exit(result, 0)
        self.assertEqual(result.stdout, "hello from \n")

    def test_missing_gateway_binary_and_dir(self):
        result = run_cli(["dev", self.make_tempdir()], env={"FASTFN_GATEWAY_BIN": "/nonexistent/gw"})
        self.assert_exit(result, EXIT_CONNECT)
        self.assertIn("FASTFN_GATEWAY_BIN", result.stderr)
        missing = run_cli(["dev", "/nonexistent/functions"])
        self.assert_exit(missing, EXIT_NOINPUT)
        self.assertIn("not a folder", missing.stderr)


# --------------------------------------------------------------------------------------------------


class TestCompletion(GatewayClass):
    @classmethod
    def add_functions(cls, fns: FunctionsDir) -> list[str]:
        fns.add("alpha", {"handler.sh": "#!/bin/sh\necho a\n"})
        fns.add("beta", {"handler.sh": "#!/bin/sh\necho b\n"})
        return ["alpha", "beta"]

    def complete(self, *words: str, url: Optional[str] = None) -> list[str]:
        """COMPREPLY for the command line `words` (the last one is being completed)."""
        tmp = self.make_tempdir()
        wrapper = os.path.join(tmp, "fastfn")
        Path(wrapper).write_text(f'#!/bin/sh\nexec {PYTHON} {CLI} "$@"\n')
        os.chmod(wrapper, 0o755)
        Path(tmp, "body.json").write_text("{}")
        script = (f"source {COMPLETION}\n"
                  'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fastfn\n'
                  'printf "%s\\n" "${COMPREPLY[@]}"\n')
        env = cli_env(url or self.url)
        proc = subprocess.run(["bash", "-c", script, "bash", wrapper, *words], capture_output=True,
                              text=True, env=env, cwd=tmp, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return [line for line in proc.stdout.splitlines() if line]

    def test_completes_subcommands_options_templates_methods(self):
        self.assertEqual(self.complete(""), ["dev", "new", "list", "describe", "health", "invoke", "call", "logs",
                                             "help", "--help", "--version"])
        self.assertEqual(self.complete("he"), ["health", "help"])
        self.assertEqual(sorted(self.complete("new", "x", "--template", "")),
                         ["cpp-http", "go-http", "lua-cgi", "node-event", "node-express", "node-http", "php-cgi",
                          "python-event", "python-fastapi", "python-flask", "python-http", "rust-http", "sh-cgi"])
        self.assertEqual(self.complete("invoke", "alpha", "-X", "P"), ["POST", "PUT", "PATCH"])
        self.assertEqual(self.complete("invoke", "alpha", "-d", "@bo"), ["@body.json"])
        self.assertIn("--names", self.complete("list", "--"))
        self.assertEqual(self.complete("dev", "--log-format", ""), ["text", "json"])
        self.assertEqual(self.complete("invoke", "alpha", "--ca"), ["--callback", "--call-id"])
        self.assertEqual(self.complete("invoke", "alpha", "--as"), ["--async"])
        self.assertEqual(self.complete("call", "some-id", "--"), ["--wait", "--json", "--url", "--timeout", "--help"])

    def test_completes_function_names_from_the_gateway(self):
        self.assertEqual(self.complete("invoke", ""), ["alpha", "beta"])
        self.assertEqual(self.complete("invoke", "-X", "GET", "b"), ["beta"])
        self.assertEqual(self.complete("invoke", "alpha", ""), [], "one function name only")
        self.assertEqual(self.complete("invoke", "--call-id", "x", ""), ["alpha", "beta"],
                         "--call-id's value is not the function name")
        self.assertEqual(self.complete("invoke", "", url=f"http://127.0.0.1:{free_port_not_in_use()}"), [],
                         "no gateway: no names, no error")

    def test_completes_describe_and_logs(self):
        self.assertEqual(self.complete("describe", ""), ["alpha", "beta"])
        self.assertEqual(self.complete("describe", "alpha", ""), [], "one function name only")
        self.assertEqual(self.complete("describe", "--"), ["--json", "--url", "--timeout", "--help"])
        self.assertEqual(self.complete("logs", "-f", "a"), ["alpha"])
        self.assertEqual(self.complete("logs", "-n", "5", ""), ["alpha", "beta"], "-n's value is not the name")
        self.assertEqual(self.complete("logs", "-n", ""), [], "a number is not completed")
        self.assertEqual(self.complete("logs", "beta", "--f"), ["--follow"])
        self.assertEqual(self.complete("invoke", "alpha", "--no"), ["--no-stdin"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
