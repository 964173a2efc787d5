#!/usr/bin/env python3
"""Integration tests of `fastfn-gateway` (DESIGN.md, "fastfn-gateway").

Each test builds a functions dir in a temp dir from tests/fixtures/gateway, starts the real gateway
(FASTFN_GATEWAY, default <repo>/build/gateway/fastfn-gateway) on a free loopback port with a temp
socket-base-dir and the real watchdog (FASTFN_WATCHDOG) as FN_WATCHDOG_BIN, and checks one behaviour
from outside: HTTP answers, /_fn/health, /_fn/metrics, the log, /proc and the file system. Conditions
are polled with deadlines; every process a test starts is killed at its end.
Run alone: python3 tests/integration/test_gateway.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import concurrent.futures  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Address, wait_until  # noqa: E402
from gateway_support import (PYTHON, FunctionsDir, Gateway, GatewayTestCase, check_binaries,  # noqa: E402
                             failing_watchdog,
                             cmdline, find_key, fixture, function_entry, functions_listing, gateway_binary,
                             hot_handler_source, make_watchdog_hold_wrapper, parse_kv, run_gateway_cli,
                             sockets_of, write_json)


def setUpModule():
    check_binaries()


def env_lines_command() -> list[str]:
    return ["/bin/sh", str(fixture("env_lines.sh"))]


def unix_path(sock: dict) -> str:
    address = str(sock.get("address", ""))
    assert address.startswith("unix:"), f"not a unix socket address: {sock!r}"
    return address[len("unix:"):]


def socket_entry(health: dict, name: str, index: int) -> dict:
    """Socket `index` of function `name` in a health answer ({} when it is not listed)."""
    socks = sockets_of(health, name)
    return socks[index] if index < len(socks) else {}


def ancestors(pid: int) -> list[int]:
    """The parent, grandparent, ... of `pid` (up to pid 1)."""
    found = []
    stat_ = harness.proc_stat(pid)
    while stat_ is not None and stat_.ppid > 1:
        found.append(stat_.ppid)
        stat_ = harness.proc_stat(stat_.ppid)
    return found


class Case(GatewayTestCase):
    """Helpers shared by the test classes."""

    def executor(self, workers: int = 8) -> concurrent.futures.ThreadPoolExecutor:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.addCleanup(pool.shutdown, wait=True)
        return pool

    def sockets_up(self, gw: Gateway, name: str, count: int, timeout: float = 15.0) -> dict:
        """Waits until function `name` has exactly `count` sockets, all up; returns the health."""
        return self.wait_health(
            gw, lambda h: len(sockets_of(h, name)) == count and all(s.get("up") for s in sockets_of(h, name))
            and (function_entry(h, name) or {}).get("sockets_up") == count,
            timeout, what=f"{name}: {count} sockets up")

    def routed_to(self, gw: Gateway, path: str, timeout: float = 8.0, status: int = 200,
                  check=lambda response: True) -> harness.Response:
        """Polls GET `path` until it answers `status` and check(response); returns that response."""
        holder = {}

        def ok() -> bool:
            gw.check_running()
            try:
                holder["r"] = response = gw.get(path, timeout=5.0)
            except (OSError, harness.ProtocolError) as exc:
                holder["r"] = exc
                return False
            return response.status == status and bool(check(response))

        wait_until(ok, timeout, interval=0.05,
                   message=lambda: f"GET {path} never answered {status} as expected; "
                                   f"last: {holder.get('r')!r}"
                                   f"\n{gw.describe()}")
        return holder["r"]

    def assert_stream_clean(self, stream, gw: Gateway) -> None:
        stream.stop()
        self.assertGreater(stream.count(), 0, "the request stream sent nothing")
        self.assertEqual(stream.bad, [], f"requests to {stream.path} failed ({len(stream.bad)} of "
                                         f"{stream.count()})\n{gw.describe()}")

    def log_line(self, gw: Gateway, *needles: str, timeout: float = 10.0) -> str:
        """Waits for a log line holding every needle (case-insensitive) and returns it."""
        lowered = [n.lower() for n in needles]

        def find() -> str:
            for line in gw.log().splitlines():
                if all(n in line.lower() for n in lowered):
                    return line
            return ""

        return gw.wait_log(lambda _: find(), timeout, what=f"a line with {list(needles)}") and find()

    def alive(self, pids) -> list[int]:
        return [p for p in pids if harness.pid_alive(p)]


# ----------------------------------------------------------------------------------------------------


class CommandLineTest(Case):
    def setUp(self) -> None:
        super().setUp()
        self.fns = self.functions()
        self.fns.sh_env("hello")
        self.cwd = self.make_tempdir()
        self.sockets = os.path.join(self.make_tempdir(), "sockets")

    def run_cli(self, args, env=None) -> harness.CliResult:
        return run_gateway_cli(args, env={"FN_SOCKET_BASE_DIR": self.sockets, **(env or {})}, cwd=self.cwd)

    def listen_args(self) -> list[str]:
        return ["--listen", f"127.0.0.1:{harness.free_port()}"]

    def assert_usage_error(self, result: harness.CliResult, *mentions: str) -> str:
        self.assertIsNotNone(result.returncode, f"did not exit (it was killed)\n{result.describe()}")
        self.assertEqual(result.returncode, 2, f"expected exit code 2\n{result.describe()}")
        lines = result.stderr_lines()
        self.assertEqual(len(lines), 1, f"expected exactly one non-empty line on stderr\n{result.describe()}")
        for mention in mentions:
            self.assertIn(mention, lines[0], f"the error line must name {mention!r}\n{result.describe()}")
        return lines[0]

    def test_help_exits_0_and_prints_usage(self):
        result = self.run_cli(["--help"])
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertIn("usage", result.stdout.lower(), result.describe())
        for flag in ("--config", "--listen"):
            self.assertIn(flag, result.stdout, result.describe())

    def test_version_exits_0_and_prints_a_version(self):
        result = self.run_cli(["--version"])
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertRegex(result.stdout, r"\d+\.\d+", result.describe())

    def test_unknown_flag_exits_2_with_one_line(self):
        self.assert_usage_error(self.run_cli([*self.listen_args(), "--no-such-flag", str(self.fns)]),
                                "--no-such-flag")

    def test_bad_listen_flag_exits_2_naming_the_flag(self):
        self.assert_usage_error(self.run_cli(["--listen", "not an address", str(self.fns)]), "--listen")

    def test_bad_environment_value_exits_2_naming_the_variable(self):
        cases = [
            ("FN_RUNTIME_DAEMONS", "python=lots"),
            ("FN_HEALTH_INTERVAL", "soon"),
            ("FN_MIN_WARM", "some"),
            ("FN_IDLE_TTL", "0s"),
            ("FN_LISTEN", "not an address"),
            ("FN_RUNTIME_SOCKETS", "{not json"),
            ("FN_RUNTIME_SOCKETS", json.dumps({"x": ["not an address"]})),
        ]
        for variable, value in cases:
            with self.subTest(variable=variable, value=value):
                args = [str(self.fns)] if variable == "FN_LISTEN" else [*self.listen_args(), str(self.fns)]
                self.assert_usage_error(self.run_cli(args, env={variable: value}), variable)

    def test_bad_log_flags_exit_2_naming_the_flag_or_variable(self):
        for args, env, named in ((["--log-level", "loud"], {}, "--log-level"),
                                 ([], {"FN_LOG_LEVEL": "loud"}, "FN_LOG_LEVEL"),
                                 ([], {"FN_LOG_FORMAT": "xml"}, "FN_LOG_FORMAT")):
            with self.subTest(args=args, env=env):
                self.assert_usage_error(self.run_cli([*self.listen_args(), *args, str(self.fns)], env=env), named)

    def test_the_watchdogs_log_in_the_gateways_format_and_at_its_level(self):
        """Watchdogs start with --flags-only (their environment is their handlers'), so the gateway
        hands them its --log-format and --log-level as flags: one stderr, one format, one level."""
        self.fns.python_http("hot")
        gw = self.start_gateway(self.fns, args=["--log-format", "json", "--log-level", "debug"],
                                wait_for=["hello", "hot"])
        self.assertEqual(gw.get("/hot").status, 200, gw.describe())

        def watchdog_debug() -> list:
            records = [json.loads(line) for line in gw.log().splitlines() if line.startswith("{")]
            return [r for r in records if str(r.get("logger")).startswith("watchdog") and r.get("level") == "debug"]

        gw.wait_log(lambda _: watchdog_debug(), 15, what="a watchdog's debug line, in JSON")
        text = [line for line in gw.log().splitlines() if line.strip() and not line.startswith("{")]
        self.assertEqual(text, [], f"lines not in JSON\n{gw.describe()}")

    def test_bad_config_file_value_exits_2_naming_the_file_and_key(self):
        cases = {
            "runtime-daemons": {"runtime-daemons": {"python": "three"}},
            "health-interval": {"health-interval": "soon"},
            "listen": {"listen": "not an address"},
            "runtimes": {"runtimes": 7},
            "min-warm": {"min-warm": -1},
            "idle-ttl": {"idle-ttl": "forever"},
        }
        for key, config in cases.items():
            with self.subTest(key=key):
                path = os.path.join(self.make_tempdir(), "fastfn.json")
                write_json(path, config)
                args = ["--config", path, str(self.fns)]
                if key != "listen":
                    args = [*self.listen_args(), *args]
                self.assert_usage_error(self.run_cli(args), path, key)

    def test_unparsable_or_missing_config_file_exits_2_naming_the_file(self):
        path = os.path.join(self.make_tempdir(), "fastfn.json")
        with open(path, "w") as f:
            f.write('{"listen": ')
        self.assert_usage_error(self.run_cli([*self.listen_args(), "--config", path, str(self.fns)]), path)
        missing = os.path.join(self.make_tempdir(), "absent.json")
        self.assert_usage_error(self.run_cli([*self.listen_args(), "--config", missing, str(self.fns)]),
                                missing)

    def test_finds_the_watchdog_next_to_its_own_binary(self):
        bin_dir = self.make_tempdir()
        gateway = shutil.copy2(gateway_binary(), os.path.join(bin_dir, "fastfn-gateway"))
        shutil.copy2(harness.watchdog_binary(), os.path.join(bin_dir, "fastfn-watchdog"))
        gw = self.start_gateway(self.fns, binary=gateway, env={"FN_WATCHDOG_BIN": None}, wait_for=["hello"])
        self.assertEqual(self.kv_of(gw.get("/hello"), gw)["runtime"], "sh")
        pid = gw.watchdog_pid(gw.sockets("hello")[0])
        self.assertTrue(cmdline(pid).startswith(os.path.join(bin_dir, "fastfn-watchdog")), cmdline(pid))

    def test_port_in_use_exits_2_with_one_line_naming_the_address(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            self.assert_usage_error(self.run_cli(["--listen", f"127.0.0.1:{port}", str(self.fns)]), str(port))
        left = os.listdir(self.sockets) if os.path.isdir(self.sockets) else []
        self.assertEqual(left, [], "a gateway that could not listen left sockets behind")


class ConfigPrecedenceTest(Case):
    """Flags > environment > fastfn.json > defaults, seen through the listen address, the functions
    dir, daemon counts, interpreters and the socket dir."""

    def marked_functions(self, marker: str) -> FunctionsDir:
        fns = self.functions()
        fns.sh_env("which", {"env": {"FN_MARKER": marker}})
        return fns

    def marker(self, gw: Gateway) -> str:
        return self.kv_of(gw.get("/which"), gw).get("marker", "")

    def test_functions_dir_argument_wins_over_environment_and_file(self):
        flag, env, file = (self.marked_functions(m) for m in ("flag", "env", "file"))
        gw = self.start_gateway(flag, env={"FN_FUNCTIONS_ROOT": str(env)},
                                config={"functions-dir": str(file)},
                                wait_for=["which"])
        self.assertEqual(self.marker(gw), "flag", gw.describe())

    def test_functions_dir_environment_wins_over_file(self):
        env, file = (self.marked_functions(m) for m in ("env", "file"))
        gw = self.start_gateway(env={"FN_FUNCTIONS_ROOT": str(env)}, config={"functions-dir": str(file)},
                                wait_for=["which"])
        self.assertEqual(self.marker(gw), "env", gw.describe())

    def test_functions_dir_from_file(self):
        file = self.marked_functions("file")
        gw = self.start_gateway(config={"functions-dir": str(file)}, wait_for=["which"])
        self.assertEqual(self.marker(gw), "file", gw.describe())

    def test_listen_flag_wins_over_environment_and_file(self):
        fns = self.marked_functions("x")
        p_flag, p_env, p_file = harness.free_port(), harness.free_port(), harness.free_port()
        gw = self.start_gateway(fns, listen=None, port=p_flag, args=["--listen", f"127.0.0.1:{p_flag}"],
                                env={"FN_LISTEN": f"127.0.0.1:{p_env}"},
                                config={"listen": f"127.0.0.1:{p_file}"}, wait_for=["which"])
        for port in (p_env, p_file):
            self.assertFalse(Address.tcp(port).accepts_connections(),
                             f"also listening on {port}\n{gw.describe()}")

    def test_listen_environment_wins_over_file(self):
        fns = self.marked_functions("x")
        p_env, p_file = harness.free_port(), harness.free_port()
        gw = self.start_gateway(fns, listen=None, port=p_env, env={"FN_LISTEN": f"127.0.0.1:{p_env}"},
                                config={"listen": f"127.0.0.1:{p_file}"}, wait_for=["which"])
        self.assertFalse(Address.tcp(p_file).accepts_connections(),
                         f"also listening on {p_file}\n{gw.describe()}")

    def test_listen_from_fastfn_json_in_the_working_directory(self):
        fns = self.marked_functions("cwd")
        gw = self.start_gateway(fns, listen="config", config_flag=False, wait_for=["which"])
        self.assertEqual(self.marker(gw), "cwd", gw.describe())

    def test_runtime_daemons_from_file_and_environment(self):
        cases = [
            ("file object", {"runtime-daemons": {"python": 2}}, None, 2),
            ("file string", {"runtime-daemons": "python=2,node=1"}, None, 2),
            ("env string over file", {"runtime-daemons": {"python": 2}}, "python=3", 3),
            ("env object", None, json.dumps({"python": 3}), 3),
        ]
        for what, config, env, expected in cases:
            with self.subTest(what):
                fns = self.functions()
                fns.python_http("hello")
                gw = self.start_gateway(fns, config=config, env={"FN_RUNTIME_DAEMONS": env},
                                        wait_for=["hello"])
                health = self.sockets_up(gw, "hello", expected)
                self.assertEqual(function_entry(health, "hello").get("daemons"), expected)
                gw.close()

    def write_wrapper(self, via: str, interpreter: str = PYTHON) -> str:
        """An interpreter wrapper that sets FASTFN_VIA=<via> (the handlers print it) and runs
        `interpreter` with its arguments."""
        path = os.path.join(self.make_tempdir(), f"wrapper-{via}")
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nFASTFN_VIA={via} exec {interpreter} \"$@\"\n")
        os.chmod(path, 0o755)
        return path

    def write_python_wrapper(self, via: str) -> str:
        return self.write_wrapper(via, PYTHON)

    def test_fn_node_bin_and_fn_sh_bin_choose_the_interpreters(self):
        fns = self.functions()
        fns.add("js", {"handler.js": fixture("handler.js")})
        fns.sh_env("shell")
        node = shutil.which("node") or "node"
        gw = self.start_gateway(fns, env={"FN_NODE_BIN": self.write_wrapper("node-env", node),
                                          "FN_SH_BIN": self.write_wrapper("sh-env", "/bin/sh")},
                                wait_for=["js", "shell"])
        self.assertEqual(self.json_of(gw.get("/js"), gw).get("via"), "node-env")
        self.assertEqual(self.kv_of(gw.get("/shell"), gw).get("via"), "sh-env")

    def test_runtime_binaries_from_file_and_fn_python_bin_over_it(self):
        from_file, from_env = self.write_python_wrapper("file"), self.write_python_wrapper("env")
        for what, env, expected in (("file", {"FN_PYTHON_BIN": None}, "file"),
                                    ("env over file", {"FN_PYTHON_BIN": from_env}, "env")):
            with self.subTest(what):
                fns = self.functions()
                fns.python_cgi("py")
                gw = self.start_gateway(fns, env=env, config={"runtime-binaries": {"python": from_file}},
                                        wait_for=["py"])
                data = self.json_of(gw.get("/py"), gw)
                self.assertEqual(data["via"], expected, f"{data}\n{gw.describe()}")
                gw.close()

    def test_socket_base_dir_from_file_and_environment_over_it(self):
        file_dir = os.path.join(self.make_tempdir(), "from-file")
        env_dir = os.path.join(self.make_tempdir(), "from-env")
        for what, env, expected in (("file", {"FN_SOCKET_BASE_DIR": None}, file_dir),
                                    ("env over file", {"FN_SOCKET_BASE_DIR": env_dir}, env_dir)):
            with self.subTest(what):
                fns = self.functions()
                fns.sh_env("hello")
                gw = self.start_gateway(fns, env=env, config={"socket-base-dir": file_dir},
                                        wait_for=["hello"])
                for sock in gw.sockets("hello"):
                    self.assertTrue(unix_path(sock).startswith(expected + os.sep),
                                    f"socket {sock} not under {expected}\n{gw.describe()}")
                gw.close()


class DiscoveryTest(Case):
    def test_nested_folder_route_gives_script_name_and_path_info(self):
        fns = self.functions()
        fns.sh_env("api/users")
        gw = self.start_gateway(fns, wait_for=["api/users"])
        data = self.kv_of(gw.get("/api/users/42/profile?x=1&y=2"), gw)
        self.assertEqual(data["script_name"], "/api/users", data)
        self.assertEqual(data["path_info"], "/42/profile", data)
        self.assertEqual(data["query_string"], "x=1&y=2", data)
        data = self.kv_of(gw.get("/api/users"), gw)
        self.assertEqual(data["script_name"], "/api/users", data)
        self.assertIn(data["path_info"], ("", "/"), data)
        for path in ("/api", "/api/usersX", "/apix/users", "/users"):
            with self.subTest(path=path):
                self.assert_json_error(gw.get(path), 404, gw)

    def test_most_specific_folder_wins(self):
        fns = self.functions()
        fns.sh_env("api", {"env": {"FN_MARKER": "api"}})
        fns.sh_env("api/users", {"env": {"FN_MARKER": "users"}})
        gw = self.start_gateway(fns, wait_for=["api", "api/users"])
        users = self.kv_of(gw.get("/api/users/1"), gw)
        self.assertEqual((users["marker"], users["script_name"], users["path_info"]),
                         ("users", "/api/users", "/1"))
        other = self.kv_of(gw.get("/api/other/2"), gw)
        self.assertEqual((other["marker"], other["script_name"], other["path_info"]),
                         ("api", "/api", "/other/2"))

    def test_each_handler_kind_gets_its_runtime(self):
        fns = self.functions()
        fns.python_cgi("py")
        fns.add("js", {"handler.js": fixture("handler.js")})
        fns.add("mjs", {"handler.mjs": fixture("handler.mjs")})
        fns.sh_env("shell")
        fns.add("bin", {"handler": fixture("exec_handler")})
        tool = fns.root / "cmd" / "tool.sh"
        fns.add("cmd", {"tool.sh": fixture("tool.sh")}, {"command": ["/bin/sh", str(tool), "arg one"]})
        names = ["py", "js", "mjs", "shell", "bin", "cmd"]
        gw = self.start_gateway(fns, wait_for=names)
        health = gw.health()
        expected_runtimes = {"py": "python", "js": "node", "mjs": "node", "shell": "sh", "bin": "exec"}
        for name, runtime in expected_runtimes.items():
            self.assertEqual(function_entry(health, name).get("runtime"), runtime, f"{name}: {health}")
            self.assertEqual(function_entry(health, name).get("format"), "cgi", f"{name}: {health}")

        py = self.json_of(gw.get("/py/sub"), gw)
        self.assertEqual((py["runtime"], py["path_info"]), ("python", "/sub"), py)
        self.assertEqual(py["executable"], PYTHON, f"FN_PYTHON_BIN={PYTHON} must run python handlers: {py}")
        js = self.json_of(gw.get("/js/sub"), gw)
        self.assertEqual((js["runtime"], js["module"], js["path_info"]), ("node", "commonjs", "/sub"), js)
        mjs = self.json_of(gw.get("/mjs/sub"), gw)
        self.assertEqual((mjs["runtime"], mjs["module"], mjs["path_info"]), ("node", "esm", "/sub"), mjs)
        shell = self.kv_of(gw.get("/shell/sub"), gw)
        self.assertEqual((shell["runtime"], shell["path_info"]), ("sh", "/sub"), shell)
        exe = self.kv_of(gw.get("/bin/sub"), gw)
        self.assertEqual((exe["runtime"], exe["path_info"]), ("exec", "/sub"), exe)
        cmd = self.kv_of(gw.get("/cmd/sub"), gw)
        self.assertEqual((cmd["runtime"], cmd["args"], cmd["path_info"]), ("command", "arg one", "/sub"), cmd)

    def test_handlers_run_in_their_function_folder(self):
        fns = self.functions()
        fns.sh_env("where")
        fns.add("relcmd", {"tool.sh": fixture("tool.sh")}, {"command": ["sh", "tool.sh", "x"]})
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["where", "relcmd", "hot"])
        where = self.kv_of(gw.get("/where"), gw)
        self.assertEqual(os.path.realpath(where["cwd"]), os.path.realpath(fns.path("where")), where)
        relcmd = self.kv_of(gw.get("/relcmd"), gw)
        self.assertEqual((relcmd["runtime"], relcmd["args"]), ("command", "x"), relcmd)
        self.assertEqual(os.path.realpath(relcmd["cwd"]), os.path.realpath(fns.path("relcmd")), relcmd)
        hot = self.json_of(gw.get("/hot"), gw)
        self.assertEqual(os.path.realpath(hot["cwd"]), os.path.realpath(fns.path("hot")), hot)

    def test_function_env_reaches_the_handler(self):
        fns = self.functions()
        fns.sh_env("cgi", {"env": {"FN_MARKER": "cgi-env"}})
        fns.python_http("hot", {"env": {"FN_MARKER": "hot-env"}})
        gw = self.start_gateway(fns, wait_for=["cgi", "hot"])
        self.assertEqual(self.kv_of(gw.get("/cgi"), gw)["marker"], "cgi-env")
        self.assertEqual(self.json_of(gw.get("/hot"), gw)["marker"], "hot-env")

    def test_fn_config_routes_serve_the_function_there(self):
        fns = self.functions()
        fns.sh_env("routed", {"routes": ["/custom", "/deep/path"], "env": {"FN_MARKER": "routed"}})
        gw = self.start_gateway(fns, wait_for=["routed"])
        custom = self.kv_of(gw.get("/custom"), gw)
        self.assertEqual(custom["marker"], "routed", custom)
        deep = self.kv_of(gw.get("/deep/path/rest"), gw)
        self.assertEqual((deep["marker"], deep["script_name"], deep["path_info"]),
                         ("routed", "/deep/path", "/rest"), deep)
        self.assertIn("/custom", function_entry(gw.health(), "routed").get("routes", []))

    def test_dotfolders_private_and_handlerless_folders_are_not_functions(self):
        fns = self.functions()
        fns.sh_env(".hidden")
        fns.sh_env("_private")
        fns.sh_env("lib/_shared")
        fns.add("empty", {"README.md": "no handler here\n"})
        fns.sh_env("visible")
        gw = self.start_gateway(fns, wait_for=["visible"])
        for path in ("/.hidden", "/_private", "/lib/_shared", "/empty"):
            with self.subTest(path=path):
                response = gw.get(path)
                allowed = (400, 403, 404) if path == "/.hidden" else (404,)
                self.assertIn(response.status, allowed, f"{path}: {response!r}\n{gw.describe()}")
                self.assertNotIn(b"runtime=sh", response.body)
        names = set(functions_listing(gw.get_json("/_fn/functions")))
        self.assertEqual(names, {"visible"}, f"/_fn/functions lists {names}")
        self.assertEqual(set(gw.health().get("functions", {})), {"visible"})

    def test_reserved_prefixes_are_never_given_to_functions(self):
        fns = self.functions()
        fns.sh_env("console", {"env": {"FN_MARKER": "console-function"}})
        fns.sh_env("grab", {"routes": ["/_fn/health"], "env": {"FN_MARKER": "grabber"}})
        fns.sh_env("ok")
        gw = self.start_gateway(fns, wait_for=["ok"])
        health = gw.get("/_fn/health")
        self.assert_status(health, 200, gw)
        self.assertNotIn(b"grabber", health.body)
        self.assertIn("functions", json.loads(health.body))
        for path in ("/console", "/console/", "/console/x"):
            with self.subTest(path=path):
                self.assertNotIn(b"console-function", gw.get(path).body, f"{path} reached the function")
        self.assertEqual(self.kv_of(gw.get("/ok"), gw)["runtime"], "sh")

    def test_broken_fn_config_is_a_function_not_ready_with_its_file_and_key(self):
        """A function whose fn.config.json is wrong stays visible: its route answers 503 with the
        reason, /_fn/health and /_fn/functions list it not ready with the same reason (not a 404
        and absent, with only a log line saying why), and the others serve."""
        fns = self.functions()
        fns.sh_env("good")
        fns.sh_env("badvalue", {"timeout_ms": "soon"})
        fns.sh_env("unknownkey", {"no_such_key": 1})
        fns.sh_env("badpool", {"worker_pool": {"max_workers": 1, "overflow_status": 418}})
        fns.sh_env("badformat", {"format": "fcgi"})
        fns.add("badjson", {"handler.sh": fixture("env_lines.sh"), "fn.config.json": "{ not json"})
        gw = self.start_gateway(fns, wait_for=["good"])
        self.assertEqual(self.kv_of(gw.get("/good"), gw)["runtime"], "sh")
        for name, key in (("badvalue", "timeout_ms"), ("unknownkey", "no_such_key"),
                          ("badpool", "overflow_status"), ("badformat", "format"), ("badjson", "")):
            with self.subTest(name=name):
                self.log_line(gw, os.path.join(name, "fn.config.json"), key)
                error = self.assert_json_error(gw.get(f"/{name}"), 503, gw, function=name)
                self.assertIn(os.path.join(name, "fn.config.json"), error["error"])
                self.assertIn(key, error["error"])
                entry = function_entry(gw.health(), name)
                self.assertIsNotNone(entry, f"{name} missing from /_fn/health")
                self.assertFalse(entry["ready"], entry)
                self.assertEqual(entry["error"], error["error"], entry)
        self.assertEqual(set(functions_listing(gw.get_json("/_fn/functions"))),
                         {"good", "badvalue", "unknownkey", "badpool", "badformat", "badjson"})
        self.assertTrue(gw.is_running())



class RouteConflictTest(Case):
    def conflicting(self) -> FunctionsDir:
        fns = self.functions()
        fns.python_cgi("py", {"routes": ["/shared"]})
        fns.add("nd", {"handler.js": fixture("handler.js")}, {"routes": ["/shared"]})
        return fns

    def conflict_line(self, gw: Gateway) -> str:
        """The log line about the conflict: it names the route and both functions."""
        pattern = re.compile(r'/shared\b.*\bpy\b.*\bnd\b|/shared\b.*\bnd\b.*\bpy\b')
        return gw.wait_log(lambda log: next((line for line in log.splitlines() if pattern.search(line)), ""),
                           10, what="a line naming route /shared and both functions py and nd")

    def test_python_wins_by_default_and_the_log_says_so(self):
        gw = self.start_gateway(self.conflicting())
        response = self.routed_to(gw, "/shared")
        self.assertEqual(self.json_of(response, gw)["runtime"], "python", response)
        self.conflict_line(gw)

    def test_runtime_order_decides_the_conflict(self):
        for what, env, config in (("FN_RUNTIMES", {"FN_RUNTIMES": "node,python"}, None),
                                  ("fastfn.json runtimes", None, {"runtimes": ["node", "python"]})):
            with self.subTest(what):
                gw = self.start_gateway(self.conflicting(), env=env, config=config)
                response = self.routed_to(gw, "/shared")
                self.assertEqual(self.json_of(response, gw)["runtime"], "node",
                                 f"{response!r}\n{gw.describe()}")
                self.conflict_line(gw)
                gw.close()


class FormatHttpTest(Case):
    def test_python_hot_handler_through_the_gateway(self):
        fns = self.functions()
        fns.python_http("hot", {"max_instances": 1})
        gw = self.start_gateway(fns, wait_for=["hot"])
        entry = function_entry(gw.health(), "hot")
        self.assertEqual((entry.get("runtime"), entry.get("format")), ("python", "http"), entry)
        response = gw.get("/hot/sub/path?x=1")
        first = self.json_of(response, gw)
        self.assertEqual(first["target"], "/hot/sub/path?x=1", "the original path goes to the watchdog")
        self.assertEqual(first["headers"].get("x-forwarded-prefix"), "/hot", first)
        self.assertEqual(first["headers"].get("x-fn-request-id"), response.headers.get("X-Fn-Request-Id"),
                         f"the handler and the client must see one request id: {response!r}")
        second = self.json_of(gw.get("/hot"), gw)
        self.assertEqual(second["pid"], first["pid"], "a hot process must serve consecutive requests")
        self.assertEqual(second["served"], first["served"] + 1)
        echo = self.json_of(gw.post("/hot", b"payload \x01 bytes"), gw)
        self.assertEqual((echo["method"], echo["body"]), ("POST", "payload \x01 bytes"), echo)

    def test_keep_alive_client_connection(self):
        fns = self.functions()
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["hot"])
        with gw.connection() as conn:
            for i in range(5):
                self.assert_status(conn.request("GET", f"/hot?i={i}"), 200, gw)
            self.assertEqual(conn.connects, 1, "the gateway closed a keep-alive connection")


class ProxyTest(Case):
    """Bodies go through the gateway as streams, both ways."""

    def echo_gateway(self) -> Gateway:
        fns = self.functions()
        fns.add("echo", {}, {"command": ["cat"], "max_body_bytes": 256 * harness.MIB, "timeout_ms": 120000})
        return self.start_gateway(fns, wait_for=["echo"])

    def upload(self, gw: Gateway, total: int, chunked: bool) -> tuple[harness.Response, str, str]:
        sent, received = hashlib.sha256(), hashlib.sha256()

        def body():
            for piece in harness.pattern_chunks(total):
                sent.update(piece)
                yield piece

        headers = {} if chunked else {"Content-Length": str(total)}
        with gw.connection(timeout=120) as conn:
            response = conn.request("POST", "/echo", body=body(), headers=headers, timeout=120,
                                    on_body=received.update)
        return response, sent.hexdigest(), received.hexdigest()

    def test_large_bodies_stream_through_both_ways(self):
        gw = self.echo_gateway()
        before = harness.vm_hwm_bytes(gw.pid)
        for total, chunked in ((64 * harness.MIB, False), (16 * harness.MIB, True)):
            with self.subTest(total=total, chunked=chunked):
                response, sent, received = self.upload(gw, total, chunked)
                self.assert_status(response, 200, gw)
                self.assertEqual(response.body_length, total, response)
                self.assertEqual(received, sent, "the echoed body differs from the one sent")
        growth = harness.vm_hwm_bytes(gw.pid) - before
        self.assertLess(growth, 32 * harness.MIB,
                        f"the gateway's peak RSS grew by {growth / harness.MIB:.0f} MiB "
                                                  f"for a 64 MiB echo: bodies must stream, not be held whole")

    def test_streamed_response_reaches_the_client_before_it_is_complete(self):
        gate = self.gate()
        fns = self.functions()
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["hot"])
        pieces = []

        def on_body(data: bytes) -> None:
            pieces.append(data)
            if b"first" in b"".join(pieces):
                gate.release()  # the handler sends "second" only after the client saw "first"

        with gw.connection(timeout=30) as conn:
            response = conn.request("GET", f"/hot/stream?dir={gate.dir}", timeout=30, on_body=on_body)
        self.assert_status(response, 200, gw)
        self.assertEqual(b"".join(pieces), b"first\nsecond\n",
                         "the gateway held the streamed response back until the handler finished")


class DaemonsTest(Case):
    def test_runtime_daemons_python_3_gives_three_sockets_and_round_robin(self):
        fns = self.functions()
        fns.python_http("hello", {"include_debug_headers": True})
        gw = self.start_gateway(fns, env={"FN_RUNTIME_DAEMONS": "python=3"}, wait_for=["hello"])
        health = gw.health()
        python = health["runtimes"]["python"]
        self.assertEqual((python.get("up"), python.get("routing")), (True, "round_robin"), python)
        socks = sockets_of(health, "hello")
        self.assertEqual([s.get("index") for s in socks], [0, 1, 2], socks)
        self.assertTrue(all(s.get("up") for s in socks), socks)
        self.assertEqual(len({s.get("address") for s in socks}), 3, f"sockets must differ: {socks}")
        entry = function_entry(health, "hello")
        self.assertEqual((entry.get("daemons"), entry.get("sockets_up"), entry.get("up")), (3, 3, True),
                         entry)

        with gw.connection() as conn:
            responses = [conn.request("GET", "/hello") for _ in range(9)]
        for r in responses:
            self.assert_status(r, 200, gw)
            self.assertEqual(r.headers.get("X-Fn-Runtime-Routing"), "round_robin", r)
            self.assertEqual(r.headers.get("X-Fn-Function"), "hello", r)
        indexes = [int(r.headers.get("X-Fn-Runtime-Socket-Index", "-1")) for r in responses]
        self.assertEqual(sorted(indexes), [0, 0, 0, 1, 1, 1, 2, 2, 2],
                         f"round robin over 3 sockets: {indexes}")
        self.assertTrue(all(a != b for a, b in zip(indexes, indexes[1:])), f"not rotating: {indexes}")
        pid_by_index = {}
        for index, r in zip(indexes, responses):
            pid_by_index.setdefault(index, set()).add(json.loads(r.body)["pid"])
        self.assertEqual(len(set.union(*pid_by_index.values())), 3,
                         f"three watchdogs must have three hot processes: {pid_by_index}")

    def test_one_daemon_is_single_routing(self):
        fns = self.functions()
        fns.python_http("hello", {"include_debug_headers": True})
        gw = self.start_gateway(fns, wait_for=["hello"])
        health = gw.health()
        self.assertEqual(health["runtimes"]["python"].get("routing"), "single", health)
        self.assertEqual(len(sockets_of(health, "hello")), 1, health)
        response = gw.get("/hello")
        self.assert_status(response, 200, gw)
        self.assertEqual((response.headers.get("X-Fn-Runtime-Routing"),
                          response.headers.get("X-Fn-Runtime-Socket-Index"),
                          response.headers.get("X-Fn-Function")), ("single", "0", "hello"), response)
        # FastFN's debug headers: the runtime, and the milliseconds to the function's answer.
        self.assertEqual(response.headers.get("X-Fn-Runtime"), "python", response)
        latency = float(response.headers.get("X-Fn-Latency-Ms", "-1"))
        self.assertGreaterEqual(latency, 0.0, response)
        self.assertEqual(len(response.headers.get_all("X-Fn-Latency-Ms")), 1, response)
        # FastFN's field names in /_fn/health beside fastfn's.
        self.assertEqual(health["runtimes"]["python"].get("health"), {"up": True, "reason": None},
                         health["runtimes"])
        sock = sockets_of(health, "hello")[0]
        self.assertEqual((sock.get("uri"), sock.get("reason")), (sock["address"], None), sock)

    def test_debug_headers_only_with_include_debug_headers(self):
        fns = self.functions()
        fns.python_http("plain")
        gw = self.start_gateway(fns, env={"FN_RUNTIME_DAEMONS": "python=2"}, wait_for=["plain"])
        response = gw.get("/plain")
        self.assert_status(response, 200, gw)
        self.assertTrue(response.headers.get("X-Fn-Request-Id"), response)
        for name in ("X-Fn-Runtime-Routing", "X-Fn-Runtime-Socket-Index", "X-Fn-Function", "X-Fn-Runtime",
                     "X-Fn-Latency-Ms"):
            self.assertNotIn(name, response.headers, f"{name} without include_debug_headers: {response!r}")

    def test_function_daemons_overrides_runtime_daemons(self):
        fns = self.functions()
        fns.python_http("two", {"daemons": 2})
        fns.python_http("three")
        fns.sh_env("shell")
        gw = self.start_gateway(fns, env={"FN_RUNTIME_DAEMONS": "python=3"},
                                wait_for=["two", "three", "shell"])
        health = gw.health()
        self.assertEqual(len(sockets_of(health, "two")), 2, health)
        self.assertEqual(len(sockets_of(health, "three")), 3, health)
        self.assertEqual(len(sockets_of(health, "shell")), 1,
                         f"runtime-daemons of python changed sh: {health}")

    def test_socket_dir_is_0700_and_sockets_0600(self):
        fns = self.functions()
        fns.python_http("hello", {"daemons": 2})
        fns.sh_env("shell")
        gw = Gateway(fns, wait_for=["hello", "shell"])
        self.assertFalse(os.path.exists(gw.socket_dir))
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        gw.start()
        mode = stat.S_IMODE(os.stat(gw.socket_dir).st_mode)
        self.assertEqual(mode, 0o700, f"socket-base-dir mode {oct(mode)}")
        socks = gw.sockets("hello") + gw.sockets("shell")
        self.assertEqual(len(socks), 3)
        for sock in socks:
            path = unix_path(sock)
            self.assertTrue(path.startswith(gw.socket_dir + os.sep), f"{path} not under {gw.socket_dir}")
            info = os.stat(path)
            self.assertTrue(stat.S_ISSOCK(info.st_mode), f"{path} is not a socket")
            self.assertEqual(stat.S_IMODE(info.st_mode), 0o600,
                             f"{path} mode {oct(stat.S_IMODE(info.st_mode))}")

    def test_stale_sockets_of_a_crashed_gateway_are_removed(self):
        fns = self.functions()
        fns.sh_env("hello", {"daemons": 2})
        base = os.path.join(self.make_tempdir(), "sockets")
        crashed = self.start_gateway(fns, env={"FN_SOCKET_BASE_DIR": base}, wait_for=["hello"])
        stale = [unix_path(s) for s in crashed.sockets("hello")]
        # A crash leaves sockets behind when nobody can remove them: the watchdogs are killed first
        # (a running watchdog would remove its socket on the SIGTERM of its parent's death; one
        # merely stopped gets SIGHUP and SIGCONT when its process group is orphaned), while the
        # gateway is stopped so that it restarts none of them, then the gateway.
        watchdogs = crashed.watchdog_pids("hello")
        self.assertEqual(len(watchdogs), 2, crashed.describe())
        os.kill(crashed.proc.pid, signal.SIGSTOP)
        for pid in watchdogs:
            os.kill(pid, signal.SIGKILL)
        crashed.close()
        self.assertEqual([p for p in stale if not os.path.exists(p)], [],
                         "precondition: a crash leaves sockets")
        gw = self.start_gateway(fns, env={"FN_SOCKET_BASE_DIR": base}, wait_for=["hello"])
        live = {unix_path(s) for s in gw.sockets("hello")}
        wait_until(lambda: not [p for p in stale if os.path.exists(p) and p not in live], 5,
                   message=lambda: f"stale sockets left in {base}: {sorted(os.listdir(base))}, live: {live}")

    def test_two_gateways_can_share_a_socket_base_dir(self):
        fns = self.functions()
        fns.sh_env("hello", {"daemons": 2})
        base = os.path.join(self.make_tempdir(), "sockets")
        first = self.start_gateway(fns, env={"FN_SOCKET_BASE_DIR": base}, wait_for=["hello"])
        second = self.start_gateway(fns, env={"FN_SOCKET_BASE_DIR": base}, wait_for=["hello"])
        paths = [unix_path(s) for gw in (first, second) for s in gw.sockets("hello")]
        self.assertEqual(len(set(paths)), 4, f"the gateways must not share socket paths: {paths}")
        self.assertTrue(all(Address.unix(p).accepts_connections() for p in paths), paths)
        for gw in (first, second):
            for _ in range(4):
                self.assertEqual(self.kv_of(gw.get("/hello"), gw)["runtime"], "sh")
            self.sockets_up(gw, "hello", 2)

    def test_each_socket_is_served_by_a_watchdog_child_of_the_gateway(self):
        fns = self.functions()
        fns.python_http("hello", {"daemons": 2})
        gw = self.start_gateway(fns, wait_for=["hello"])
        socks = gw.sockets("hello")
        pids = [sock.get("pid") for sock in socks]
        self.assertTrue(all(isinstance(p, int) and p > 0 for p in pids),
                        f"/_fn/health must give each pid: {socks}")
        self.assertEqual(len(set(pids)), 2, socks)
        for sock, pid in zip(socks, pids):
            self.assertTrue(harness.pid_alive(pid), sock)
            self.assertEqual(harness.proc_stat(pid).ppid, gw.pid, f"{pid} is not the gateway's child")
            self.assertIn(unix_path(sock), cmdline(pid), f"watchdog {pid} does not serve {sock}")


class FailoverTest(Case):
    """A dead watchdog is restarted while the other sockets serve; all down answers 503."""

    def start_held(self, daemons: int = 3, config=None):
        """A gateway whose watchdogs start through a hold wrapper: while the hold file exists, a
        restarted watchdog stays down."""
        tmp = self.make_tempdir()
        hold = os.path.join(tmp, "hold")
        wrapper = make_watchdog_hold_wrapper(tmp, hold)
        fns = self.functions()
        fns.python_http("hello", {"include_debug_headers": True, **(config or {})})
        gw = self.start_gateway(fns,
                                env={"FN_RUNTIME_DAEMONS": f"python={daemons}", "FN_WATCHDOG_BIN": wrapper},
                                wait_for=["hello"])
        self.addCleanup(lambda: os.path.exists(hold) and os.unlink(hold))
        return gw, hold

    def kill_between_requests(self, stream, gw: Gateway, index: int) -> int:
        """SIGKILLs the watchdog of socket `index` of hello while no request of `stream` is in
        flight (one that is fails by design: it is never replayed), and resumes the stream once
        /_fn/health shows the gateway noticed (requests sent in the moment between the death and
        that are test_requests_sent_just_after_a_watchdog_died_do_not_fail's). Returns the pid."""
        before = socket_entry(gw.health(), "hello", index)
        pid = gw.watchdog_pid(before)
        stream.pause()
        os.kill(pid, signal.SIGKILL)
        restarts = before.get("restarts") or 0
        self.wait_health(gw, lambda h: socket_entry(h, "hello", index).get("up") is False
                         or (socket_entry(h, "hello", index).get("restarts") or 0) > restarts,
                         5, what=f"socket {index} seen down or restarted after its watchdog {pid} was killed",
                         interval=0.005)
        stream.resume()
        return pid

    def test_requests_sent_just_after_a_watchdog_died_do_not_fail(self):
        """Nothing can have received a request sent after its watchdog died: the gateway must not
        answer it with an error while another socket is up (a kept-alive connection to the dead
        watchdog is no reason to fail; the gateway may not have reaped it yet). Repeated, since the
        moment between the death and the gateway noticing it is short."""
        fns = self.functions()
        fns.sh_env("hello", {"daemons": 2})
        gw = self.start_gateway(fns, wait_for=["hello"])
        failures = []
        for attempt in range(10):
            index, restarts = attempt % 2, attempt // 2 + 1  # each socket in turn: short backoffs
            for _ in range(4):  # every socket is used: kept-alive connections to both
                self.assert_status(gw.get("/hello"), 200, gw)
            victim = gw.watchdog_pid(gw.sockets("hello")[index])
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: not harness.pid_alive(victim), 5, message=f"{victim} survived SIGKILL")
            failures += [f"attempt {attempt}: {r!r}" for r in (gw.get("/hello"), gw.get("/hello"))
                         if r.status != 200]
            self.wait_health(gw, lambda h: socket_entry(h, "hello", index).get("up") is True
                             and socket_entry(h, "hello", index).get("restarts") == restarts, 15,
                             what=f"socket {index} restarted ({restarts} restarts)")
        self.assertEqual(failures, [], f"requests sent after the watchdog was dead failed\n{gw.describe()}")

    def test_killed_watchdog_is_restarted_while_requests_keep_succeeding(self):
        gw, hold = self.start_held()
        before = gw.sockets("hello")
        pids = [gw.watchdog_pid(s) for s in before]
        self.assertTrue(all(pids), before)
        stream = self.stream(gw, "/hello")
        stream.wait_count(10)
        harness.touch(hold)
        self.kill_between_requests(stream, gw, 1)
        down = self.wait_health(gw, lambda h: socket_entry(h, "hello", 1).get("up") is False, 5,
                                what="socket 1 shown down after its watchdog was killed", interval=0.01)
        entry = function_entry(down, "hello")
        self.assertEqual((entry.get("up"), entry.get("sockets_up")), (True, 2), entry)
        self.assertTrue(socket_entry(down, "hello", 1).get("last_error"),
                        f"a down socket needs last_error: {down}")
        self.assertEqual(socket_entry(down, "hello", 1).get("reason"),
                         socket_entry(down, "hello", 1).get("last_error"), "FastFN's name for it")
        count = stream.count()
        stream.wait_count(count + 20)  # traffic flows over the two others meanwhile
        os.unlink(hold)
        after = self.wait_health(gw, lambda h: socket_entry(h, "hello", 1).get("up") is True
                                 and socket_entry(h, "hello", 1).get("restarts") == 1, 10,
                                 what="socket 1 up again with restarts 1")
        socks = sockets_of(after, "hello")
        self.assertEqual([s.get("restarts") for s in socks], [0, 1, 0], socks)
        self.assertEqual(socks[1].get("last_error"), None, socks)
        new_pid = gw.watchdog_pid(socks[1])
        self.assertNotEqual(new_pid, pids[1])
        self.assertTrue(harness.pid_alive(new_pid))
        self.assertEqual([gw.watchdog_pid(s) for s in (socks[0], socks[2])], [pids[0], pids[2]],
                         "the other watchdogs must not be restarted")
        count = stream.count()
        stream.wait_count(count + 10)
        self.assert_stream_clean(stream, gw)
        indexes = {int(gw.get("/hello").headers.get("X-Fn-Runtime-Socket-Index", -1)) for _ in range(6)}
        self.assertEqual(indexes, {0, 1, 2}, "the restarted socket must be back in the rotation")
        wait_until(lambda: not [c for c in harness.children(gw.pid) if harness.proc_stat(c) and
                                harness.proc_stat(c).state == "Z"], 5,
                   message=lambda: f"the gateway left its dead watchdog unreaped\n{gw.describe()}")

    def test_killed_watchdog_is_restarted_by_the_real_supervisor(self):
        fns = self.functions()
        fns.python_http("hello")
        gw = self.start_gateway(fns, env={"FN_RUNTIME_DAEMONS": "python=3"}, wait_for=["hello"])
        stream = self.stream(gw, "/hello")
        stream.wait_count(5)
        old = self.kill_between_requests(stream, gw, 0)
        health = self.wait_health(gw, lambda h: socket_entry(h, "hello", 0).get("restarts") == 1
                                  and socket_entry(h, "hello", 0).get("up") is True, 10,
                                  what="socket 0 restarted")
        self.assertNotEqual(gw.watchdog_pid(sockets_of(health, "hello")[0]), old)
        stream.wait_count(stream.count() + 10)
        self.assert_stream_clean(stream, gw)
        self.wait_metric(gw, "fastfn_gateway_restarts_total", 1, function="hello")

    def test_all_sockets_down_gives_503_runtime_unavailable_until_they_come_back(self):
        gw, hold = self.start_held()
        pids = gw.watchdog_pids("hello")
        self.assertEqual(len(pids), 3)
        harness.touch(hold)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        response = self.routed_to(gw, "/hello", status=503)
        data = self.assert_json_error(response, 503, gw, function="hello")
        self.assertIn("runtime unavailable", data["error"], data)
        health = self.wait_health(gw, lambda h: (function_entry(h, "hello") or {}).get("sockets_up") == 0, 5,
                                  what="no socket up")
        self.assertEqual(function_entry(health, "hello").get("up"), False, health)
        self.assertEqual(health.get("status"), "degraded", health)
        self.assertEqual(health["runtimes"]["python"].get("up"), False, health)
        self.assert_json_error(gw.get("/hello"), 503, gw, function="hello")
        self.wait_metric(gw, "fastfn_gateway_sockets_up", 0, function="hello")
        os.unlink(hold)
        self.routed_to(gw, "/hello", timeout=15)
        health = self.sockets_up(gw, "hello", 3)
        self.assertEqual([s.get("restarts") for s in sockets_of(health, "hello")], [1, 1, 1], health)
        self.assertEqual(health.get("status"), "ok", health)
        for _ in range(6):
            self.assert_status(gw.get("/hello"), 200, gw)

    def test_a_failing_watchdog_is_restarted_again_and_again_while_the_other_serves(self):
        """A watchdog that keeps failing is restarted with backoff (its delays, 100 ms doubling up
        to 5 s and reset after 10 s up, are tested in fake time by tests/unit/gateway/
        supervisor_test.cpp); here, by count: it is restarted again and again, requests keep being
        served by the other daemon meanwhile, and once it can start it is up again."""
        wrapper, failing = failing_watchdog(self.make_tempdir())
        fns = self.functions()
        fns.sh_env("hello", {"daemons": 2})
        gw = self.start_gateway(fns, env={"FN_WATCHDOG_BIN": wrapper}, wait_for=["hello"])
        harness.touch(failing)
        os.kill(gw.watchdog_pid(gw.sockets("hello")[0]), signal.SIGKILL)

        def restarted_often() -> bool:
            self.assertEqual(self.kv_of(gw.get("/hello"), gw)["runtime"], "sh")  # served meanwhile
            return (socket_entry(gw.health(), "hello", 0).get("restarts") or 0) >= 4

        wait_until(restarted_often, 60, interval=0.1,
                   message=lambda: f"socket 0 was not restarted 4 times\n{gw.describe()}")
        self.assertIs(socket_entry(gw.health(), "hello", 0).get("up"), False, gw.describe())
        os.unlink(failing)
        self.wait_health(gw, lambda h: socket_entry(h, "hello", 0).get("up") is True, 30,
                         what="back up once the watchdog can start")

    def test_request_in_flight_on_a_killed_watchdog_gets_502_and_is_not_replayed(self):
        gate = self.gate()
        fns = self.functions()
        fns.gate("slow", gate.dir, {"daemons": 2, "timeout_ms": 60000})
        gw = self.start_gateway(fns, wait_for=["slow"])
        watchdogs = gw.watchdog_pids("slow")
        self.assertEqual(len(watchdogs), 2)
        future = self.executor().submit(gw.get, "/slow?name=once", timeout=30)
        handler = gate.wait_started(["once"], describe=gw.describe)["once"]
        serving = [p for p in ancestors(handler) if p in watchdogs]
        self.assertTrue(serving, f"handler {handler} is under none of the watchdogs {watchdogs}")
        os.kill(serving[0], signal.SIGKILL)
        response = self.result(future, gw, "the request whose watchdog died")
        self.assert_json_error(response, 502, gw, function="slow")
        self.assertEqual(sorted(gate.started()), ["once"], "a request already sent must never be replayed")
        gate.release()
        self.routed_to(gw, "/slow?name=after")


class AdmissionTest(Case):
    """worker_pool: max_workers in flight, max_queue waiting FIFO, queue_timeout_ms, overflow_status."""

    def start_pool(self, gate, **pool):
        fns = self.functions()
        fns.gate("busy", gate.dir, {"timeout_ms": 60000, "worker_pool": pool})
        return self.start_gateway(fns, wait_for=["busy"])

    def assert_overflow(self, response: harness.Response, status: int, limit: str, gw: Gateway) -> dict:
        data = self.assert_json_error(response, status, gw, function="busy")
        retry = response.headers.get("Retry-After", "")
        self.assertTrue(retry.isdigit(), f"Retry-After must be a number of seconds: {response!r}")
        self.assertEqual(data.get("limit"), limit, data)
        return data

    def test_full_queue_answers_overflow_status(self):
        for overflow, expected in ((None, 429), (429, 429), (503, 503)):
            with self.subTest(overflow_status=overflow):
                gate = self.gate()
                pool = {"max_workers": 1, "max_queue": 1}
                if overflow is not None:
                    pool["overflow_status"] = overflow
                gw = self.start_pool(gate, **pool)
                executor = self.executor()
                a = executor.submit(gw.get, "/busy?name=a", timeout=30)
                gate.wait_started(["a"], describe=gw.describe)
                b = executor.submit(gw.get, "/busy?name=b", timeout=30)
                self.wait_metric(gw, "fastfn_gateway_requests_queued", 1, function="busy")
                metrics = self.wait_metric(gw, "fastfn_gateway_requests_in_flight", 1, function="busy")
                self.assertEqual(metrics.get("fastfn_gateway_requests_queued", function="busy"), 1)
                data = self.assert_overflow(gw.get("/busy?name=c", timeout=10), expected, "max_queue", gw)
                self.assertIn("queue", data["error"].lower(), data)
                self.assertEqual(sorted(gate.started()), ["a"], "max_workers 1: only one may run")
                gate.release()
                self.assertEqual(self.result(a, gw, "a").text.strip(), "released a")
                self.assertEqual(self.result(b, gw, "b").text.strip(), "released b")
                self.assertNotIn("c", gate.started())
                gw.close()

    def test_queue_timeout_answers_overflow_status(self):
        for overflow, expected in ((None, 429), (503, 503)):
            with self.subTest(overflow_status=overflow):
                gate = self.gate()
                pool = {"max_workers": 1, "max_queue": 5, "queue_timeout_ms": 300}
                if overflow is not None:
                    pool["overflow_status"] = overflow
                gw = self.start_pool(gate, **pool)
                a = self.executor().submit(gw.get, "/busy?name=a", timeout=30)
                gate.wait_started(["a"], describe=gw.describe)
                started = time.monotonic()
                response = gw.get("/busy?name=b", timeout=15)
                elapsed = time.monotonic() - started
                self.assert_overflow(response, expected, "queue_timeout_ms", gw)
                self.assertGreaterEqual(elapsed, 0.25,
                                        f"answered after {elapsed:.3f}s, before queue_timeout_ms")
                self.assertLess(elapsed, 5.0, f"answered after {elapsed:.3f}s")
                self.assertNotIn("b", gate.started())
                gate.release()
                self.assertEqual(self.result(a, gw, "a").text.strip(), "released a")
                gw.close()

    def test_queue_is_fifo_and_max_workers_bounds_in_flight(self):
        gate = self.gate()
        gw = self.start_pool(gate, max_workers=1, max_queue=3)
        executor = self.executor()
        futures = {"a": executor.submit(gw.get, "/busy?name=a", timeout=60)}
        gate.wait_started(["a"], describe=gw.describe)
        for depth, name in enumerate("bcd", start=1):
            futures[name] = executor.submit(gw.get, f"/busy?name={name}", timeout=60)
            self.wait_metric(gw, "fastfn_gateway_requests_queued", depth, function="busy")
        for current, following in zip("abc", "bcd"):
            gate.release(current)
            self.assertEqual(self.result(futures[current], gw, current).text.strip(), f"released {current}")
            gate.wait_started([following], describe=gw.describe)
            later = set("bcd"[("bcd".index(following) + 1):])
            self.assertFalse(later & set(gate.started()), f"FIFO order broken: {sorted(gate.started())}")
        gate.release("d")
        self.assertEqual(self.result(futures["d"], gw, "d").text.strip(), "released d")
        self.wait_metric(gw, "fastfn_gateway_requests_in_flight", 0, function="busy")
        self.wait_metric(gw, "fastfn_gateway_requests_queued", 0, function="busy")

    def test_max_workers_two_runs_two_at_once(self):
        gate = self.gate()
        gw = self.start_pool(gate, max_workers=2, max_queue=0)
        executor = self.executor()
        a = executor.submit(gw.get, "/busy?name=a", timeout=30)
        b = executor.submit(gw.get, "/busy?name=b", timeout=30)
        gate.wait_started(["a", "b"], describe=gw.describe)
        self.wait_metric(gw, "fastfn_gateway_requests_in_flight", 2, function="busy")
        self.assert_overflow(gw.get("/busy?name=c", timeout=10), 429, "max_queue", gw)
        gate.release()
        for future in (a, b):
            self.assert_status(self.result(future, gw, "gated"), 200, gw)


class ErrorsTest(Case):
    def test_unknown_path_is_404_json(self):
        fns = self.functions()
        fns.sh_env("hello")
        gw = self.start_gateway(fns, wait_for=["hello"])
        for path in ("/nope", "/hello-not", "/_fn/nope"):
            with self.subTest(path=path):
                self.assert_json_error(gw.get(path), 404, gw)

    def test_method_not_in_methods_is_405_with_allow(self):
        fns = self.functions()
        fns.sh_env("ro", {"methods": ["GET", "POST"]})
        gw = self.start_gateway(fns, wait_for=["ro"])
        self.assert_status(gw.get("/ro"), 200, gw)
        self.assert_status(gw.post("/ro", b"x"), 200, gw)
        for method in ("DELETE", "PUT"):
            with self.subTest(method=method):
                response = gw.request(method, "/ro", body=b"")
                self.assert_json_error(response, 405, gw, function="ro")
                allow = {m.strip().upper() for m in response.headers.get("Allow", "").split(",") if m.strip()}
                self.assertTrue({"GET", "POST"} <= allow and method not in allow, f"Allow: {response!r}")

    def test_body_over_max_body_bytes_is_413(self):
        fns = self.functions()
        fns.sh_env("small", {"max_body_bytes": 100})
        gw = self.start_gateway(fns, wait_for=["small"])
        self.assert_json_error(gw.post("/small", b"x" * 101), 413, gw, function="small")
        self.assert_status(gw.post("/small", b"x" * 100), 200, gw, "a body of exactly max_body_bytes:")

    def test_handler_past_timeout_ms_is_504_and_killed(self):
        gate = self.gate()
        fns = self.functions()
        fns.gate("slow", gate.dir, {"timeout_ms": 500})
        gw = self.start_gateway(fns, wait_for=["slow"])
        started = time.monotonic()
        response = gw.get("/slow?name=t", timeout=20)
        elapsed = time.monotonic() - started
        self.assert_json_error(response, 504, gw, function="slow")
        self.assertGreaterEqual(elapsed, 0.45, f"504 after {elapsed:.2f}s, before timeout_ms")
        self.assertLess(elapsed, 5.0, f"504 after {elapsed:.2f}s for timeout_ms 500")
        handler = gate.started()["t"]
        wait_until(lambda: not harness.pid_alive(handler), 5,
                   message=lambda: f"the timed-out handler {handler} still runs\n{gw.describe()}")
        self.wait_metric(gw, "fastfn_gateway_requests_in_flight", 0, function="slow")
        self.wait_metric(gw, "fastfn_gateway_requests_total", 1, function="slow", code="504")

    def test_timeout_ms_0_means_none(self):
        """As OpenFaaS's exec_timeout=0: no limit, in the gateway and in the watchdog it starts."""
        gate = self.gate()
        fns = self.functions()
        fns.gate("patient", gate.dir, {"timeout_ms": 0})
        gw = self.start_gateway(fns, wait_for=["patient"])
        pool = concurrent.futures.ThreadPoolExecutor(1)
        self.addCleanup(pool.shutdown, wait=True)
        future = pool.submit(gw.get, "/patient?name=t", timeout=30)
        gate.wait_started(["t"], describe=gw.describe)
        if future.done():
            self.fail(f"answered while the handler runs: {future.result()!r}")
        gate.release("t")
        self.assert_status(future.result(30), 200, gw, "timeout_ms 0:")

    def test_format_server_runs_an_app_behind_the_gateway(self):
        """"format": "server" and FastFN's max_concurrency reach the watchdog; the app sees its own
        paths, the route in X-Forwarded-Prefix."""
        fns = self.functions()
        app = harness.FIXTURES_DIR / "server" / "app.py"
        fns.add("site", {"app.py": app}, {"format": "server", "command": [PYTHON, "app.py"],
                                          "max_concurrency": 8})
        gw = self.start_gateway(fns, wait_for=["site"])
        response = gw.get("/site/headers?x=1")
        self.assert_status(response, 200, gw, "format server:")
        self.assertIn(b'"pid"', gw.get("/site/pid").body, "the app's /pid at /site/pid")
        headers = json.loads(response.body)
        self.assertEqual(headers.get("x-forwarded-prefix"), "/site", headers)
        self.assertEqual(headers.get("x-fn-request-id"), response.headers.get("X-Fn-Request-Id"))
        entry = function_entry(gw.health(), "site")
        self.assertEqual(entry.get("format"), "server", entry)
        self.assertIn("--max-concurrency 8", cmdline(sockets_of(gw.health(), "site")[0]["pid"]))

    def test_every_response_carries_a_request_id_the_handler_sees(self):
        fns = self.functions()
        fns.sh_env("hello")
        gw = self.start_gateway(fns, wait_for=["hello"])
        ids = []
        for _ in range(2):
            response = gw.get("/hello")
            rid = response.headers.get("X-Fn-Request-Id")
            self.assertTrue(rid, response)
            self.assertEqual(self.kv_of(response, gw)["request_id"], rid, "the handler saw another id")
            ids.append(rid)
        self.assertNotEqual(ids[0], ids[1], "request ids must differ")
        for path in ("/nowhere", "/_fn/health", "/_fn/functions", "/_fn/metrics"):
            with self.subTest(path=path):
                self.assertTrue(gw.get(path).headers.get("X-Fn-Request-Id"),
                                f"{path} without X-Fn-Request-Id")

    def test_client_request_id_is_kept_end_to_end(self):
        fns = self.functions()
        fns.sh_env("hello")
        gw = self.start_gateway(fns, wait_for=["hello"])
        response = gw.get("/hello", headers={"X-Fn-Request-Id": "client-id-1234"})
        self.assertEqual(response.headers.get("X-Fn-Request-Id"), "client-id-1234", response)
        self.assertEqual(self.kv_of(response, gw)["request_id"], "client-id-1234")


class RuntimeSocketsTest(Case):
    """FN_RUNTIME_SOCKETS: sockets started outside the gateway, routed and probed, never (re)started."""

    def external(self, marker: str, listen: str = "tcp") -> harness.Watchdog:
        return self.start_watchdog(env_lines_command(), ["--format", "cgi"], listen=listen,
                                   env={"FN_MARKER": marker})

    def test_keyed_by_runtime_fastfns_form_sets_the_watchdogs_per_function(self):
        fns = self.functions()
        fns.sh_env("local")
        sockets = {"sh": ["unix:/tmp/fastfn-never-1.sock", "unix:/tmp/fastfn-never-2.sock"]}
        gw = self.start_gateway(fns, env={"FN_RUNTIME_SOCKETS": json.dumps(sockets)},
                                wait_for=["local"])
        self.assertEqual(gw.get("/local").status, 200, gw.describe())
        self.assertEqual(len(gw.sockets("local")), 2, gw.sockets("local"))
        self.assertEqual(gw.get("/sh").status, 404, "read as fastfn's form it was a function at /sh")
        self.assertIn("runtime-sockets.sh is FastFN's form", gw.log())
        self.assertFalse(os.path.exists("/tmp/fastfn-never-1.sock"))

    def test_external_tcp_watchdog_is_routed_and_never_restarted(self):
        wd = self.external("external")
        port = wd.address.port
        fns = self.functions()
        fns.sh_env("local")
        gw = self.start_gateway(fns,
                                env={"FN_RUNTIME_SOCKETS": json.dumps({"remote": [f"tcp:127.0.0.1:{port}"]})},
                                wait_for=["local", "remote"])
        data = self.kv_of(gw.get("/remote/sub"), gw)
        self.assertEqual((data["marker"], data["script_name"], data["path_info"]),
                         ("external", "/remote", "/sub"))
        socks = gw.sockets("remote")
        self.assertEqual(len(socks), 1, socks)
        self.assertIn(str(port), str(socks[0].get("address")), socks)
        started = [s.pid for s in gw.related_processes() if f":{port}" in cmdline(s.pid)]
        self.assertEqual(started, [], "the gateway started a process for an explicit socket")

        wd.kill()
        self.wait_health(gw, lambda h: socket_entry(h, "remote", 0).get("up") is False, 5,
                         what="the external socket shown down")
        data = self.assert_json_error(gw.get("/remote"), 503, gw, function="remote")
        self.assertIn("runtime unavailable", data["error"])
        self.assert_stays(lambda: not Address.tcp(port).accepts_connections()
                          and socket_entry(gw.health(), "remote", 0).get("up") is False, 2.0,
                          lambda: f"something restarted the external watchdog on {port}\n{gw.describe()}")
        self.assertIn(socket_entry(gw.health(), "remote", 0).get("restarts"), (0, None))
        self.assertEqual(self.kv_of(gw.get("/local"), gw)["runtime"], "sh", "other functions keep serving")

        self.external("external-again", listen=f"tcp:127.0.0.1:{port}")
        self.wait_health(gw, lambda h: socket_entry(h, "remote", 0).get("up") is True, 5,
                         what="the restarted external socket shown up")
        self.assertEqual(self.kv_of(gw.get("/remote"), gw)["marker"], "external-again")

    def test_remote_only_functions_round_robin_over_unix_and_tcp(self):
        a = self.external("ext-unix", listen="unix")
        b = self.external("ext-tcp")
        sockets = {"pair": [str(a.address), f"tcp:127.0.0.1:{b.address.port}"]}
        gw = self.start_gateway(self.functions(), env={"FN_RUNTIME_SOCKETS": json.dumps(sockets)},
                                wait_for=["pair"])
        health = gw.health()
        self.assertEqual(len(sockets_of(health, "pair")), 2, health)
        self.assertEqual(function_entry(health, "pair").get("sockets_up"), 2, health)
        self.assertEqual(function_entry(health, "pair").get("routes"), ["/pair"], health)
        markers = [self.kv_of(gw.get("/pair"), gw)["marker"] for _ in range(4)]
        self.assertEqual(sorted(markers), ["ext-tcp", "ext-tcp", "ext-unix", "ext-unix"], markers)
        self.assertTrue(all(x != y for x, y in zip(markers, markers[1:])), f"not round robin: {markers}")
        self.assertEqual(harness.children(gw.pid), [], "the gateway started processes for explicit sockets")

    def test_refused_socket_fails_over_at_once_and_is_marked_down(self):
        a = self.external("ext-unix", listen="unix")
        b = self.external("ext-tcp")
        sockets = {"pair": [str(a.address), f"tcp:127.0.0.1:{b.address.port}"]}
        # A health interval far longer than the test: only the requests can find the dead socket.
        gw = self.start_gateway(self.functions(), env={"FN_RUNTIME_SOCKETS": json.dumps(sockets),
                                                       "FN_HEALTH_INTERVAL": "60s"}, wait_for=["pair"])
        for _ in range(4):
            self.assert_status(gw.get("/pair"), 200, gw)
        a.kill()  # its unix socket file stays: connecting to it is refused
        self.assertTrue(os.path.exists(a.address.path))
        markers = [self.kv_of(gw.get("/pair"), gw)["marker"] for _ in range(6)]
        self.assertEqual(markers, ["ext-tcp"] * 6, "a refused socket must fail over to the next one")
        health = gw.health()
        self.assertIs(socket_entry(health, "pair", 0).get("up"), False,
                      f"a socket that refused a connection must be marked down at once: {health}")
        self.assertIs(socket_entry(health, "pair", 1).get("up"), True, health)

    def test_explicit_socket_replaces_the_daemons_of_a_folder_function(self):
        wd = self.external("external")
        fns = self.functions()
        fns.sh_env("hello", {"env": {"FN_MARKER": "local"}})
        explicit = json.dumps({"hello": [f"tcp:127.0.0.1:{wd.address.port}"]})
        gw = self.start_gateway(fns, env={"FN_RUNTIME_SOCKETS": explicit, "FN_RUNTIME_DAEMONS": "sh=2"},
                                wait_for=["hello"])
        socks = gw.sockets("hello")
        self.assertEqual(len(socks), 1, socks)
        for _ in range(3):
            self.assertEqual(self.kv_of(gw.get("/hello"), gw)["marker"], "external")
        self.assertEqual([p for p in harness.children(gw.pid) if harness.pid_alive(p)], [],
                         "no watchdog may be started for a function with explicit sockets")


class HotReloadTest(Case):
    """Adding, changing and removing function folders while the gateway runs, with a stream of
    requests to another function that must see nothing but 200."""

    def start_with_steady(self, fns: FunctionsDir, names=()):
        fns.python_http("steady")
        gw = self.start_gateway(fns, wait_for=["steady", *names])
        steady = gw.watchdog_pids("steady")
        stream = self.stream(gw, "/steady")
        stream.wait_count(5)
        return gw, steady, stream

    def finish(self, gw: Gateway, steady: list[int], stream) -> None:
        stream.wait_count(stream.count() + 5)
        self.assert_stream_clean(stream, gw)
        self.assertEqual(gw.watchdog_pids("steady"), steady, "the other function's watchdogs were restarted")
        self.assertTrue(gw.is_running())

    def test_added_functions_are_served_within_seconds(self):
        fns = self.functions()
        gw, steady, stream = self.start_with_steady(fns)
        fns.sh_env("added", {"env": {"FN_MARKER": "new"}})
        fns.sh_env("team/report", {"env": {"FN_MARKER": "nested"}})
        fns.python_http("hotadded")
        self.assertEqual(parse_kv(self.routed_to(gw, "/added").text)["marker"], "new")
        self.assertEqual(parse_kv(self.routed_to(gw, "/team/report/x").text)["path_info"], "/x")
        self.assertEqual(json.loads(self.routed_to(gw, "/hotadded").body)["version"], "v1")
        gw.wait_functions_up(["added", "team/report", "hotadded"], 10)
        self.finish(gw, steady, stream)

    def test_changed_handler_and_config_take_effect(self):
        fns = self.functions()
        fns.python_http("changing")
        gw, steady, stream = self.start_with_steady(fns, ["changing"])
        self.assertEqual(self.json_of(gw.get("/changing"), gw)["version"], "v1")
        fns.write("changing", "handler.py", hot_handler_source("v2"))
        self.routed_to(gw, "/changing", check=lambda r: json.loads(r.body).get("version") == "v2")
        fns.write_config("changing", {"format": "http", "include_debug_headers": True, "methods": ["GET"],
                                      "env": {"FN_MARKER": "changed"}})
        self.routed_to(gw, "/changing", check=lambda r: json.loads(r.body).get("marker") == "changed"
                       and r.headers.get("X-Fn-Function") == "changing")
        self.assert_json_error(gw.post("/changing", b"x"), 405, gw, function="changing")
        self.finish(gw, steady, stream)

    def test_broken_config_is_reported_then_picked_up_once_fixed(self):
        fns = self.functions()
        gw, steady, stream = self.start_with_steady(fns)
        fns.sh_env("later", {"timeout_ms": "soon", "env": {"FN_MARKER": "later"}})
        self.log_line(gw, os.path.join("later", "fn.config.json"), "timeout_ms")
        self.assert_json_error(gw.get("/later"), 503, gw, function="later")  # not ready, saying why
        fns.write_config("later", {"timeout_ms": 5000, "env": {"FN_MARKER": "later"}})
        self.assertEqual(parse_kv(self.routed_to(gw, "/later").text)["marker"], "later")
        self.finish(gw, steady, stream)

    def test_removed_function_stops_serving_and_its_processes_exit(self):
        fns = self.functions()
        fns.python_http("doomed", {"daemons": 2})
        gw, steady, stream = self.start_with_steady(fns, ["doomed"])
        socks = gw.sockets("doomed")
        doomed = gw.watchdog_pids("doomed")
        tree = doomed + [s.pid for p in doomed for s in harness.descendants(p)]
        self.assertEqual(len(doomed), 2)
        fns.remove("doomed")
        self.routed_to(gw, "/doomed", status=404)
        wait_until(lambda: not self.alive(tree), 10,
                   message=lambda: f"processes of the removed function still run: {self.alive(tree)}"
                                   f"\n{gw.describe()}")
        health = self.wait_health(gw,
                                  lambda h: function_entry(h, "doomed") is None
                                  and not sockets_of(h, "doomed"),
                                  5, what="the removed function gone from health")
        self.assertNotIn("doomed", health.get("functions", {}))
        for sock in socks:
            self.assertFalse(os.path.exists(unix_path(sock)), f"socket {sock} left behind")
        self.finish(gw, steady, stream)


class LifecycleTest(Case):
    def test_sigterm_drains_in_flight_stops_everything_and_exits_0(self):
        gate = self.gate()
        fns = self.functions()
        fns.gate("slow", gate.dir, {"timeout_ms": 60000, "daemons": 2})
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["slow", "hot"])
        paths = [unix_path(s) for name in ("slow", "hot") for s in gw.sockets(name)]
        self.assertTrue(all(os.path.exists(p) for p in paths), paths)
        future = self.executor().submit(gw.get, "/slow?name=drain", timeout=30)
        gate.wait_started(["drain"], describe=gw.describe)
        processes = [s.pid for s in gw.related_processes() if s.pid != gw.pid]
        self.assertGreaterEqual(len(processes), 4, "watchdogs and handlers expected")
        gw.send_signal(signal.SIGTERM)
        self.assert_stays(gw.is_running, 1.0, lambda: f"the gateway exited before draining\n{gw.describe()}")
        try:  # stopped accepting: a new request is refused or answered with an error, never served
            late = gw.get("/slow?name=late", timeout=3)
        except (OSError, harness.ProtocolError):
            late = None
        self.assertNotIn("late", gate.started(), f"a request sent after SIGTERM was served\n{gw.describe()}")
        self.assertTrue(late is None or late.status >= 500, f"after SIGTERM: {late!r}")
        gate.release()
        response = self.result(future, gw, "the in-flight request")
        self.assert_status(response, 200, gw, "an in-flight request must finish:")
        self.assertEqual(response.text.strip(), "released drain")
        self.assertEqual(gw.wait(20), 0, gw.describe())
        wait_until(lambda: not self.alive(processes) and not gw.related_processes(), 5,
                   message=lambda: f"left running: {[harness.proc_stat(p) for p in self.alive(processes)]}"
                                   f"\n{gw.describe()}")
        self.assertEqual([p for p in paths if os.path.exists(p)], [], "sockets left behind")

    def test_sigint_stops_everything_and_exits_0(self):
        fns = self.functions()
        fns.python_http("hot", {"daemons": 2})
        gw = self.start_gateway(fns, wait_for=["hot"])
        paths = [unix_path(s) for s in gw.sockets("hot")]
        processes = [s.pid for s in gw.related_processes() if s.pid != gw.pid]
        gw.send_signal(signal.SIGINT)
        self.assertEqual(gw.wait(20), 0, gw.describe())
        wait_until(lambda: not self.alive(processes), 5, message=lambda: f"left: {self.alive(processes)}")
        self.assertEqual([p for p in paths if os.path.exists(p)], [], "sockets left behind")

    def test_sighup_reloads_fastfn_json(self):
        fns = self.functions()
        fns.python_http("hello")
        gw = self.start_gateway(fns, config={"runtime-daemons": {"python": 1}}, wait_for=["hello"])
        self.assertEqual(len(gw.sockets("hello")), 1)
        write_json(gw.config_path, {"runtime-daemons": {"python": 2}})
        gw.send_signal(signal.SIGHUP)
        health = self.sockets_up(gw, "hello", 2)
        self.assertEqual(function_entry(health, "hello").get("daemons"), 2, health)
        self.assertTrue(gw.is_running())
        for _ in range(4):
            self.assert_status(gw.get("/hello"), 200, gw)


