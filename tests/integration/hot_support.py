"""Helpers for the format-http integration tests, on top of harness.py (standard library only).

- `PYTHON`: the interpreter for handler processes (/usr/bin/python3 when it exists: fast startup).
- `hot_fixture()`: paths of tests/fixtures/hot/*.
- `Gate`: drives the `/gate` and `/chunked` routes of tests/fixtures/hot/hot_handler.py, which block
  until a file the test creates appears (no timing guesses).
- `Metrics`: Prometheus text from /_/metrics parsed into samples.
- `HotTestCase`: a WatchdogTestCase with helpers for hot pools: start, live handler children, pids,
  requests made in threads, JSON error checks.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402

HOT_FIXTURES_DIR = harness.FIXTURES_DIR / "hot"
TEMPLATES_DIR = harness.REPO_ROOT / "templates"
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
HTTP = ["--format", "http"]


def hot_fixture(name: str) -> str:
    return str(HOT_FIXTURES_DIR / name)


def hot_handler_command() -> list[str]:
    return [PYTHON, hot_fixture("hot_handler.py")]


class Gate:
    """A directory the fixture's gated routes watch. A request to `/gate?dir=D&name=N` creates
    D/started.N (holding the handler's pid) and answers once D/release.N or D/release exists."""

    def __init__(self, test: harness.WatchdogTestCase):
        self.dir = test.make_tempdir("fastfn-hot-gate-")
        test.addCleanup(self.release)  # runs before the dir is removed: no handler waits in vain

    def path(self, name: str = "gate", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"dir": self.dir, "name": name, **params}.items())
        return f"/gate?{query}"

    def release(self, name: Optional[str] = None) -> None:
        if os.path.isdir(self.dir):
            harness.touch(os.path.join(self.dir, f"release.{name}" if name else "release"))

    def started(self) -> dict[str, int]:
        """name -> pid of the handler that took it, for every gated request that reached a handler."""
        found = {}
        for entry in os.listdir(self.dir):
            # The handler writes started.NAME.tmp and renames it: skip the temporary, which may
            # be gone by the time it is read.
            if entry.startswith("started.") and not entry.endswith(".tmp"):
                text = Path(self.dir, entry).read_text().strip()
                if text:
                    found[entry[len("started."):]] = int(text)
        return found

    def wait_started(self, names: Sequence[str], wd: harness.Watchdog,
                     timeout: float = 15.0) -> dict[str, int]:
        wait_until(lambda: set(names) <= set(self.started()), timeout,
                   message=lambda: f"gated requests {sorted(set(names) - set(self.started()))} did not "
                                   f"reach a handler\n{wd.describe()}")
        return {name: pid for name, pid in self.started().items() if name in names}

    def file(self, name: str) -> str:
        return os.path.join(self.dir, name)


