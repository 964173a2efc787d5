#!/usr/bin/env python3
"""Integration tests of `fastfn-watchdog --format cgi` (DESIGN.md, "fastfn-watchdog").

Each test starts the real binary (FASTFN_WATCHDOG, default <repo>/build/watchdog/fastfn-watchdog) on a
unix socket in a temp dir (or on tcp loopback) with small programs from tests/fixtures/cgi, and checks
one behaviour. Run alone: python3 tests/integration/test_watchdog_cgi.py [-k PATTERN]
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
from harness import KIB, MIB, Address, proc_stat, processes_in_group, wait_until  # noqa: E402

CGI = ["--format", "cgi"]


def fixture(name: str) -> str:
    return str(harness.CGI_FIXTURES_DIR / name)


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_fixtures_executable()


# The series every Prometheus client library's process collector exports (issue 20).
PROCESS_METRICS = {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                   "process_start_time_seconds", "process_threads", "process_open_fds", "process_max_fds"}


class Gate:
    """Controls tests/fixtures/cgi/gate.sh: each request running it creates started.PID in the gate's
    dir and waits until release() creates the release file."""

    def __init__(self, test: harness.WatchdogTestCase):
        self.dir = test.make_tempdir("fastfn-gate-")
        test.addCleanup(self.release)  # runs before the dir is removed: no gate.sh waits in vain

    def release(self) -> None:
        if os.path.isdir(self.dir):
            harness.touch(os.path.join(self.dir, "release"))

    def started_pids(self) -> list[int]:
        return sorted(int(n.split(".", 1)[1]) for n in os.listdir(self.dir) if n.startswith("started."))

    def wait_started(self, count: int, wd: harness.Watchdog, timeout: float = 10.0) -> list[int]:
        wait_until(lambda: len(self.started_pids()) >= count, timeout,
                   message=lambda: f"{count} gated requests did not start\n{wd.describe()}")
        return self.started_pids()


class CgiTestCase(harness.WatchdogTestCase):
    """Helpers shared by the test classes."""

    def start(self, command, *options, **kwargs) -> harness.Watchdog:
        return self.start_watchdog(command, [*CGI, *options], **kwargs)

    def executor(self, workers: int = 4) -> concurrent.futures.ThreadPoolExecutor:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.addCleanup(pool.shutdown, wait=True)
        return pool

    def result(self, future, wd: harness.Watchdog, what: str, timeout: float = 30.0):
        """The response of a request made in a thread; an exception or no answer fails the test."""
        try:
            return future.result(timeout=timeout)
        except Exception as exc:  # socket timeout, reset, protocol error: all are test failures here
            self.fail(f"{what}: no response ({exc!r})\n{wd.describe()}")

    def assert_status(self, response: harness.Response, status: int, wd: harness.Watchdog,
                      note: str = "") -> None:
        self.assertEqual(response.status, status,
                         f"{note} expected {status}, got {response!r}\n{wd.describe()}")

    def assert_json_error(self, response: harness.Response, status: int, wd: harness.Watchdog,
                          function: str = None) -> dict:
        self.assert_status(response, status, wd, "JSON error:")
        self.assertIn("json", response.headers.get("Content-Type", ""),
                      f"an error body must be JSON: {response!r}")
        try:
            data = json.loads(response.body)
        except ValueError:
            self.fail(f"error body is not JSON: {response!r}\n{wd.describe()}")
        self.assertIsInstance(data, dict, f"error body must be an object: {response!r}")
        self.assertIsInstance(data.get("error"), str, f"no \"error\" string: {data!r}")
        self.assertTrue(data["error"].strip(), f"empty \"error\": {data!r}")
        self.assertIn("function", data, f"no \"function\": {data!r}")
        self.assertIn("request_id", data, f"no \"request_id\": {data!r}")
        self.assertEqual(data["request_id"], response.headers.get("X-Fn-Request-Id"),
                         f"request_id of the body and the X-Fn-Request-Id header differ: {response!r}")
        if function is not None:
            self.assertEqual(data["function"], function, f"wrong function name: {data!r}")
        return data

    def env_of(self, response: harness.Response, wd: harness.Watchdog) -> dict:
        self.assert_status(response, 200, wd, "env_json.py:")
        try:
            return json.loads(response.body)
        except ValueError:
            self.fail(f"env_json.py output is not JSON: {response!r}\n{wd.describe()}")

    def assert_rss_grew_less_than(self, wd: harness.Watchdog, idle: int, growth: int) -> None:
        """The watchdog's peak RSS is less than `growth` above `idle`, its RSS measured before the
        request (sanitizer builds start at some 60 MiB, so an absolute bound would measure them)."""
        peak = harness.vm_hwm_bytes(wd.pid)
        self.assertLess(peak - idle, growth,
                        f"watchdog peak RSS {peak / MIB:.1f} MiB, {(peak - idle) / MIB:.1f} MiB above "
                        f"its {idle / MIB:.1f} MiB before the request\n{wd.describe()}")

    def assert_group_gone(self, pgid: int, wd: harness.Watchdog, timeout: float = 5.0) -> None:
        wait_until(lambda: not processes_in_group(pgid), timeout,
                   message=lambda: f"processes of group {pgid} still alive: "
                                   f"{[proc_stat(p) for p in processes_in_group(pgid)]}\n{wd.describe()}")

    def assert_no_zombies(self, wd: harness.Watchdog, timeout: float = 5.0) -> None:
        wait_until(lambda: harness.zombie_count(wd.pid) == 0, timeout,
                   message=lambda: f"zombies under the watchdog: {harness.zombie_descendants(wd.pid)}"
                                   f"\n{wd.describe()}")


# ----------------------------------------------------------------------------------------------------


class CommandLineTest(CgiTestCase):
    def unix_listen(self) -> list[str]:
        return ["--listen", f"unix:{self.make_tempdir()}/wd.sock"]

    def assert_usage_error(self, result: harness.CliResult) -> None:
        self.assertIsNotNone(result.returncode, f"did not exit (it was killed)\n{result.describe()}")
        self.assertEqual(result.returncode, 2, f"expected exit code 2\n{result.describe()}")
        self.assertEqual(len(result.stderr_lines()), 1,
                         f"expected exactly one non-empty line on stderr\n{result.describe()}")

    def test_help_exits_0_and_prints_usage_to_stdout(self):
        result = harness.run_cli(["--help"])
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertIn("usage", result.stdout.lower(), result.describe())
        self.assertIn("--listen", result.stdout, result.describe())

    def test_version_exits_0_and_prints_a_version(self):
        result = harness.run_cli(["--version"])
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertRegex(result.stdout, r"\d+\.\d+", result.describe())

    def test_unknown_option_exits_2_with_one_line(self):
        self.assert_usage_error(harness.run_cli([*CGI, *self.unix_listen(), "--no-such-option", "--", "cat"]))

    def test_bad_duration_exits_2_with_one_line(self):
        for value in ("abc", "10parsecs", "-5s"):
            with self.subTest(value=value):
                self.assert_usage_error(harness.run_cli(
                    [*CGI, *self.unix_listen(), "--exec-timeout", value, "--", "cat"]))

    def test_bad_size_exits_2_with_one_line(self):
        for value in ("lots", "10XB"):
            with self.subTest(value=value):
                self.assert_usage_error(harness.run_cli(
                    [*CGI, *self.unix_listen(), "--max-body", value, "--", "cat"]))

    def test_bad_number_exits_2_with_one_line(self):
        self.assert_usage_error(harness.run_cli(
            [*CGI, *self.unix_listen(), "--max-inflight", "many", "--", "cat"]))

    def test_bad_format_exits_2_with_one_line(self):
        self.assert_usage_error(harness.run_cli(["--format", "fcgi", *self.unix_listen(), "--", "cat"]))

    def test_bad_value_in_environment_exits_2_with_one_line(self):
        self.assert_usage_error(harness.run_cli([*CGI, *self.unix_listen(), "--", "cat"],
                                                env={"exec_timeout": "abc"}))

    def test_missing_command_exits_2_with_one_line(self):
        for tail in ([], ["--"]):
            with self.subTest(args=tail):
                self.assert_usage_error(harness.run_cli([*CGI, *self.unix_listen(), *tail],
                                                        env={"fprocess": None}))

    def test_tcp_address_in_use_exits_2_with_one_line(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            self.assert_usage_error(harness.run_cli([*CGI, "--listen", f"127.0.0.1:{port}", "--", "cat"]))

    def test_unix_socket_in_use_exits_2_and_leaves_the_other_server_alone(self):
        path = os.path.join(self.make_tempdir(), "busy.sock")
        with socket.socket(socket.AF_UNIX) as busy:
            busy.bind(path)
            busy.listen(1)
            self.assert_usage_error(harness.run_cli([*CGI, "--listen", f"unix:{path}", "--", "cat"]))
            self.assertTrue(Address.unix(path).accepts_connections(),
                            "the watchdog removed or took over a unix socket that another server uses")


class ConfigurationTest(CgiTestCase):
    def test_fprocess_env_gives_the_command_split_on_spaces(self):
        wd = self.start(None, env={"fprocess": "echo hello world"})
        response = wd.get("/")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"hello world\n")

    def test_environment_variable_sets_an_option(self):
        wd = self.start(["cat"], env={"max_body": "1KiB", "content_type": "application/x-from-env"})
        self.assert_json_error(wd.post("/", b"x" * 2 * KIB), 413, wd)
        response = wd.post("/", b"small")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.headers.get("Content-Type"), "application/x-from-env")

    def test_flag_wins_over_environment_variable(self):
        wd = self.start(["cat"], "--max-body", "1MiB", env={"max_body": "1KiB"})
        body = b"y" * 2 * KIB
        response = wd.post("/", body)
        self.assert_status(response, 200, wd, "--max-body 1MiB must win over max_body=1KiB:")
        self.assertEqual(response.body, body)

    def test_openfaas_lock_file_is_there_while_serving(self):
        """OpenFaaS images check `[ -e /tmp/.lock ]` (the file is $TMPDIR/.lock): present once the
        watchdog answers, gone as soon as it drains; none with suppress_lock."""
        tmp = self.make_tempdir()
        lock = os.path.join(tmp, ".lock")
        wd = self.start(["echo", "ok"], env={"TMPDIR": tmp})  # started: healthy
        self.assertTrue(os.path.exists(lock), f"no {lock} while serving\n{wd.describe()}")
        wd.send_signal(signal.SIGTERM)
        self.assertEqual(wd.wait(20), 0, wd.describe())
        self.assertFalse(os.path.exists(lock), "the lock file outlived the watchdog")
        quiet = self.start(["echo", "ok"], env={"TMPDIR": tmp, "suppress_lock": "true"})
        self.assert_status(quiet.get("/"), 200, quiet)
        self.assertFalse(os.path.exists(lock), f"suppress_lock=true wrote {lock}")

    def test_openfaas_port_listens_on_every_interface(self):
        port = harness.free_port()
        wd = self.start(["echo", "via-port"], listen=None, address=harness.Address.tcp(port),
                        env={"port": str(port)})
        self.assertEqual(wd.get("/").body, b"via-port\n")
        self.assertRegex(wd.log(), rf"listening address=tcp::{port}\b")

    def test_listen_environment_variable_sets_the_address(self):
        wd = self.start(["echo", "via-env"], listen_via_env=True)  # polled healthy on that address
        self.assertEqual(wd.get("/").body, b"via-env\n")

    def test_responses_say_x_duration_seconds_as_openfaas(self):
        """OpenFaaS's watchdogs put X-Duration-Seconds on a function's answer: here the time from
        the request's arrival to the answer's head, so at most what the client waited."""
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir])
        started = time.monotonic()
        future = self.executor().submit(wd.get, "/", timeout=30)
        gate.wait_started(1, wd)
        gate.release()
        response = self.result(future, wd, "the gated request")
        waited = time.monotonic() - started
        self.assert_status(response, 200, wd)
        took = float(response.headers.get("X-Duration-Seconds", "nan"))
        self.assertTrue(0 < took <= waited, f"X-Duration-Seconds {took!r} for a request the client waited "
                                            f"{waited:.3f}s for: {response!r}")

    def test_duration_and_size_units_are_understood(self):
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir], "--exec-timeout", "300ms", "--max-body", "512",
                        "--read-timeout", "2m", "--shutdown-timeout", "3")
        started = time.monotonic()
        response = wd.get("/", timeout=10)
        elapsed = time.monotonic() - started
        self.assert_json_error(response, 504, wd)
        self.assertLess(elapsed, 2.5, f"--exec-timeout 300ms answered after {elapsed:.2f}s")
        self.assert_json_error(wd.post("/", b"x" * 513), 413, wd)
        gate.release()
        self.assert_status(wd.post("/", b"x" * 512), 200, wd, "a body of exactly 512 bytes:")

    def test_exec_timeout_0_means_none_as_in_openfaas(self):
        """OpenFaaS's exec_timeout=0 is "no limit" (it answered every request 504 at once), and its
        durations are Go's ("1m30s")."""
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir], env={"exec_timeout": "0", "read_timeout": "1m30s"})
        future = self.executor().submit(wd.get, "/", timeout=30)
        gate.wait_started(1, wd)
        if future.done():
            self.fail(f"answered while the program runs: {future.result()!r}")
        gate.release()
        self.assert_status(self.result(future, wd, "the request with no exec timeout"), 200, wd)

    def test_log_format_json_writes_json_lines(self):
        wd = self.start([fixture("stderr_lines.sh")], "--log-format", "json")
        self.assert_status(wd.get("/"), 200, wd)
        wait_until(lambda: "stderr-line-two" in wd.log(), 5, message=lambda: wd.describe())
        for line in filter(str.strip, wd.log().splitlines()):
            try:
                self.assertIsInstance(json.loads(line), dict)
            except (ValueError, AssertionError):
                self.fail(f"not a JSON object log line: {line!r}")

    def test_workdir_sets_the_programs_working_directory(self):
        workdir = self.make_tempdir()
        wd = self.start(["pwd"], "--workdir", workdir)
        response = wd.get("/")
        self.assert_status(response, 200, wd)
        self.assertEqual(os.path.realpath(response.text.strip()), os.path.realpath(workdir))


