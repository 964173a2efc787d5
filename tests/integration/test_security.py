#!/usr/bin/env python3
"""Security defaults (issue 6, "Hardening"), each shown by a test that would fail without it:

- fastfn-watchdog and fastfn-gateway bind loopback unless told otherwise (the listening sockets in
  /proc/net/tcp{,6}); the gateway's watchdogs listen on no tcp port at all.
- Unix sockets are 0600 and their folder 0700 whatever the umask; the gateway's default socket-base-dir
  ($XDG_RUNTIME_DIR/fastfn) is 0700, and an existing socket-base-dir that others may write to is not
  used as it is.
- Header names outside [A-Za-z0-9-] never become environment variables, no spelling of `Proxy`
  becomes HTTP_PROXY (httpoxy), and a `Method`/`Path`/`Query` header does not shadow Http_Method,
  Http_Path, Http_Query (watchdog alone and through the gateway).
- No shell between a request and a process: shell metacharacters in the path and the query reach the
  program as data, never as a command, and never as argv (not even a query without `=`, which RFC 3875
  4.4 would allow to become the command line).
- The environment a function is given (per-function `env` in fn.config.json, the watchdog's own)
  cannot override the CGI meta-variables, nor fake a request header.

What test_watchdog_cgi.py and test_gateway.py already show is not repeated here (the watchdog's 0600
socket with the default umask, the gateway's 0700/0600 with FN_SOCKET_BASE_DIR, X_Under and X.Dot,
a plain `Proxy` header). Limits on header size, header count, body size and time are test_hostile.py's.
Run alone: FASTFN_WATCHDOG=... FASTFN_GATEWAY=... python3 tests/integration/test_security.py
"""

import sys

sys.dont_write_bytecode = True

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Address  # noqa: E402
from gateway_support import Gateway, GatewayTestCase, check_binaries  # noqa: E402

ECHO = harness.FIXTURES_DIR / "hostile" / "echo.sh"
ENV_JSON = harness.CGI_FIXTURES_DIR / "env_json.py"
DEFAULT_PORT = 8080

# Header names that are valid HTTP tokens but hold a character outside [A-Za-z0-9-].
ODD_HEADER_NAMES = ["X-Weird.Name", "X_Under", "X!Bang", "X#Hash", "X$Dollar", "X%Pct", "X&Amp", "X'Quote",
                    "X*Star", "X+Plus", "X^Caret", "X`Tick", "X|Pipe", "X~Tilde"]

# Values a per-function env or the watchdog's environment might try to force on a CGI program.
FORCED_ENV = {
    "REQUEST_METHOD": "EVIL", "PATH_INFO": "/evil", "QUERY_STRING": "evil=1", "SCRIPT_NAME": "/evil",
    "CONTENT_LENGTH": "999", "CONTENT_TYPE": "evil/type", "REMOTE_ADDR": "203.0.113.66", "REMOTE_USER": "admin",
    "AUTH_TYPE": "Basic", "SERVER_PROTOCOL": "EVIL/9", "GATEWAY_INTERFACE": "EVIL/1", "REQUEST_URI": "/evil",
    "SERVER_NAME": "evil.example", "HTTP_HOST": "evil.example", "Http_Method": "EVIL", "Http_Path": "/evil",
    "Http_Query": "evil=1", "X_FN_REQUEST_ID": "evil-request-id", "HTTP_PROXY": "http://203.0.113.66:3128",
}
# Looks like a request header the request below does not send.
FAKED_HEADERS = {"HTTP_X_AUTH_USER": "admin", "Http_X_Auth_User": "admin", "HTTP_AUTHORIZATION": "Bearer evil"}


def setUpModule():
    check_binaries()
    for path in (ECHO, ENV_JSON):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"fixture {path} lost its exec bit (chmod +x it)")


# --------------------------------------------------------------------------------------------------
# /proc/net/tcp


def _decode_address(text: str) -> str:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # four little-endian 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return f"{ip}:{int(port, 16)}"