class Metrics:
    """Samples of one /_/metrics scrape."""

    _LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
    _LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str):
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = self._LINE.match(line)
            if match:
                labels = dict(self._LABEL.findall(match.group(2) or ""))
                self.samples.append((match.group(1), labels, float(match.group(3))))

    def get(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
        return sum(value for sample, have, value in self.samples
                   if sample == name and all(have.get(k) == v for k, v in labels.items()))

    def has(self, name: str) -> bool:
        return any(sample == name for sample, _, _ in self.samples)


def metrics(wd: harness.Watchdog) -> Metrics:
    response = wd.get("/_/metrics", timeout=5.0)
    if response.status != 200:
        raise AssertionError(f"/_/metrics answered {response!r}\n{wd.describe()}")
    return Metrics(response.text)


def live_children(wd: harness.Watchdog) -> list[int]:
    """The watchdog's children that are alive (its hot processes)."""
    return [pid for pid in harness.children(wd.pid) if harness.pid_alive(pid)]


class HotTestCase(harness.WatchdogTestCase):
    """Helpers shared by the format-http test classes."""

    def start_hot(self, options: Sequence[str] = (), command: Optional[Sequence[str]] = None,
                  **kwargs) -> harness.Watchdog:
        return self.start_watchdog(list(command or hot_handler_command()), [*HTTP, *options], **kwargs)

    def executor(self, workers: int = 8) -> concurrent.futures.ThreadPoolExecutor:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.addCleanup(pool.shutdown, wait=True)
        return pool

    def result(self, future, wd: harness.Watchdog, what: str, timeout: float = 30.0) -> harness.Response:
        try:
            return future.result(timeout=timeout)
        except Exception as exc:  # socket timeout, reset, protocol error: all are test failures here
            self.fail(f"{what}: no response ({exc!r})\n{wd.describe()}")

    def assert_status(self, response: harness.Response, status: int, wd: harness.Watchdog,
                      note: str = "") -> None:
        self.assertEqual(response.status, status,
                         f"{note} expected {status}, got {response!r}\n{wd.describe()}")

    def json_of(self, response: harness.Response, wd: harness.Watchdog, status: int = 200) -> dict:
        self.assert_status(response, status, wd)
        try:
            return json.loads(response.body)
        except ValueError:
            self.fail(f"body is not JSON: {response!r}\n{wd.describe()}")

    def pid_of(self, response: harness.Response, wd: harness.Watchdog) -> int:
        return int(self.json_of(response, wd)["pid"])

    def get_pid(self, wd: harness.Watchdog, path: str = "/pid", settle: bool = True) -> int:
        """The pid that served `path`; with settle, returns once that process is back in the pool."""
        pid = self.pid_of(wd.get(path, timeout=15.0), wd)
        if settle:
            self.settle(wd)
        return pid

    def settle(self, wd: harness.Watchdog) -> None:
        """Waits until no process is busy: the one that answered last is back in the pool (the client
        may read a response a moment before the watchdog takes the process back)."""
        self.wait_metric(wd, "fastfn_watchdog_processes", 0, state="busy")

    def assert_json_error(self, response: harness.Response, status: int, wd: harness.Watchdog,
                          function: Optional[str] = None) -> dict:
        self.assert_status(response, status, wd, "JSON error:")
        self.assertIn("json", response.headers.get("Content-Type", ""),
                      f"an error body must be JSON: {response!r}\n{wd.describe()}")
        data = self.json_of(response, wd, status)
        self.assertIsInstance(data.get("error"), str, f"no \"error\" string: {data!r}")
        self.assertTrue(data["error"].strip(), f"empty \"error\": {data!r}")
        self.assertIn("function", data, f"no \"function\": {data!r}")
        self.assertEqual(data.get("request_id"), response.headers.get("X-Fn-Request-Id"),
                         f"request_id of the body and the X-Fn-Request-Id header differ: {response!r}")
        self.assertTrue(data["request_id"], f"empty request_id: {response!r}")
        if function is not None:
            self.assertEqual(data["function"], function, f"wrong function name: {data!r}")
        return data

    def wait_children(self, wd: harness.Watchdog, count: int, timeout: float = 15.0) -> list[int]:
        wait_until(lambda: len(live_children(wd)) == count, timeout,
                   message=lambda: f"expected {count} live hot processes, have {live_children(wd)}\n"
                                   f"{wd.describe()}")
        return live_children(wd)

    def wait_gone(self, pids: Sequence[int], wd: harness.Watchdog, timeout: float = 10.0) -> None:
        wait_until(lambda: not any(harness.pid_alive(p) for p in pids), timeout,
                   message=lambda: f"processes still alive: "
                                   f"{[p for p in pids if harness.pid_alive(p)]}\n{wd.describe()}")

    def wait_metric(self, wd: harness.Watchdog, name: str, value: float, timeout: float = 15.0,
                    **labels: str) -> Metrics:
        holder: dict[str, Metrics] = {}

        def check() -> bool:
            holder["m"] = metrics(wd)
            return holder["m"].get(name, **labels) == value

        wait_until(check, timeout, message=lambda: f"{name}{labels} != {value}: "
                                                    f"{holder['m'].get(name, **labels) if holder else None}"
                                                    f"\n{wd.describe()}")
        return holder["m"]

    def wait_log(self, wd: harness.Watchdog, pattern: str, timeout: float = 10.0) -> re.Match:
        regex = re.compile(pattern)
        return wait_until(lambda: regex.search(wd.log()), timeout,
                          message=lambda: f"log never matched {pattern!r}\n{wd.describe()}")