class ResponseTest(CgiTestCase):
    def test_exit_zero_gives_200_with_stdout_as_body(self):
        wd = self.start([fixture("exit_code.sh")])
        response = wd.get("/")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"output before exit 0\n")
        self.assertEqual(response.headers.get("X-Fn-Exit-Code"), "0", repr(response))

    def test_nonzero_exit_gives_500_with_output_as_body(self):
        wd = self.start([fixture("exit_code.sh")])
        response = wd.get("/?code=3")
        self.assert_status(response, 500, wd)
        self.assertIn(b"output before exit 3", response.body)
        self.assertEqual(response.headers.get("X-Fn-Exit-Code"), "3", repr(response))

    def test_request_body_is_given_on_stdin(self):
        wd = self.start(["cat"])
        body = b"hello\x00world\n" * 100
        response = wd.post("/", body)
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, body)

    def test_chunked_request_body_is_given_on_stdin(self):
        wd = self.start(["cat"])
        response = wd.request("POST", "/", body=iter([b"one,", b"two,", b"three"]))
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"one,two,three")

    def test_default_content_type_is_text_plain_utf8(self):
        wd = self.start(["echo", "hi"])
        self.assertEqual(wd.get("/").headers.get("Content-Type"), "text/plain; charset=utf-8")

    def test_content_type_option_changes_the_content_type(self):
        wd = self.start(["echo", "{}"], "--content-type", "application/json")
        self.assertEqual(wd.get("/").headers.get("Content-Type"), "application/json")

    def test_request_id_from_client_is_returned_and_given_to_the_program(self):
        wd = self.start([fixture("env_json.py")])
        response = wd.get("/", headers={"X-Fn-Request-Id": "client-id-42"})
        self.assertEqual(response.headers.get("X-Fn-Request-Id"), "client-id-42", repr(response))
        self.assertEqual(self.env_of(response, wd).get("X_FN_REQUEST_ID"), "client-id-42")

    def test_request_id_is_generated_when_the_client_sends_none(self):
        wd = self.start([fixture("env_json.py")])
        first, second = wd.get("/"), wd.get("/")
        ids = [r.headers.get("X-Fn-Request-Id") for r in (first, second)]
        self.assertTrue(all(ids), f"missing X-Fn-Request-Id: {first!r} {second!r}")
        self.assertNotEqual(ids[0], ids[1], "two requests got the same generated request id")
        self.assertEqual(self.env_of(first, wd).get("X_FN_REQUEST_ID"), ids[0])

    def test_output_of_64_kib_carries_exit_code_header(self):
        wd = self.start([fixture("output_n.sh")])
        response = wd.get(f"/?n={64 * KIB}&exit=0")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body_length, 64 * KIB)
        self.assertEqual(response.headers.get("X-Fn-Exit-Code"), "0", repr(response))

    def test_output_over_64_kib_is_chunked_with_exit_code_trailer(self):
        wd = self.start([fixture("output_n.sh")])
        for code in ("0", "3"):
            with self.subTest(exit=code):
                response = wd.get(f"/?n={300 * KIB}&exit={code}")
                self.assertTrue(response.chunked, f"a 300 KiB output must stream chunked: {response!r}")
                self.assertEqual(response.body, b"a" * 300 * KIB)
                self.assertEqual(response.trailers.get("X-Fn-Exit-Code"), code,
                                 f"exit code must arrive as a trailer: {response!r}\n{wd.describe()}")

    def test_program_that_ignores_stdin_still_gets_answered(self):
        wd = self.start(["echo", "ignored"])
        response = wd.post("/", b"z" * MIB, timeout=15)
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"ignored\n")
        self.assert_status(wd.get("/"), 200, wd, "after a body the program did not read:")