def listening_tcp(pid: int) -> list[str]:
    """The local addresses of the tcp sockets `pid` listens on."""
    inodes = {target[len("socket:["):-1] for target in harness.fd_targets(pid).values()
              if target.startswith("socket:[")}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    found.append(_decode_address(fields[1]))
    return found


def is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0]
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


def port_in_use(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------------------------------


class WatchdogSecurityTest(harness.WatchdogTestCase):
    def env_of(self, wd: harness.Watchdog, response: harness.Response) -> dict:
        self.assertEqual(response.status, 200, f"{response!r}\n{wd.describe()}")
        return json.loads(response.body)

    def test_binds_loopback_by_default(self):
        if port_in_use(DEFAULT_PORT):
            self.skipTest(f"port {DEFAULT_PORT} (the default) is in use on this machine")
        wd = harness.Watchdog(["echo", "default"], ["--format", "cgi"], listen=None,
                              address=Address.tcp(DEFAULT_PORT), wait_healthy=False)
        self._watchdogs.append(wd)
        self.addCleanup(wd.close)
        wd.start()
        try:
            wd.wait_for_health(15)
        except harness.WatchdogExited:
            if "in use" in wd.log():
                self.skipTest(f"port {DEFAULT_PORT} was taken meanwhile")
            raise
        listening = listening_tcp(wd.pid)
        self.assertTrue(listening, f"no listening tcp socket found for {wd.pid}\n{wd.describe()}")
        self.assertEqual([a for a in listening if not is_loopback(a)], [],
                         f"listens beyond loopback by default: {listening}\n{wd.describe()}")
        self.assertIn(f"127.0.0.1:{DEFAULT_PORT}", listening)
        self.assertRegex(wd.log(), rf"listening address=(tcp:)?127\.0\.0\.1:{DEFAULT_PORT}")

    def test_unix_socket_0600_and_new_folder_0700_even_with_umask_0(self):
        folder = os.path.join(self.make_tempdir(), "private")
        path = os.path.join(folder, "wd.sock")
        with umask(0):
            wd = self.start_watchdog(["echo", "x"], ["--format", "cgi"], listen=f"unix:{path}")
        self.assertEqual(mode_of(folder), 0o700, f"the socket's new folder is {oct(mode_of(folder))} under umask 0")
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        self.assertEqual(mode_of(path), 0o600, f"the socket is {oct(mode_of(path))} under umask 0")
        self.assertEqual(wd.get("/").status, 200)

    def test_odd_header_names_and_every_proxy_spelling_stay_out_of_the_environment(self):
        wd = self.start_watchdog([str(ENV_JSON)], ["--format", "cgi"],
                                 env={"HTTP_PROXY": None, "http_proxy": None})
        headers = [(name, f"odd-{i}") for i, name in enumerate(ODD_HEADER_NAMES)]
        headers += [("Proxy", "http://proxy-a:1"), ("proxy", "http://proxy-b:1"), ("PROXY", "http://proxy-c:1"),
                    ("X-Safe", "safe-value")]
        env = self.env_of(wd, wd.get("/", headers=headers))
        self.assertEqual(env.get("HTTP_X_SAFE"), "safe-value")
        leaked = {k: v for k, v in env.items() if v.startswith("odd-") or "proxy-" in v}
        self.assertEqual(leaked, {}, "header names outside [A-Za-z0-9-] or Proxy reached the environment")
        self.assertFalse({k for k in env if k.upper() == "HTTP_PROXY"}, "httpoxy")

    def test_method_path_query_headers_do_not_shadow_the_openfaas_variables(self):
        wd = self.start_watchdog([str(ENV_JSON)], ["--format", "cgi"])
        env = self.env_of(wd, wd.request("POST", "/real/path?real=1", body=b"b",
                                         headers={"Method": "EVIL", "Path": "/evil", "Query": "evil=1"}))
        self.assertEqual((env.get("Http_Method"), env.get("Http_Path"), env.get("Http_Query")),
                         ("POST", "/real/path", "real=1"), "a request header shadowed the request's own values")

    def test_shell_metacharacters_in_the_request_never_reach_a_shell_or_argv(self):
        tmp = self.make_tempdir()
        mark = os.path.join(tmp, "pwned")
        wd = self.start_watchdog([str(ECHO), "fixed-arg"], ["--format", "cgi"])
        injections = [
            f"/;touch${{IFS}}{mark};", f"/$(touch${{IFS}}{mark})", f"/`touch${{IFS}}{mark}`",
            f"/|touch${{IFS}}{mark}", f"/&&touch${{IFS}}{mark}", f"/'\"$(touch${{IFS}}{mark})\"'",
            f"/a>{mark}", f"/a<{mark}", f"/$(touch%20{mark})",
            f"/q?$(touch${{IFS}}{mark})", f"/q?x=`touch${{IFS}}{mark}`",
            "/q?-rf+/",     # a query without '=' may be a command line in RFC 3875 4.4: not here
            "/q?--help+--version",
        ]
        with wd.connection() as conn:
            for target in injections:
                with self.subTest(target=target):
                    conn.send_raw(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    response = conn.read_response()
                    self.assertEqual(response.status, 200, f"{response!r}\n{wd.describe()}")
                    fields = dict(line.split("=", 1) for line in response.text.splitlines() if "=" in line)
                    self.assertEqual((fields.get("argc"), fields.get("args")), ("1", "fixed-arg"),
                                     f"request data reached argv: {response.text!r}")
                    path, _, query = target.partition("?")
                    self.assertEqual(fields.get("query"), query, "the query must arrive verbatim, as data")
                    expected_path = path.replace("%20", " ")
                    self.assertEqual(fields.get("path"), expected_path, "the path must arrive as data")
        self.assertFalse(os.path.exists(mark), "a shell ran a command from the request")

    def test_watchdog_environment_cannot_override_cgi_meta_variables(self):
        wd = self.start_watchdog([str(ENV_JSON)], ["--format", "cgi"], env=dict(FORCED_ENV), listen="tcp")
        env = self.env_of(wd, wd.get("/real/path?real=1", headers={"Host": "real.example",
                                                                   "X-Fn-Request-Id": "real-id"}))
        expected = {"REQUEST_METHOD": "GET", "PATH_INFO": "/real/path", "QUERY_STRING": "real=1",
                    "SCRIPT_NAME": "", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
                    "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_URI": "/real/path?real=1", "SERVER_NAME": "real.example",
                    "HTTP_HOST": "real.example", "Http_Method": "GET", "Http_Path": "/real/path",
                    "Http_Query": "real=1", "X_FN_REQUEST_ID": "real-id"}
        self.assertEqual({k: env.get(k) for k in expected}, expected, f"the environment overrode the request\n{wd.describe()}")
        for name in ("CONTENT_LENGTH", "CONTENT_TYPE", "REMOTE_USER", "AUTH_TYPE", "HTTP_PROXY"):
            self.assertNotIn(name, env, f"{name} from the watchdog's environment reached a request that has none")

    def test_watchdog_environment_cannot_fake_request_headers(self):
        """HTTP_* variables are the request's headers (RFC 3875 4.1.18): one in the watchdog's own
        environment must not reach a program whose request did not send that header, or it reads as
        a header the client sent (an authenticated user, a token)."""
        wd = self.start_watchdog([str(ENV_JSON)], ["--format", "cgi"], env=dict(FAKED_HEADERS))
        env = self.env_of(wd, wd.get("/"))
        faked = {k: env[k] for k in FAKED_HEADERS if k in env}
        self.assertEqual(faked, {}, "environment entries posing as request headers reached the program")


class GatewaySecurityTest(GatewayTestCase):
    def env_of(self, gw: Gateway, response: harness.Response) -> dict:
        self.assert_status(response, 200, gw)
        return json.loads(response.body)

    def test_binds_loopback_by_default_and_its_watchdogs_listen_on_no_tcp_port(self):
        if port_in_use(DEFAULT_PORT):
            self.skipTest(f"port {DEFAULT_PORT} (the default) is in use on this machine")
        fns = self.functions()
        fns.add("echo", {"handler.sh": ECHO}, {"daemons": 2})
        gw = Gateway(fns, listen=None, port=DEFAULT_PORT, wait_for=["echo"])
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        try:
            gw.start()
        except AssertionError:
            if "in use" in gw.log():
                self.skipTest(f"port {DEFAULT_PORT} was taken meanwhile")
            raise
        listening = listening_tcp(gw.pid)
        self.assertEqual([a for a in listening if not is_loopback(a)], [],
                         f"listens beyond loopback by default: {listening}\n{gw.describe()}")
        self.assertIn(f"127.0.0.1:{DEFAULT_PORT}", listening)
        for pid in gw.watchdog_pids("echo"):
            self.assertEqual(listening_tcp(pid), [], f"watchdog {pid} listens on tcp")

    def test_default_socket_dir_is_0700_with_0600_sockets_even_with_umask_0(self):
        xdg = self.make_tempdir("fastfn-xdg-")
        os.chmod(xdg, 0o755)
        fns = self.functions()
        fns.add("echo", {"handler.sh": ECHO}, {"daemons": 2})
        gw = Gateway(fns, env={"FN_SOCKET_BASE_DIR": None, "XDG_RUNTIME_DIR": xdg}, wait_for=["echo"])
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        with umask(0):
            gw.start()
        base = os.path.join(xdg, "fastfn")
        self.assertEqual(mode_of(base), 0o700, f"{base} is {oct(mode_of(base))}")
        socks = [str(s.get("address", ""))[len("unix:"):] for s in gw.sockets("echo")]
        self.assertEqual(len(socks), 2, socks)
        for path in socks:
            self.assertEqual(os.path.dirname(path), base, f"{path} not in the default socket dir")
            self.assertEqual(mode_of(path), 0o600, f"{path} is {oct(mode_of(path))} under umask 0")

    def test_existing_socket_dir_open_to_others_is_not_used_as_it_is(self):
        """A socket-base-dir others may write to (a stale /tmp/fastfn-$UID made 0777, say) lets them
        replace a watchdog's socket with their own and receive the requests routed to it. The gateway
        must make it private (0700) or refuse to start with a clear error."""
        base = os.path.join(self.make_tempdir(), "sockets")
        os.mkdir(base)
        os.chmod(base, 0o777)
        fns = self.functions()
        fns.add("echo", {"handler.sh": ECHO})
        gw = Gateway(fns, env={"FN_SOCKET_BASE_DIR": base}, wait_for=["echo"])
        self._gateways.append(gw)
        self.addCleanup(gw.close)
        try:
            gw.start()
        except AssertionError:
            code = gw.poll()
            self.assertEqual(code, 2, f"refusing is fine, but with exit code 2 and a line: {gw.describe()}")
            self.assertIn(base, gw.log())
            return
        self.assertEqual(mode_of(base), 0o700, f"the gateway serves from a socket dir that is {oct(mode_of(base))}"
                                               f"\n{gw.describe()}")

    def test_odd_header_names_proxy_and_shadowing_headers_through_the_gateway(self):
        fns = self.functions()
        fns.add("env", {"handler.py": ENV_JSON})
        gw = self.start_gateway(fns, env={"HTTP_PROXY": None, "http_proxy": None}, wait_for=["env"])
        headers = [(name, f"odd-{i}") for i, name in enumerate(ODD_HEADER_NAMES)]
        headers += [("Proxy", "http://proxy-a:1"), ("proxy", "http://proxy-b:1"), ("X-Safe", "safe-value"),
                    ("Method", "EVIL"), ("Path", "/evil"), ("Query", "evil=1")]
        env = self.env_of(gw, gw.request("POST", "/env/sub?real=1", body=b"b", headers=headers))
        self.assertEqual(env.get("HTTP_X_SAFE"), "safe-value", "the gateway must pass ordinary headers on")
        leaked = {k: v for k, v in env.items() if v.startswith("odd-") or "proxy-" in v}
        self.assertEqual(leaked, {}, "header names outside [A-Za-z0-9-] or Proxy reached the environment")
        self.assertFalse({k for k in env if k.upper() == "HTTP_PROXY"}, "httpoxy")
        self.assertEqual((env.get("Http_Method"), env.get("Http_Path"), env.get("Http_Query")),
                         ("POST", "/env/sub", "real=1"))

    def test_request_values_never_become_argv_of_a_command_function(self):
        tmp = self.make_tempdir()
        mark = os.path.join(tmp, "pwned")
        fns = self.functions()
        fns.add("tool", {"echo.sh": ECHO}, {"command": ["sh", "echo.sh", "fixed-arg"]})
        gw = self.start_gateway(fns, wait_for=["tool"])
        for target in (f"/tool/$(touch${{IFS}}{mark})", f"/tool/;touch${{IFS}}{mark}", "/tool?-rf+/",
                       f"/tool?`touch${{IFS}}{mark}`"):
            with self.subTest(target=target), gw.connection() as conn:
                conn.send_raw(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                response = conn.read_response()
                self.assert_status(response, 200, gw)
                self.assertIn("argc=1\nargs=fixed-arg\n", response.text, f"request data reached argv: {response.text!r}")
        self.assertFalse(os.path.exists(mark), "a shell ran a command from the request")

    def test_function_env_cannot_override_cgi_meta_variables(self):
        fns = self.functions()
        fns.add("env", {"handler.py": ENV_JSON}, {"env": dict(FORCED_ENV)})
        gw = self.start_gateway(fns)
        health = gw.health()
        if "env" not in health.get("functions", {}):
            # Refusing such an env is fine too, if the log says which file and key.
            self.assertRegex(gw.log(), r"fn\.config\.json.*env|env.*fn\.config\.json", gw.describe())
            return
        gw.wait_functions_up(["env"])
        env = self.env_of(gw, gw.get("/env/real/path?real=1", headers={"Host": "real.example",
                                                                       "X-Fn-Request-Id": "real-id"}))
        expected = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/env", "PATH_INFO": "/real/path",
                    "QUERY_STRING": "real=1", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
                    "REQUEST_URI": "/env/real/path?real=1", "HTTP_HOST": "real.example", "Http_Method": "GET",
                    "Http_Path": "/env/real/path", "Http_Query": "real=1", "X_FN_REQUEST_ID": "real-id"}
        self.assertEqual({k: env.get(k) for k in expected}, expected,
                         f"the function's env overrode the request\n{gw.describe()}")
        self.assertNotEqual(env.get("REMOTE_ADDR"), FORCED_ENV["REMOTE_ADDR"])
        self.assertNotEqual(env.get("SERVER_NAME"), FORCED_ENV["SERVER_NAME"])
        for name in ("CONTENT_LENGTH", "CONTENT_TYPE", "REMOTE_USER", "AUTH_TYPE", "HTTP_PROXY"):
            self.assertNotIn(name, env, f"{name} from the function's env reached a request that has none")

    def test_function_env_cannot_fake_request_headers(self):
        fns = self.functions()
        fns.add("env", {"handler.py": ENV_JSON}, {"env": dict(FAKED_HEADERS)})
        gw = self.start_gateway(fns)
        if "env" not in gw.health().get("functions", {}):
            self.assertRegex(gw.log(), r"fn\.config\.json", gw.describe())
            return
        gw.wait_functions_up(["env"])
        env = self.env_of(gw, gw.get("/env"))
        faked = {k: env[k] for k in FAKED_HEADERS if k in env}
        self.assertEqual(faked, {}, "a function's env posing as request headers reached the program")


if __name__ == "__main__":
    unittest.main(verbosity=2)