class StatusEndpointsTest(Case):
    def test_health_reports_runtimes_sockets_and_functions(self):
        fns = self.functions()
        fns.python_http("hello", {"daemons": 2})
        fns.sh_env("other")
        gw = self.start_gateway(fns, wait_for=["hello", "other"])
        health = gw.health()
        self.assertEqual(health.get("status"), "ok", health)
        self.assertEqual(health["runtimes"]["python"].get("routing"), "round_robin", health)
        self.assertEqual(health["runtimes"]["sh"].get("routing"), "single", health)
        self.assertTrue(health["runtimes"]["python"].get("up") and health["runtimes"]["sh"].get("up"), health)
        for sock in sockets_of(health, "hello") + sockets_of(health, "other"):
            keys = {"function", "index", "address", "up", "restarts", "last_error", "pid"}
            self.assertTrue(keys <= set(sock), sock)
            self.assertEqual((sock["up"], sock["restarts"], sock["last_error"]), (True, 0, None), sock)
            self.assertTrue(str(sock["address"]).startswith("unix:"), sock)
        hello = function_entry(health, "hello")
        self.assertEqual(hello,
                         {**hello, "runtime": "python", "format": "http", "routes": ["/hello"], "up": True,
                                 "daemons": 2, "sockets_up": 2})
        other = function_entry(health, "other")
        self.assertEqual(other, {**other, "runtime": "sh", "format": "cgi", "routes": ["/other"], "up": True,
                                 "daemons": 1, "sockets_up": 1})
        response = gw.get("/_fn/health")
        self.assertIn("json", response.headers.get("Content-Type", ""), response)

    def test_post_reload_rescans_at_once_as_sighup_does(self):
        """FastFN's POST /_fn/reload: the functions folder (and fastfn.json) read again before the
        answer, which lists the functions now served."""
        fns = self.functions()
        fns.sh_env("first")
        gw = self.start_gateway(fns, wait_for=["first"])
        fns.sh_env("second")
        response = gw.post("/_fn/reload", b"")
        self.assert_status(response, 200, gw, "POST /_fn/reload:")
        self.assertEqual(set(functions_listing(json.loads(response.body))), {"first", "second"}, response)
        self.assert_status(gw.get("/second"), 200, gw, "the function the reload found:")
        self.assert_json_error(gw.get("/_fn/reload"), 405, gw)
        self.assertIn("reloaded request=", gw.log(), gw.describe())

    def test_functions_endpoint_lists_functions_with_their_config(self):
        fns = self.functions()
        fns.sh_env("listed", {"methods": ["GET"], "timeout_ms": 1234,
                              "worker_pool": {"max_workers": 2, "max_queue": 3}})
        fns.python_http("hot")
        gw = self.start_gateway(fns, wait_for=["listed", "hot"])
        listing = functions_listing(gw.get_json("/_fn/functions"))
        self.assertEqual(set(listing), {"listed", "hot"}, listing)
        entry = listing["listed"]
        self.assertIn(1234, find_key(entry, "timeout_ms"), entry)
        self.assertIn(["GET"], find_key(entry, "methods"), entry)
        self.assertIn(2, find_key(entry, "max_workers"), entry)
        self.assertIn(3, find_key(entry, "max_queue"), entry)
        self.assertIn("sh", find_key(entry, "runtime"), entry)
        self.assertIn(["/listed"], find_key(entry, "routes"), entry)
        self.assertIn("http", find_key(listing["hot"], "format"), listing["hot"])

    def test_metrics_count_requests_by_function_and_status(self):
        fns = self.functions()
        fns.sh_env("m", {"methods": ["GET"]})
        gw = self.start_gateway(fns, wait_for=["m"])
        for _ in range(3):
            self.assert_status(gw.get("/m"), 200, gw)
        self.assert_status(gw.request("DELETE", "/m"), 405, gw)
        metrics = self.wait_metric(gw, "fastfn_gateway_requests_total", 3, function="m", code="200")
        self.wait_metric(gw, "fastfn_gateway_requests_total", 1, function="m", code="405")
        metrics = gw.metrics()
        self.assertEqual(metrics.types.get("fastfn_gateway_requests_total"), "counter", metrics.text[:2000])
        self.assertEqual(metrics.types.get("fastfn_gateway_request_duration_seconds"), "histogram")
        count = metrics.get("fastfn_gateway_request_duration_seconds_count", function="m")
        self.assertGreaterEqual(count, 3, metrics.text[:3000])
        inf = metrics.get("fastfn_gateway_request_duration_seconds_bucket", function="m", le="+Inf")
        self.assertEqual(inf, count, metrics.text[:3000])
        self.assertTrue(metrics.has("fastfn_gateway_request_duration_seconds_sum", function="m"))
        for name, value in (("fastfn_gateway_requests_queued", 0), ("fastfn_gateway_requests_in_flight", 0),
                            ("fastfn_gateway_sockets_up", 1), ("fastfn_gateway_restarts_total", 0)):
            with self.subTest(metric=name):
                self.assertTrue(metrics.has(name, function="m"), f"{name} missing\n{metrics.text[:3000]}")
                self.assertEqual(metrics.get(name, function="m"), value, name)
        # The process collector's series, of the gateway's own process (issue 20).
        self.assertGreater(metrics.get("process_resident_memory_bytes"), 0, metrics.text[-2000:])
        self.assertGreaterEqual(metrics.get("process_threads"), 2)
        self.assertEqual(metrics.types.get("process_cpu_seconds_total"), "counter")
        self.assertTrue(metrics.has("fastfn_build_info"), metrics.text[-2000:])

    def test_metrics_show_in_flight_requests(self):
        gate = self.gate()
        fns = self.functions()
        fns.gate("slow", gate.dir, {"timeout_ms": 60000})
        gw = self.start_gateway(fns, wait_for=["slow"])
        future = self.executor().submit(gw.get, "/slow?name=x", timeout=30)
        gate.wait_started(["x"], describe=gw.describe)
        self.wait_metric(gw, "fastfn_gateway_requests_in_flight", 1, function="slow")
        gate.release()
        self.assert_status(self.result(future, gw, "gated"), 200, gw)
        self.wait_metric(gw, "fastfn_gateway_requests_in_flight", 0, function="slow")


if __name__ == "__main__":
    unittest.main(verbosity=2)