class EnvironmentTest(CgiTestCase):
    def test_cgi_meta_variables_are_set(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.get("/some/path?a=1&b=2"), wd)
        expected = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SCRIPT_NAME": "",
                    "PATH_INFO": "/some/path", "QUERY_STRING": "a=1&b=2", "SERVER_PROTOCOL": "HTTP/1.1",
                    "REQUEST_URI": "/some/path?a=1&b=2"}
        for name, value in expected.items():
            self.assertEqual(env.get(name), value, f"{name} in {env!r}")
        for name in ("SERVER_SOFTWARE", "SERVER_NAME"):
            self.assertTrue(env.get(name), f"{name} missing or empty in {env!r}")
        for name in ("SERVER_PORT", "REMOTE_ADDR"):
            self.assertIn(name, env)
        self.assertNotIn("CONTENT_LENGTH", env, "CONTENT_LENGTH is set only when there is a body")

    def test_request_method_is_passed(self):
        wd = self.start([fixture("env_json.py")])
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                env = self.env_of(wd.request(method, "/m", body=b"" if method == "PUT" else None), wd)
                self.assertEqual(env.get("REQUEST_METHOD"), method)
                self.assertEqual(env.get("Http_Method"), method)

    def test_tcp_server_port_remote_addr_and_server_name(self):
        wd = self.start([fixture("env_json.py")], listen="tcp")
        env = self.env_of(wd.get("/"), wd)
        self.assertEqual(env.get("SERVER_PORT"), str(wd.address.port))
        self.assertEqual(env.get("REMOTE_ADDR"), "127.0.0.1")
        self.assertEqual(env.get("SERVER_NAME"), "127.0.0.1")

    def test_server_name_comes_from_the_host_header(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.get("/", headers={"Host": "example.test:8123"}), wd)
        self.assertEqual(env.get("SERVER_NAME"), "example.test")

    def test_content_length_and_content_type_describe_the_body(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.post("/", b"12345", headers={"Content-Type": "application/x-test"}), wd)
        self.assertEqual(env.get("CONTENT_LENGTH"), "5")
        self.assertEqual(env.get("CONTENT_TYPE"), "application/x-test")
        self.assertEqual(env.get("__stdin__"), "12345")

    def test_chunked_body_gets_no_false_content_length(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.request("POST", "/", body=iter([b"abc", b"def"])), wd)
        self.assertEqual(env.get("__stdin__"), "abcdef")
        self.assertIn(env.get("CONTENT_LENGTH"), (None, "6"),
                      "a chunked body's CONTENT_LENGTH must be absent (length unknown) or its real length; "
                      "CGI programs such as git http-backend read exactly CONTENT_LENGTH bytes")

    def test_headers_become_http_and_openfaas_variables(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.get("/", headers={"X-Custom-Header": "custom value"}), wd)
        self.assertEqual(env.get("HTTP_X_CUSTOM_HEADER"), "custom value")
        self.assertEqual(env.get("Http_X_Custom_Header"), "custom value")

    def test_openfaas_method_path_and_query_variables(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.post("/of/path?x=1&y=two", b"b"), wd)
        self.assertEqual(env.get("Http_Method"), "POST")
        self.assertEqual(env.get("Http_Path"), "/of/path")
        self.assertEqual(env.get("Http_Query"), "x=1&y=two")

    def test_openfaas_cgi_headers_variable_keeps_openfaas_meaning(self):
        """OpenFaaS's cgi_headers says whether request headers become Http_* variables (default
        true), not fastfn's "output begins with CGI headers": an OpenFaaS config that sets it
        either way still gets its plain output as the body."""
        wd = self.start([fixture("env_json.py")], env={"cgi_headers": "true"})
        env = self.env_of(wd.get("/of?x=1", headers={"X-Custom-Header": "v"}), wd)
        self.assertEqual(env.get("Http_X_Custom_Header"), "v", "cgi_headers=true: the output was "
                         "parsed as CGI headers, or the header is missing")
        self.assertEqual(env.get("Http_Query"), "x=1")
        off = self.start([fixture("env_json.py")], env={"cgi_headers": "false"})
        env = self.env_of(off.get("/of?x=1", headers={"X-Custom-Header": "v"}), off)
        self.assertFalse([k for k in env if k.startswith("Http_")],
                         f"cgi_headers=false still passed OpenFaaS's variables: {env}")
        self.assertEqual(env.get("HTTP_X_CUSTOM_HEADER"), "v", "the CGI variables stay")
        self.assertEqual(env.get("QUERY_STRING"), "x=1")

    def test_proxy_header_never_becomes_http_proxy(self):
        wd = self.start([fixture("env_json.py")], env={"HTTP_PROXY": None, "http_proxy": None})
        env = self.env_of(wd.get("/", headers={"Proxy": "evil"}), wd)
        self.assertNotIn("HTTP_PROXY", env, "httpoxy: Proxy header became HTTP_PROXY")
        self.assertNotIn("Http_Proxy", env, "httpoxy: Proxy header became Http_Proxy")
        leaked = {k: v for k, v in env.items() if v == "evil"}
        self.assertFalse(leaked, f"the Proxy header's value reached the environment: {leaked}")

    def test_headers_with_unsafe_names_are_dropped(self):
        wd = self.start([fixture("env_json.py")])
        response = wd.get("/", headers=[("X_Under", "under-value"), ("X.Dot", "dot-value"),
                                        ("X-Safe", "safe-value")])
        env = self.env_of(response, wd)
        self.assertEqual(env.get("HTTP_X_SAFE"), "safe-value", "the request itself must be served")
        leaked = {k: v for k, v in env.items() if v in ("under-value", "dot-value")}
        self.assertFalse(leaked, f"headers with names outside [A-Za-z0-9-] reached the environment: {leaked}")

    def test_forwarded_prefix_becomes_script_name(self):
        wd = self.start([fixture("env_json.py")])
        env = self.env_of(wd.get("/api/users/x?q=1", headers={"X-Forwarded-Prefix": "/api/users"}), wd)
        self.assertEqual(env.get("SCRIPT_NAME"), "/api/users")
        self.assertEqual(env.get("PATH_INFO"), "/x")
        self.assertEqual(env.get("QUERY_STRING"), "q=1")

    def test_watchdog_environment_is_inherited(self):
        wd = self.start([fixture("env_json.py")], env={"FASTFN_TEST_MARKER": "marker-7f3a"})
        self.assertEqual(self.env_of(wd.get("/"), wd).get("FASTFN_TEST_MARKER"), "marker-7f3a")


