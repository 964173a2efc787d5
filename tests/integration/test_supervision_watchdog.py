#!/usr/bin/env python3
"""Issue 16, "Supervision that notices every fault", the watchdog's items 3, 6 and 7.

- item 3: what a CGI program leaves behind outside its process group (`setsid sh -c 'sleep 700 &'`, a
  double fork with setsid()) ends with its request, and the program does not outlive a watchdog that
  is killed with SIGKILL;
- item 6: a standalone cgi watchdog whose command cannot run (missing, not executable, no workdir)
  says so on /_/ready (503 with the reason) instead of 200, and heals when it can;
- item 7: the watchdog never signals a process group it no longer owns (a reaped program's pid can
  be reused by anyone).

Each test starts the real fastfn-watchdog (FASTFN_WATCHDOG) with fixtures from tests/fixtures/cgi.
Run alone: python3 tests/integration/test_supervision_watchdog.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import concurrent.futures  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
from typing import Optional  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import proc_stat, wait_until  # noqa: E402

CGI = ["--format", "cgi"]
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def fixture(name: str) -> str:
    return str(harness.CGI_FIXTURES_DIR / name)


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_fixtures_executable()


class Process:
    """A process named by pid AND start time, so that a reused pid is never mistaken for it."""

    def __init__(self, pid: int):
        stat = proc_stat(pid)
        self.pid = pid
        self.start_ticks = stat.start_ticks if stat else None

    def alive(self) -> bool:
        stat = proc_stat(self.pid)
        return stat is not None and stat.state != "Z" and stat.start_ticks == self.start_ticks

    def describe(self) -> str:
        return f"pid {self.pid}: {proc_stat(self.pid)}"

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class SupervisionTestCase(harness.WatchdogTestCase):
    def start(self, command, *options, **kwargs) -> harness.Watchdog:
        return self.start_watchdog(command, [*CGI, *options], **kwargs)

    def executor(self, workers: int = 2) -> concurrent.futures.ThreadPoolExecutor:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.addCleanup(pool.shutdown, wait=True)
        return pool

    def read_pid(self, path: str, wd: harness.Watchdog, what: str) -> Process:
        text = wait_until(lambda: read_text(path), 10,
                          message=lambda: f"{what} never wrote {path}\n{wd.describe()}")
        process = Process(int(text))
        self.addCleanup(process.kill)  # whatever the outcome, nothing is left for 700 s
        return process

    def assert_ends(self, process: Process, wd: harness.Watchdog, what: str,
                    timeout: float = 10.0) -> None:
        wait_until(lambda: not process.alive(), timeout,
                   message=lambda: f"{what} still runs: {process.describe()}\n{wd.describe()}")

    def assert_status(self, response: harness.Response, status: int, wd: harness.Watchdog,
                      note: str = "") -> None:
        self.assertEqual(response.status, status,
                         f"{note} expected {status}, got {response!r}\n{wd.describe()}")


# -- item 3 -----------------------------------------------------------------------------------------


class EscapeesTest(SupervisionTestCase):
    def run_escapee(self, command: list[str], wd_options=(), exec_timeout: str = "30s") -> None:
        directory = self.make_tempdir()
        wd = self.start([*command[:1], directory, *command[1:]], "--exec-timeout", exec_timeout,
                        *wd_options)
        response = wd.get("/", timeout=60)
        escapee = self.read_pid(os.path.join(directory, "escapee"), wd, "the program")
        self.assert_status(response, 200, wd, "the program exits 0:")
        self.assertEqual(response.body, b"started\n", f"{response!r}")
        # Ended before the answer was sent, so no poll is needed; the bound only covers a slow /proc.
        self.assert_ends(escapee, wd, "the process the program left behind", timeout=5)
        self.assertEqual(harness.zombie_count(wd.pid), 0, f"zombies: {harness.zombie_descendants(wd.pid)}")
        self.assert_status(wd.get("/"), 200, wd, "it still serves:")

    def test_item3_setsid_escapees_end_with_the_request(self):
        """`setsid sh -c 'sleep 700 &'` in a CGI program: the sleep ends with the request."""
        self.run_escapee([fixture("setsid_escapee.sh")])

    def test_item3_setsid_escapee_holding_stdout_does_not_hold_the_response(self):
        """An escapee that keeps the program's stdout open: once the program exits, the escapee is
        ended and the response completes, instead of waiting for the exec-timeout (a 504)."""
        started = time.monotonic()
        self.run_escapee([fixture("setsid_escapee.sh"), "holding"], exec_timeout="20s")
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 15, f"the response waited {elapsed:.1f}s for the escapee")

    def test_item3_double_fork_escapee_ends_with_the_request(self):
        """fork, setsid(), fork, exit: the classic daemon ends with the request too."""
        self.run_escapee([fixture("double_fork.py")])

    def test_item3_escapees_of_a_running_request_are_left_alone(self):
        """What a program starts lives as long as the program: a request that ends (its escapee
        with it) does not end the escapee of another request that is still running."""
        gate_dir = self.make_tempdir()
        directory = self.make_tempdir()
        script = (f"dir=$1; [ -e $dir/first ] && exec {fixture('setsid_escapee.sh')} $dir; : > $dir/first; "
                  f"setsid sh -c 'sleep 700 </dev/null >/dev/null 2>&1 & echo $! > {gate_dir}/.e && "
                  f"mv {gate_dir}/.e {gate_dir}/escapee' </dev/null >/dev/null 2>&1; "
                  f"while [ ! -e {gate_dir}/release ]; do sleep 0.02; done; echo released")
        wd = self.start(["sh", "-c", script, "sh", directory])
        self.addCleanup(harness.touch, os.path.join(gate_dir, "release"))
        pool = self.executor()
        running = pool.submit(wd.get, "/", timeout=60)
        kept = self.read_pid(os.path.join(gate_dir, "escapee"), wd, "the running request")
        # A second request leaves an escapee and ends: its escapee goes, the running one's stays.
        self.assert_status(wd.get("/", timeout=60), 200, wd, "the second request:")
        ended = self.read_pid(os.path.join(directory, "escapee"), wd, "the second request")
        self.assert_ends(ended, wd, "the ended request's escapee", timeout=5)
        self.assertTrue(kept.alive(), f"the running request's escapee was ended: {kept.describe()}")
        harness.touch(os.path.join(gate_dir, "release"))
        self.assert_status(running.result(60), 200, wd, "the released request:")
        self.assert_ends(kept, wd, "the released request's escapee", timeout=5)

    def test_item3_escapees_end_when_the_watchdog_stops(self):
        """SIGTERM during a request whose program has left an escapee: nothing is left after."""
        directory = self.make_tempdir()
        gate = os.path.join(directory, "release")
        script = (f"setsid sh -c 'sleep 700 </dev/null >/dev/null 2>&1 & echo $! > {directory}/.e && "
                  f"mv {directory}/.e {directory}/escapee' </dev/null >/dev/null 2>&1; "
                  f"while [ ! -e {gate} ]; do sleep 0.02; done")
        wd = self.start(["sh", "-c", script], "--shutdown-timeout", "100ms")
        self.addCleanup(harness.touch, gate)
        pool = self.executor()
        pool.submit(wd.get, "/", timeout=60)
        escapee = self.read_pid(os.path.join(directory, "escapee"), wd, "the program")
        self.assertEqual(wd.stop(signal.SIGTERM, timeout=30), 0, wd.describe())
        self.assert_ends(escapee, wd, "the escapee of the request stopped at shutdown", timeout=5)

    def test_item3_program_does_not_outlive_a_killed_watchdog(self):
        """kill -9 of a standalone cgi watchdog during a request: its program ends too, instead of
        running on with ppid 1."""
        directory = self.make_tempdir()
        wd = self.start([fixture("pid_then_sleep.sh"), directory])
        pool = self.executor()
        pool.submit(wd.get, "/", timeout=60)
        program = self.read_pid(os.path.join(directory, "program"), wd, "the program")
        stat = proc_stat(program.pid)
        self.assertEqual(stat and stat.ppid, wd.pid, f"the program should be the watchdog's child: {stat}")
        os.kill(wd.pid, signal.SIGKILL)
        wd.wait(10)
        self.assert_ends(program, wd, "the program of the killed watchdog")


# -- item 6 -----------------------------------------------------------------------------------------


class NotRunnableTest(SupervisionTestCase):
    def start_broken(self, command, *options) -> harness.Watchdog:
        wd = self.start(command, *options, wait_healthy=False)
        wait_until(lambda: wd.address.accepts_connections() or not wd.is_running(), 15,
                   message=lambda: f"the watchdog never listened\n{wd.describe()}")
        self.assertTrue(wd.is_running(), f"a command that cannot run is no reason to exit\n{wd.describe()}")
        return wd

    def assert_not_ready(self, wd: harness.Watchdog, *words: str) -> None:
        response = wd.get("/_/ready")
        self.assert_status(response, 503, wd, "/_/ready of a command that cannot run:")
        reason = json.loads(response.body).get("reason", "")
        for word in words:
            self.assertIn(word, reason, f"the reason must say why: {response!r}")
        self.assertLess(len(reason), 300, f"keep the reason short: {reason!r}")
        # Liveness stays 200 (docs/DECISIONS.md): restarting cannot install a command.
        self.assert_status(wd.get("/_/health"), 200, wd, "/_/health of a live watchdog:")
        failed = wd.get("/")
        self.assert_status(failed, 502, wd, "a request still gets the spawn's error:")
        self.assertEqual(json.loads(failed.body).get("error"), reason,
                         "/_/ready and the 502 must give the same reason")

    def assert_heals(self, wd: harness.Watchdog) -> None:
        wait_until(lambda: wd.get("/_/ready").status == 200, 10,
                   message=lambda: f"/_/ready stays 503 after the fix: {wd.get('/_/ready')!r}\n"
                                   f"{wd.describe()}")
        self.assert_status(wd.get("/"), 200, wd, "once it can run:")

    def test_item6_cgi_watchdog_not_ready_when_its_command_is_missing(self):
        directory = self.make_tempdir()
        command = os.path.join(directory, "handler")
        wd = self.start_broken([command])
        self.assert_not_ready(wd, command, "No such file or directory")
        harness.write_atomic(command, b"#!/bin/sh\necho ok\n")
        os.chmod(command, 0o755)
        self.assert_heals(wd)

    def test_item6_cgi_watchdog_not_ready_when_its_command_is_not_in_path(self):
        wd = self.start_broken(["fastfn-no-such-command-16"])
        self.assert_not_ready(wd, "fastfn-no-such-command-16", "No such file or directory")

    def test_item6_cgi_watchdog_not_ready_when_its_command_is_not_executable(self):
        directory = self.make_tempdir()
        command = os.path.join(directory, "handler.sh")
        harness.write_atomic(command, b"#!/bin/sh\necho ok\n")
        os.chmod(command, 0o644)
        wd = self.start_broken([command])
        self.assert_not_ready(wd, command, "Permission denied")
        os.chmod(command, 0o755)
        self.assert_heals(wd)

    def test_item6_cgi_watchdog_not_ready_when_its_interpreter_is_missing(self):
        directory = self.make_tempdir()
        command = os.path.join(directory, "handler")
        harness.write_atomic(command, b"#!/nonexistent/fastfn-interpreter\necho ok\n")
        os.chmod(command, 0o755)
        wd = self.start_broken([command])
        self.assert_not_ready(wd, command)

    def test_item6_cgi_watchdog_not_ready_when_its_workdir_is_missing(self):
        workdir = os.path.join(self.make_tempdir(), "absent")
        wd = self.start_broken(["echo", "ok"], "--workdir", workdir)
        self.assert_not_ready(wd, workdir, "workdir", "No such file or directory")
        os.mkdir(workdir)
        self.assert_heals(wd)


# -- item 7 -----------------------------------------------------------------------------------------


class StaleGroupTest(SupervisionTestCase):
    def spawn_with_pid(self, pid: int) -> Optional[subprocess.Popen]:
        """A new process group leader with exactly `pid` (via ns_last_pid), or None when another
        process took that pid first (the machine is busy) or the kernel gave another."""
        with open(NS_LAST_PID, "w") as f:
            f.write(str(pid - 1))
        victim = subprocess.Popen(["sleep", "700"], start_new_session=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.addCleanup(lambda: (victim.kill(), victim.wait()))
        return victim if victim.pid == pid else None

    def test_item7_shutdown_never_signals_a_reaped_programs_group(self):
        """A program exits and is reaped while its request goes on (an escapee holds its stdout);
        its pid, and so its group id, is free and here taken by an unrelated group leader. Stopping
        the watchdog must not kill that process."""
        if os.geteuid() != 0 or not os.access(NS_LAST_PID, os.W_OK):
            self.skipTest(f"needs {NS_LAST_PID} (root) to give the reaped pid to another process")
        for attempt in range(10):
            directory = self.make_tempdir()
            # Today's watchdog then waits for the escapee until the exec-timeout: keep it short.
            wd = self.start([fixture("setsid_escapee.sh"), directory, "holding"],
                            "--shutdown-timeout", "200ms", "--exec-timeout", "5s")
            pool = self.executor()
            pool.submit(wd.get, "/", timeout=60)
            program = self.read_pid(os.path.join(directory, "program"), wd, "the program")
            self.read_pid(os.path.join(directory, "escapee"), wd, "the program")
            wait_until(lambda: proc_stat(program.pid) is None, 10,
                       message=lambda: f"the program was not reaped: {program.describe()}\n{wd.describe()}")
            victim = self.spawn_with_pid(program.pid)
            if victim is None:
                wd.kill()  # no SIGTERM: its shutdown might signal whoever took the pid
                continue
            self.assertEqual(wd.stop(signal.SIGTERM, timeout=30), 0, wd.describe())
            self.assertIsNone(victim.poll(), f"the watchdog killed pid {victim.pid}, which it does not "
                                             f"own (exit {victim.returncode})\n{wd.describe()}")
            return
        self.skipTest("the reaped pid was taken by another process in 10 attempts")


if __name__ == "__main__":
    unittest.main(verbosity=2)
