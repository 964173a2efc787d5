#!/usr/bin/env python3
"""Integration tests of issue 14's gateway items: nothing of one function reaches another.

- Item 10: socket file names are injective (functions/api/users, functions/api_users and
  functions/api.users once shared one socket path: the last watchdog unlinked the others' live
  sockets, answered their routes and left them listening on nothing), and a live socket is never
  unlinked.
- Item 11: the gateway configures its watchdogs with flags only. A function's "env" (or the
  gateway's own environment) holding variables named like watchdog options (max_body, log_format,
  content_type, combine_output, cgi_headers, ...) changes nothing of the watchdog, yet the handler
  sees them; fn.config.json's "cgi_headers": true is the way to turn CGI headers on.

Each test starts the real fastfn-gateway (FASTFN_GATEWAY) with the real fastfn-watchdog (FASTFN_WATCHDOG)
on a temp functions dir and checks from outside: HTTP answers, /_fn/health, /proc and the log.
Run alone: python3 tests/integration/test_isolation_gateway.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from gateway_support import (FASTFN_HTTP_PY, GatewayTestCase, check_binaries, cmdline,  # noqa: E402
                             fixture, function_entry, parse_kv, sockets_of)

MAX_SUN_PATH = 107  # sizeof(sockaddr_un.sun_path) less the NUL


def setUpModule():
    check_binaries()
    for name in ("whoami_cgi.sh", "option_env.sh", "cgi_status.sh"):
        if not os.access(fixture(name), os.X_OK):
            raise RuntimeError(f"fixture {fixture(name)} lost its exec bit (chmod +x it)")


def unix_path(sock: dict) -> str:
    address = str(sock.get("address", ""))
    assert address.startswith("unix:"), f"not a unix socket address: {sock!r}"
    return address[len("unix:"):]


def listening_unix_sockets() -> dict[str, list[int]]:
    """/proc/net/unix: bound path -> inodes of the sockets listening on it. A socket keeps its path
    here after its file was unlinked, so two entries for one path mean one of them is unreachable."""
    found: dict[str, list[int]] = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) < 8:
                continue
            flags, inode, path = int(fields[3], 16), int(fields[6]), fields[7]
            if flags & 0x10000:  # __SO_ACCEPTCON: listening
                found.setdefault(path, []).append(inode)
    return found


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets `pid` holds open."""
    inodes = set()
    for target in harness.fd_targets(pid).values():
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def listen_path(pid: int) -> str:
    """The unix socket path a watchdog was started on (its --listen unix:PATH argument)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return ""
    for i, arg in enumerate(args[:-1]):
        if arg == "--listen" and args[i + 1].startswith("unix:"):
            return args[i + 1][len("unix:"):]
    return ""


class IsolationGatewayTest(GatewayTestCase):

    def watchdogs(self, gw) -> list[int]:
        """The live fastfn-watchdog children of the gateway."""
        return [pid for pid in harness.children(gw.pid)
                if harness.pid_alive(pid) and listen_path(pid)]

    def check_served_by_own_handler(self, gw, fns, names, rounds=4) -> None:
        for name in names:
            want = os.path.realpath(fns.path(name))
            for _ in range(rounds):  # round robin: every socket of the function answers in turn
                response = gw.get("/" + name)
                self.assertEqual(response.status, 200, f"/{name}: {response!r}\n{gw.describe()}")
                got = os.path.realpath(parse_kv(response.text).get("dir", ""))
                self.assertEqual(got, want, f"/{name} was answered by the function in {got}, not by "
                                            f"its own handler in {want}\n{gw.describe()}")

    def check_one_listener_per_socket(self, gw, names, daemons) -> dict:
        """Every socket of every function has its own path, exactly one process listens on it, and
        that process is the watchdog the gateway started for it; no watchdog listens on nothing."""
        health = gw.health()
        paths = {}
        for name in names:
            socks = sockets_of(health, name)
            self.assertEqual(len(socks), daemons, f"{name}: {socks!r}")
            for sock in socks:
                paths[(name, sock.get("index"))] = unix_path(sock)
        self.assertEqual(len(set(paths.values())), len(paths),
                         f"two sockets share a path: {paths!r}")
        for path in paths.values():
            self.assertLessEqual(len(path), MAX_SUN_PATH, path)
            self.assertTrue(os.path.exists(path), f"socket file {path} is gone\n{gw.describe()}")
        listeners = listening_unix_sockets()
        for key, path in paths.items():
            self.assertEqual(len(listeners.get(path, [])), 1,
                             f"{key}: {len(listeners.get(path, []))} processes listen on {path} "
                             f"(a socket whose file was unlinked keeps its path)\n{gw.describe()}")
        watchdogs = self.watchdogs(gw)
        self.assertEqual(len(watchdogs), len(paths),
                         f"watchdogs {[(p, listen_path(p)) for p in watchdogs]} for sockets {paths}")
        for pid in watchdogs:
            path = listen_path(pid)
            self.assertIn(path, paths.values(), f"watchdog {pid} ({cmdline(pid)}) serves no socket "
                                                f"the gateway routes to")
            self.assertIn(listeners[path][0], socket_inodes(pid),
                          f"watchdog {pid} does not hold the socket listening on {path}: orphaned")
        return health

    def test_item10_socket_names_are_injective_and_live_sockets_are_never_unlinked(self):
        fns = self.functions()
        long_prefix = "nested/" + "n" * 50
        # Names that read the same once '/' and '.' are made '_', and two long names that differ
        # only past the part of a name that fits in a socket path.
        names = ["api/users", "api_users", "api.users", long_prefix + "/x", long_prefix + "_x"]
        daemons = 2
        for name in names:
            fns.add(name, {"handler.sh": fixture("whoami_cgi.sh")}, {"daemons": daemons})
        gw = self.start_gateway(fns, wait_for=names)

        self.check_served_by_own_handler(gw, fns, names)
        health = self.check_one_listener_per_socket(gw, names, daemons)

        # A watchdog killed with SIGKILL leaves its socket file behind: its restart replaces that
        # stale file (nothing listens on it) and touches no other function's socket.
        victim = sockets_of(health, "api/users")[0]
        old_pid = gw.watchdog_pid(victim)
        self.assertIsNotNone(old_pid, f"no pid for {victim!r}")
        others = {pid for pid in self.watchdogs(gw) if pid != old_pid}
        os.kill(old_pid, signal.SIGKILL)
        self.wait_health(gw, lambda h: (sockets_of(h, "api/users")[0].get("pid") not in (None, 0, old_pid)
                                        and sockets_of(h, "api/users")[0].get("up")
                                        and (function_entry(h, "api/users") or {}).get("sockets_up") == daemons),
                         timeout=20, what="the killed watchdog of api/users restarted and up")
        self.assertEqual(unix_path(sockets_of(gw.health(), "api/users")[0]), unix_path(victim))
        self.check_served_by_own_handler(gw, fns, names)
        self.check_one_listener_per_socket(gw, names, daemons)
        self.assertTrue(others <= set(self.watchdogs(gw)),
                        f"restarting one watchdog stopped others: {sorted(others - set(self.watchdogs(gw)))}")

        # On SIGTERM the gateway stops every watchdog and removes their sockets: none is left.
        paths = [unix_path(s) for name in names for s in sockets_of(gw.health(), name)]
        watchdogs = self.watchdogs(gw)
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait(30), 0, gw.describe())
        wait_until(lambda: not any(harness.pid_alive(p) for p in watchdogs), 15,
                   message=lambda: f"watchdogs outlived the gateway: "
                                   f"{[p for p in watchdogs if harness.pid_alive(p)]}")
        self.assertEqual([p for p in paths if os.path.exists(p)], [], "socket files left behind")

    def test_item11_function_env_reaches_the_handler_only(self):
        fns = self.functions()
        # Every variable named like a watchdog option, in the function's env: the handler must see
        # each, the watchdog none (max_body=1 would make the POST below a 413, cgi_headers would
        # make option_env.sh's output invalid headers, content_type would relabel it,
        # combine_output would append the stderr line, log_format would log JSON).
        cgi_env = {"max_body": "1", "log_format": "json", "format": "http", "content_type": "application/x-evil",
                   "combine_output": "1", "cgi_headers": "1", "max_inflight": "1", "FN_MARKER": "cgi"}
        hot_env = {"max_body": "1", "log_format": "json", "format": "cgi", "content_type": "application/x-evil",
                   "max_inflight": "1", "FN_MARKER": "hot"}
        fns.add("cgi/env", {"handler.sh": fixture("option_env.sh")}, {"env": cgi_env})
        fns.add("hot/env", {"handler.py": fixture("option_env_hot.py"), "fastfn_http.py": FASTFN_HTTP_PY},
                {"format": "http", "env": hot_env})
        fns.add("plain", {"handler.sh": fixture("option_env.sh")})
        fns.add("cgi/headers", {"handler.sh": fixture("cgi_status.sh")}, {"cgi_headers": True})
        fns.add("cgi/headers_env", {"handler.sh": fixture("cgi_status.sh")}, {"env": {"cgi_headers": "1"}})
        # The gateway's own environment must not configure its watchdogs either.
        gw = self.start_gateway(fns, wait_for=["cgi/env", "hot/env", "plain", "cgi/headers_env"], env={
            "max_body": "1", "content_type": "application/x-from-gateway", "combine_output": "1",
            "log_format": "json"})
        body = b"b" * 100

        with self.subTest("a function's env configures nothing of its CGI watchdog"):
            seen = self.check_plain_cgi_answer(gw, "cgi/env", body)
            self.assertEqual({k: seen.get(k) for k in cgi_env}, cgi_env, "the CGI handler must see its env")
        with self.subTest("the gateway's environment configures nothing of a watchdog"):
            self.check_plain_cgi_answer(gw, "plain", body)
        with self.subTest("a function's env configures nothing of its hot watchdog"):
            response = gw.post("/hot/env", body)
            self.assertEqual(response.status, 200, f"POST /hot/env: {response!r}\n{gw.describe()}")
            self.assertEqual(response.headers.get("Content-Type"), "application/json", repr(response))
            data = json.loads(response.body)
            self.assertEqual(data["body_bytes"], 100, repr(data))
            self.assertEqual({k: data["env"].get(k) for k in hot_env}, hot_env,
                             "the hot handler must see its env")
        with self.subTest("every watchdog logs text: log_format from neither environment"):
            for name in ("cgi/env", "hot/env", "plain"):
                gw.get("/" + name)  # no body: no max_body in the way of the handler's stderr line
            gw.wait_log(lambda log: "option_env stderr line" in log and "option_env_hot stderr line" in log,
                        what="the handlers' stderr lines")
            json_lines = [line for line in gw.log().splitlines() if line.lstrip().startswith("{")]
            self.assertEqual(json_lines[:5], [], "a watchdog took log_format=json from an environment")
        with self.subTest("env cgi_headers=1 is the handler's variable, not the watchdog's option"):
            response = gw.get("/cgi/headers_env")
            self.assertEqual(response.status, 200, f"{response!r}\n{gw.describe()}")
            self.assertIn(b"Status: 201 Created", response.body, repr(response))
        with self.subTest("fn.config.json \"cgi_headers\": true turns CGI headers on"):
            self.wait_health(gw, lambda h: (function_entry(h, "cgi/headers") or {}).get("up"), timeout=15,
                             what="function cgi/headers (\"cgi_headers\": true) listed and up")
            response = gw.get("/cgi/headers")
            self.assertEqual((response.status, response.headers.get("Content-Type"), response.body),
                             (201, "text/x-fastfn-test", b"made\n"), f"{response!r}\n{gw.describe()}")

    def check_plain_cgi_answer(self, gw, name: str, body: bytes) -> dict:
        """POSTs `body` to option_env.sh at /NAME: a watchdog with its default options answers 200
        text/plain with the program's output only, the whole body read. Returns its key=value lines."""
        response = gw.post("/" + name, body)
        self.assertEqual(response.status, 200, f"POST /{name}: {response!r}\n{gw.describe()}")
        self.assertTrue(response.headers.get("Content-Type", "").startswith("text/plain"),
                        f"/{name}: the watchdog's content type was changed: {response!r}")
        self.assertNotIn(b"stderr line", response.body, f"/{name}: combine_output was turned on")
        seen = parse_kv(response.text)
        self.assertEqual(seen.get("body_bytes"), "100", f"/{name}: {response.text}")
        return seen

if __name__ == "__main__":
    unittest.main(verbosity=2)