class CgiHeadersTest(CgiTestCase):
    def start_cgi(self) -> harness.Watchdog:
        return self.start([fixture("cgi_response.sh")], "--cgi-headers")

    def test_cgi_response_variable_turns_cgi_headers_on(self):
        wd = self.start([fixture("cgi_response.sh")], env={"cgi_response": "1"})
        response = wd.get("/created")
        self.assert_status(response, 201, wd)
        self.assertEqual(response.body, b'{"made":true}')

    def test_status_header_sets_status_and_other_headers_pass_through(self):
        wd = self.start_cgi()
        response = wd.get("/created")
        self.assert_status(response, 201, wd)
        self.assertEqual(response.headers.get("Content-Type"), "application/json")
        self.assertEqual(response.headers.get("X-Extra"), "yes")
        self.assertNotIn("Status", response.headers, "the CGI Status field is not a response header")
        self.assertEqual(response.body, b'{"made":true}')
        self.assertEqual(response.headers.get("X-Fn-Exit-Code"), "0", repr(response))

    def test_absolute_location_without_body_is_a_302_redirect(self):
        wd = self.start_cgi()
        response = wd.get("/redirect")
        self.assert_status(response, 302, wd)
        self.assertEqual(response.headers.get("Location"), "http://x/y")

    def test_local_location_serves_that_path_with_get(self):
        wd = self.start_cgi()
        response = wd.post("/local", b"posted")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"other method=GET path=/other")

    def test_output_without_blank_line_after_headers_is_502_json(self):
        wd = self.start_cgi()
        self.assert_json_error(wd.get("/no-blank-line"), 502, wd)

    def test_headers_with_bare_lf_line_ends_are_accepted(self):
        wd = self.start_cgi()
        response = wd.get("/bare-lf")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.headers.get("Content-Type"), "text/x-lf")
        self.assertEqual(response.headers.get("X-Lf"), "yes")
        self.assertEqual(response.body, b"lf body")

    def test_document_without_content_type_gets_the_default(self):
        wd = self.start_cgi()
        response = wd.get("/default-type")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.headers.get("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(response.headers.get("X-Only"), "header")
        self.assertEqual(response.body, b"no content type")


class OutputLoggingTest(CgiTestCase):
    def test_stderr_is_logged_with_function_name_and_pid_not_returned(self):
        wd = self.start([fixture("stderr_lines.sh")], "--name", "logfn")
        response = wd.get("/")
        self.assert_status(response, 200, wd)
        match = re.search(rb"pid=(\d+)", response.body)
        self.assertTrue(match, repr(response))
        pid = match.group(1).decode()
        self.assertNotIn(b"stderr-line", response.body, "without --combine-output stderr is only logged")
        for text in (f"stderr-line-one pid={pid}", "stderr-line-two"):
            def logged(text=text):
                return [line for line in wd.log().splitlines() if text in line]
            lines = wait_until(logged, 5, message=lambda: f"{text!r} not logged\n{wd.describe()}")
            self.assertTrue(any(re.search(rf"\b{pid}\b", line.replace(text, "")) and "logfn" in line
                                for line in lines),
                            f"the log line of {text!r} must name the function (logfn) and the child's pid "
                            f"{pid}: {lines}")

    def test_combine_output_appends_stderr_to_the_body(self):
        wd = self.start([fixture("stderr_lines.sh")], "--combine-output")
        response = wd.get("/")
        self.assert_status(response, 200, wd)
        for text in (b"stdout-done", b"stderr-line-one", b"stderr-line-two"):
            self.assertIn(text, response.body)

    def test_one_mib_stderr_line_does_not_stall_the_program(self):
        wd = self.start([fixture("big_stderr.sh")], "--exec-timeout", "20s")
        response = wd.get("/", timeout=20)
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"ok\n")


class ExecTimeoutTest(CgiTestCase):
    def run_timeout(self, *args: str) -> None:
        tree = self.make_tempdir()
        wd = self.start([fixture("sleep_tree.sh"), tree, *args], "--exec-timeout", "1s", "--name", "sleeper")
        pool = self.executor(1)
        started = time.monotonic()
        future = pool.submit(wd.get, "/", timeout=20)
        wait_until(lambda: [n for n in os.listdir(tree) if n.startswith("started.")], 10,
                   message=lambda: f"sleep_tree.sh did not start\n{wd.describe()}")
        name = next(n for n in os.listdir(tree) if n.startswith("started."))
        leader = int(name.split(".")[1])
        with open(os.path.join(tree, name)) as f:
            background = int(f.read().strip())
        leader_stat = proc_stat(leader)
        self.assertIsNotNone(leader_stat, "the program ended before its timeout")
        pgid = leader_stat.pgrp
        self.addCleanup(harness.kill_group, pgid)
        self.assertEqual(pgid, leader, "the program must lead its own process group")
        self.assertNotEqual(pgid, os.getpgid(wd.pid), "the program must not share the watchdog's group")
        self.assertIn(background, processes_in_group(pgid), "the background sleep should be in the group")
        response = self.result(future, wd, "the request that times out")
        elapsed = time.monotonic() - started
        self.assert_json_error(response, 504, wd, function="sleeper")
        self.assertLess(elapsed, 4.0, f"504 came after {elapsed:.2f}s with --exec-timeout 1s")
        self.assertGreater(elapsed, 0.9, f"504 came after {elapsed:.2f}s, before the 1s timeout")
        self.assert_group_gone(pgid, wd)
        self.assertFalse(harness.pid_alive(background), "the background sleep survived the timeout")
        self.assert_no_zombies(wd)
        self.assert_status(wd.get("/_/health"), 200, wd)

    def test_exec_timeout_gives_504_and_kills_the_whole_process_group(self):
        self.run_timeout()

    def test_exec_timeout_kills_a_group_that_ignores_sigterm(self):
        self.run_timeout("ignore-term")


class LimitsTest(CgiTestCase):
    def saturate(self, gate: Gate, count: int, wd: harness.Watchdog) -> list:
        pool = self.executor(count + 2)
        futures = [pool.submit(wd.get, "/", timeout=30) for _ in range(count)]
        gate.wait_started(count, wd)
        return futures

    def test_max_inflight_rejects_excess_requests_with_429_at_once(self):
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir], "--max-inflight", "2", "--name", "gated")
        futures = self.saturate(gate, 2, wd)
        started = time.monotonic()
        rejected = wd.get("/", timeout=5)
        elapsed = time.monotonic() - started
        self.assert_json_error(rejected, 429, wd, function="gated")
        self.assertLess(elapsed, 2.0, f"the 429 took {elapsed:.2f}s: it must come at once")
        self.assertEqual(len(gate.started_pids()), 2, "a rejected request must not start the program")
        self.assertFalse(any(f.done() for f in futures), "the requests in flight must still be running")
        gate.release()
        for future in futures:
            response = self.result(future, wd, "a gated request after release")
            self.assert_status(response, 200, wd)
            self.assertIn(b"released", response.body)
        self.assert_status(wd.get("/"), 200, wd, "after the slots freed:")

    def test_ready_is_429_with_reason_while_at_max_inflight(self):
        """429, as OpenFaaS's of-watchdog answers it there: busy, not broken."""
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir], "--max-inflight", "2")
        self.assert_status(wd.get("/_/ready"), 200, wd, "idle:")
        futures = self.saturate(gate, 2, wd)
        ready = wd.get("/_/ready")
        self.assert_status(ready, 429, wd, "at max-inflight:")
        self.assertIn("max-inflight", ready.text, f"/_/ready 429 must say why: {ready!r}")
        self.assert_status(wd.get("/_/health"), 200, wd, "liveness while at max-inflight:")
        gate.release()
        for future in futures:
            self.assert_status(self.result(future, wd, "a gated request after release"), 200, wd)
        wait_until(lambda: wd.get("/_/ready").status == 200, 5,
                   message=lambda: f"/_/ready not 200 after the requests finished\n{wd.describe()}")

    def test_max_body_rejects_a_larger_body_with_413_and_keeps_serving(self):
        wd = self.start(["cat"], "--max-body", "1KiB")
        with wd.connection() as conn:
            self.assert_json_error(conn.request("POST", "/", b"x" * 2 * KIB), 413, wd)
            if conn.is_open:  # the 413 did not say "Connection: close": the connection must still work
                try:
                    response = conn.request("POST", "/", b"after")
                except (OSError, harness.ProtocolError) as exc:
                    self.fail(f"the 413 kept the connection alive (no Connection: close) but the next "
                              f"request on it failed: {exc!r}\n{wd.describe()}")
                self.assert_status(response, 200, wd, "on the connection that got the 413:")
                self.assertEqual(response.body, b"after")
        response = wd.post("/", b"still serving")
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body, b"still serving")

    def test_max_body_applies_to_chunked_bodies(self):
        wd = self.start(["cat"], "--max-body", "1KiB")
        response = wd.request("POST", "/", body=iter([b"x" * 512] * 4))
        self.assert_json_error(response, 413, wd)
        self.assert_status(wd.post("/", b"ok"), 200, wd)

    def test_body_of_exactly_max_body_is_accepted(self):
        wd = self.start(["cat"], "--max-body", "1KiB")
        response = wd.post("/", b"q" * KIB)
        self.assert_status(response, 200, wd)
        self.assertEqual(response.body_length, KIB)


class LargeBodyTest(CgiTestCase):
    SIZE = 100 * MIB
    OPTIONS = ("--max-body", "200MiB", "--exec-timeout", "120s")
    # Less than half the body: a watchdog that held the body or the output would exceed it, one
    # that streams grows by its buffers and a serving thread (about 10 MiB under ASan).
    GROWTH = 48 * MIB

    def start(self, *args, **kwargs) -> harness.Watchdog:
        wd = super().start(*args, **kwargs)
        self.idle_rss = harness.vm_rss_bytes(wd.pid)
        return wd

    def test_100_mib_body_streams_through_cat(self):
        wd = self.start(["cat"], *self.OPTIONS)
        sent, received = hashlib.sha256(), hashlib.sha256()

        def body():
            for chunk in harness.pattern_chunks(self.SIZE):
                sent.update(chunk)
                yield chunk

        response = wd.request("POST", "/", body=body(), headers={"Content-Length": str(self.SIZE)},
                              timeout=120, on_body=received.update)
        self.assert_status(response, 200, wd)
        self.assertTrue(response.body_sent, f"the body was not taken whole: {response.send_error!r}")
        self.assertEqual(response.body_length, self.SIZE)
        self.assertEqual(received.hexdigest(), sent.hexdigest(), "cat's output differs from the body")
        self.assertEqual(response.trailers.get("X-Fn-Exit-Code"), "0", repr(response))
        self.assert_rss_grew_less_than(wd, self.idle_rss, self.GROWTH)

    def test_100_mib_output_is_chunked_with_exit_code_trailer(self):
        wd = self.start(["head", "-c", str(self.SIZE), "/dev/zero"], *self.OPTIONS)
        nonzero = []

        def check(chunk: bytes) -> None:
            if chunk.strip(b"\0"):
                nonzero.append(len(chunk))

        response = wd.get("/", timeout=120, on_body=check)
        self.assert_status(response, 200, wd)
        self.assertTrue(response.chunked, repr(response))
        self.assertEqual(response.body_length, self.SIZE)
        self.assertFalse(nonzero, "the output had bytes that are not zero")
        self.assertEqual(response.trailers.get("X-Fn-Exit-Code"), "0", repr(response))
        self.assert_rss_grew_less_than(wd, self.idle_rss, self.GROWTH)

    def test_100_mib_chunked_upload_hashed_by_sha256sum(self):
        wd = self.start(["sha256sum"], *self.OPTIONS)
        sent = hashlib.sha256()

        def body():
            for chunk in harness.pattern_chunks(self.SIZE, chunk=256 * KIB):
                sent.update(chunk)
                yield chunk

        response = wd.request("POST", "/", body=body(), timeout=120)
        self.assert_status(response, 200, wd)
        self.assertEqual(response.text.split()[0] if response.text.split() else "", sent.hexdigest())
        self.assert_rss_grew_less_than(wd, self.idle_rss, self.GROWTH)


class ExecFailureTest(CgiTestCase):
    def assert_prompt_502(self, wd: harness.Watchdog, reasons: tuple, function: str) -> None:
        started = time.monotonic()
        response = wd.get("/", timeout=10, headers={"X-Fn-Request-Id": "exec-fail-1"})
        elapsed = time.monotonic() - started
        data = self.assert_json_error(response, 502, wd, function=function)
        self.assertEqual(data["request_id"], "exec-fail-1")
        self.assertLess(elapsed, 5.0, f"the 502 took {elapsed:.2f}s")
        self.assertTrue(any(r in data["error"].lower() for r in reasons),
                        f"the error should say why ({' / '.join(reasons)}): {data['error']!r}")
        self.assert_status(wd.get("/_/health"), 200, wd, "after a failed exec:")
        self.assert_no_zombies(wd)

    def test_missing_program_gives_502_json_promptly(self):
        wd = self.start(["/nonexistent/dir/my-func"])
        self.assert_prompt_502(wd, ("no such file", "not found", "enoent", "does not exist", "missing"),
                               function="my-func")

    def test_program_without_exec_bit_gives_502_json_promptly(self):
        path = os.path.join(self.make_tempdir(), "not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho should not run\n")
        os.chmod(path, 0o644)
        wd = self.start([path], "--name", "noexec")
        self.assert_prompt_502(wd, ("permission", "eacces", "not executable", "denied"), function="noexec")


class EndpointsTest(CgiTestCase):
    METRIC = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")

    def samples(self, wd: harness.Watchdog) -> list:
        response = wd.get("/_/metrics")
        self.assert_status(response, 200, wd, "/_/metrics:")
        result = []
        for line in response.text.splitlines():
            match = self.METRIC.match(line)
            if match and not line.startswith("#"):
                result.append((match.group(1), match.group(2) or "", float(match.group(3))))
        self.assertTrue(result, f"no samples in /_/metrics: {response.text[:500]!r}")
        return result

    def test_health_is_200(self):
        wd = self.start(["echo", "x"])
        self.assert_status(wd.get("/_/health"), 200, wd)

    def test_ready_is_200_when_idle(self):
        wd = self.start(["echo", "x"])
        self.assert_status(wd.get("/_/ready"), 200, wd)

    def test_reserved_endpoints_do_not_run_the_program(self):
        tmp = self.make_tempdir()
        marker = os.path.join(tmp, "ran")
        wd = self.start(["sh", "-c", f'echo run >> "{marker}"'])
        for path in ("/_/health", "/_/ready", "/_/metrics"):
            wd.get(path)
        self.assertFalse(os.path.exists(marker), "a /_/ endpoint ran the function")

    def test_metrics_count_requests_by_code_and_method(self):
        wd = self.start([fixture("exit_code.sh")])
        before = {(n, l): v for n, l, v in self.samples(wd)}
        for _ in range(3):
            self.assert_status(wd.get("/"), 200, wd)
        self.assert_status(wd.get("/?code=1"), 500, wd)
        after = self.samples(wd)
        names = {n for n, _, _ in after}
        self.assertFalse([n for n in names if not n.startswith("fastfn_") and n not in PROCESS_METRICS],
                         f"metric names must start with fastfn_ (or be a process collector's): {sorted(names)}")
        self.assertEqual(PROCESS_METRICS - names, set(), "the process collector's series, as every client exports")
        self.assertIn("fastfn_build_info", names)
        grown = [(n, l, v) for n, l, v in after
                 if 'code="200"' in l and 'method="GET"' in l and v - before.get((n, l), 0) >= 3]
        self.assertTrue(grown, f"no code=\"200\",method=\"GET\" sample grew by 3 after 3 requests: {after}")
        self.assertTrue([s for s in after if 'code="500"' in s[1] and s[2] >= 1],
                        f"no code=\"500\" sample after a 500: {after}")

    def test_metrics_inflight_gauge_counts_running_requests(self):
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir])

        def inflight() -> list:
            return [(n, l, v) for n, l, v in self.samples(wd) if re.search(r"in_?flight", n)]

        idle = inflight()
        self.assertTrue(idle, "no in-flight gauge (a fastfn_*inflight* / *in_flight* metric)")
        self.assertTrue(all(v == 0 for _, _, v in idle), f"in-flight not 0 when idle: {idle}")
        future = self.executor(1).submit(wd.get, "/", timeout=30)
        gate.wait_started(1, wd)
        busy = inflight()
        self.assertTrue(any(v == 1 for _, _, v in busy), f"in-flight not 1 with one request running: {busy}")
        gate.release()
        self.assert_status(self.result(future, wd, "the gated request"), 200, wd)
        wait_until(lambda: all(v == 0 for _, _, v in inflight()), 5,
                   message=lambda: f"in-flight not back to 0: {inflight()}")


class ListenTest(CgiTestCase):
    def test_serves_over_tcp_host_port(self):
        port = harness.free_port()
        wd = self.start(["echo", "tcp"], listen=f"127.0.0.1:{port}")
        self.assertEqual(wd.get("/").body, b"tcp\n")

    def test_serves_over_tcp_prefixed_address(self):
        port = harness.free_port()
        wd = self.start(["echo", "tcp-prefixed"], listen=f"tcp:127.0.0.1:{port}")
        self.assertEqual(wd.get("/").body, b"tcp-prefixed\n")

    def test_unix_socket_has_mode_0600(self):
        wd = self.start(["echo", "x"])
        mode = os.stat(wd.address.path).st_mode
        self.assertTrue(stat.S_ISSOCK(mode), "the listen path is not a socket")
        self.assertEqual(stat.S_IMODE(mode), 0o600, f"socket mode is {oct(stat.S_IMODE(mode))}")

    def test_unix_socket_is_removed_after_sigterm(self):
        wd = self.start(["echo", "x"])
        self.assertEqual(wd.stop(signal.SIGTERM, timeout=10), 0, wd.describe())
        self.assertFalse(os.path.exists(wd.address.path), "the unix socket is left after exit")

    def test_sigint_exits_0_and_removes_the_socket(self):
        wd = self.start(["echo", "x"])
        self.assertEqual(wd.stop(signal.SIGINT, timeout=10), 0, wd.describe())
        self.assertFalse(os.path.exists(wd.address.path), "the unix socket is left after exit")

    def test_stale_unix_socket_file_is_replaced(self):
        path = os.path.join(self.make_tempdir(), "stale.sock")
        with socket.socket(socket.AF_UNIX) as dead:
            dead.bind(path)  # closed without unlink: a file nobody listens on
        wd = self.start(["echo", "fresh"], listen=f"unix:{path}")
        self.assertEqual(wd.get("/").body, b"fresh\n")


class ConnectionTest(CgiTestCase):
    def test_keep_alive_serves_several_requests_on_one_connection(self):
        wd = self.start([fixture("output_n.sh")])
        with wd.connection() as conn:
            for method, target, status, length in (("GET", "/?n=10", 200, 10),
                                                   ("POST", "/?n=5", 200, 5),
                                                   ("GET", f"/?n={200 * KIB}", 200, 200 * KIB),
                                                   ("GET", "/?n=3&exit=2", 500, 3),
                                                   ("GET", "/?n=1", 200, 1)):
                response = conn.request(method, target, body=b"body" if method == "POST" else None)
                self.assert_status(response, status, wd, f"{method} {target} on a kept-alive connection:")
                self.assertEqual(response.body_length, length)
                self.assertTrue(response.keep_alive, f"the server closed the connection: {response!r}")
            self.assertEqual(conn.connects, 1)

    def test_malformed_requests_get_an_error_and_do_not_run_the_program(self):
        marker = os.path.join(self.make_tempdir(), "ran")
        wd = self.start(["sh", "-c", f'echo run >> "{marker}"; echo ran'])
        cases = {
            "four-token request line": b"THIS IS NOT HTTP\r\n\r\n",
            "bad version": b"GET / FOO/1.1\r\nHost: x\r\n\r\n",
            "header line without colon": b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
            "non-numeric Content-Length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            "conflicting Content-Lengths":
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
            # The body is streamed, so the program may already run when a bad chunk arrives: for this
            # case only the error status is required, not that the program never started.
            "bad chunk size":
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                if os.path.exists(marker):
                    os.unlink(marker)
                reply = harness.raw_exchange(wd.address, data)
                try:
                    responses = harness.parse_responses(reply)
                except harness.ProtocolError as exc:
                    self.fail(f"unparseable reply {reply[:200]!r}: {exc}")
                self.assertTrue(responses, f"no response to a malformed request\n{wd.describe()}")
                self.assertTrue(400 <= responses[0].status < 600 and b"ran" not in responses[0].body,
                                f"a malformed request must get an error, got {responses[0]!r}")
                if name != "bad chunk size":
                    self.assertFalse(os.path.exists(marker), "a malformed request ran the function")
        self.assert_status(wd.get("/"), 200, wd, "after malformed requests:")

    def test_write_timeout_drops_a_client_that_does_not_read(self):
        wd = self.start(["head", "-c", str(100 * MIB), "/dev/zero"], "--write-timeout", "1s",
                        "--exec-timeout", "60s")
        with wd.connection() as stuck:
            stuck.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads the 100 MiB
            wait_until(lambda: harness.children(wd.pid), 5, message=lambda: wd.describe())
            wait_until(lambda: not [p for p in harness.children(wd.pid) if harness.pid_alive(p)], 10,
                       message=lambda: f"the program still runs for a client that stopped reading, "
                                       f"with --write-timeout 1s\n{wd.describe()}")
            self.assert_no_zombies(wd)
            self.assert_status(wd.get("/_/health"), 200, wd)

    def test_read_timeout_closes_a_stalled_client(self):
        wd = self.start(["echo", "x"], "--read-timeout", "1s")
        with wd.connection() as stalled:
            stalled.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
            self.assert_status(wd.get("/"), 200, wd, "while another client stalls:")
            started = time.monotonic()
            self.assertTrue(stalled.wait_closed_by_peer(timeout=8),
                            f"a stalled client is not closed with --read-timeout 1s\n{wd.describe()}")
            self.assertLess(time.monotonic() - started, 6)


class ShutdownTest(CgiTestCase):
    def test_sigterm_drains_the_in_flight_request_then_exits_0(self):
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir], "--shutdown-timeout", "10s")
        future = self.executor(1).submit(wd.get, "/", timeout=30)
        gate.wait_started(1, wd)
        wd.send_signal(signal.SIGTERM)
        wait_until(lambda: not wd.address.accepts_connections(0.5), 5,
                   message=lambda: f"new connections still accepted after SIGTERM\n{wd.describe()}")
        self.assertFalse(future.done(), f"the in-flight request ended early: {future}")
        self.assertTrue(wd.is_running(), f"exited before its in-flight request finished\n{wd.describe()}")
        gate.release()
        response = self.result(future, wd, "the request in flight at SIGTERM")
        self.assert_status(response, 200, wd, "the drained request:")
        self.assertIn(b"released", response.body)
        self.assertEqual(wd.wait(10), 0, wd.describe())
        self.assertFalse(os.path.exists(wd.address.path), "the unix socket is left after exit")

    def test_healthcheck_interval_serves_while_health_says_503(self):
        """OpenFaaS's healthcheck_interval: after SIGTERM, health turns 503 (and the lock file goes)
        while new connections are still served, so a load balancer can stop routing first."""
        tmp = self.make_tempdir()
        wd = self.start(["echo", "still-served"], env={"healthcheck_interval": "10m", "TMPDIR": tmp})
        wd.send_signal(signal.SIGTERM)
        wait_until(lambda: wd.get("/_/health").status == 503, 10,
                   message=lambda: f"/_/health not 503 after SIGTERM\n{wd.describe()}")
        self.assertFalse(os.path.exists(os.path.join(tmp, ".lock")), "the lock file outlived SIGTERM")
        response = wd.get("/")  # a new connection, within the interval
        self.assert_status(response, 200, wd, "during healthcheck_interval:")
        self.assertEqual(response.body, b"still-served\n")
        self.assertTrue(wd.is_running(), wd.describe())

    def test_shutdown_timeout_kills_an_unfinished_request_and_exits_0(self):
        gate = Gate(self)
        wd = self.start([fixture("gate.sh"), gate.dir], "--shutdown-timeout", "1s", "--exec-timeout", "60s")
        future = self.executor(1).submit(wd.get, "/", timeout=30)
        pid = gate.wait_started(1, wd)[0]
        pgid = proc_stat(pid).pgrp
        self.addCleanup(harness.kill_group, pgid)
        started = time.monotonic()
        wd.send_signal(signal.SIGTERM)
        code = wd.wait(8)
        elapsed = time.monotonic() - started
        self.assertEqual(code, 0, wd.describe())
        self.assertLess(elapsed, 4.0, f"exit took {elapsed:.2f}s with --shutdown-timeout 1s")
        self.assertGreater(elapsed, 0.8, f"exited after {elapsed:.2f}s without draining for 1s")
        self.assert_group_gone(pgid, wd)
        try:  # the client got an answer or a closed connection, not a hang
            future.exception(timeout=10)
        except concurrent.futures.TimeoutError:
            self.fail("the client of the killed request still waits after the watchdog exited")


class HygieneTest(CgiTestCase):
    def test_no_zombies_and_no_fd_growth_after_1000_requests(self):
        wd = self.start(["echo", "ok"])
        with wd.connection(auto_reconnect=True) as conn:
            for _ in range(10):
                self.assert_status(conn.request("GET", "/"), 200, wd)
            baseline = harness.fd_count(wd.pid)
            for i in range(990):
                response = conn.request("GET", f"/{i}")
                if response.status != 200:
                    self.fail(f"request {i + 10} failed: {response!r}\n{wd.describe()}")
            self.assert_no_zombies(wd)
            wait_until(lambda: not harness.children(wd.pid), 5,
                       message=lambda: f"children left: {harness.children(wd.pid)}")
            wait_until(lambda: harness.fd_count(wd.pid) <= baseline + 2, 5,
                       message=lambda: f"fds grew from {baseline} to {harness.fd_count(wd.pid)}: "
                                       f"{harness.fd_targets(wd.pid)}")

    def test_program_sees_only_stdin_stdout_stderr(self):
        for listen in ("unix", "tcp"):
            with self.subTest(listen=listen):
                wd = self.start([fixture("list_fds.py")], listen=listen)
                with wd.connection() as conn:
                    conn.request("GET", "/warmup")  # a second connection and a kept-alive one exist
                    for body in (None, b"with a body"):
                        response = conn.request("POST" if body else "GET", "/", body=body)
                        self.assert_status(response, 200, wd)
                        fds = json.loads(response.body)
                        self.assertEqual(sorted(int(fd) for fd in fds), [0, 1, 2],
                                         f"fds leaked into the program: {fds}")

    def test_as_pid_1_it_reaps_orphans_its_functions_leave(self):
        # A container's entrypoint is PID 1: a process a function left behind (here one that
        # escaped its process group with setsid) is reparented to it, and a zombie forever unless
        # the watchdog reaps it. Its own children it reaps as always.
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare(1) for a pid namespace")
        marker = f"fastfn-orphan-{os.getpid()}"
        ready = os.path.join(self.make_tempdir(), "ready")
        # It answers once the orphan has its own session (or the group kill at exit would get it),
        # and the orphan lets go of stdout (or the response would wait for it).
        wd = harness.Watchdog(["sh", "-c", f"setsid sh -c 'touch {ready}; sleep 0.5; true' {marker} </dev/null >/dev/null 2>&1 & "
                                           f"while [ ! -e {ready} ]; do sleep 0.01; done; echo started"])
        wd.argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *wd.argv]
        self._watchdogs.append(wd)
        self.addCleanup(wd.close)
        wd.start()
        self.assert_status(wd.get("/"), 200, wd)
        def find_orphan():
            for name in filter(str.isdigit, os.listdir("/proc")):
                try:
                    args = open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
                    if args[:1] == [b"sh"] and marker.encode() in args[-2:]:
                        return int(name)
                except OSError:
                    pass
            return None
        # What the program left behind ends with its request (issue 16, item 3) and is reaped:
        # neither the orphan nor a zombie of it may be left.
        wait_until(lambda: find_orphan() is None and harness.zombie_count(wd.pid) == 0, 10,
                   message=lambda: f"orphan {find_orphan()} left, zombies "
                                   f"{harness.zombie_descendants(wd.pid)}\n{wd.describe()}")
        self.assert_status(wd.get("/"), 200, wd, "it still serves:")


if __name__ == "__main__":
    unittest.main(verbosity=2)
