"""`fastfn dev [DIR]`: fastfn-gateway on DIR with hot reload, its log read through DevOutput, its
functions polled for changes, signals forwarded, its exit status ours."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from fastfn_cli import PROG
from fastfn_cli.client import Target, get_status_json
from fastfn_cli.dev_output import DevOutput
from fastfn_cli.errors import CliError
from fastfn_cli.exits import EXIT_NOINPUT, EXIT_OSERR
from fastfn_cli.output import colour_wanted
from fastfn_cli.paths import find_gateway, templates_dir


def default_listen() -> str:
    url = os.environ.get("FASTFN_URL")
    if url:
        target = Target(url)
        if target.unix_path is not None:
            return f"unix:{target.unix_path}"
        return f"{target.host}:{target.port}" if ":" not in target.host else f"[{target.host}]:{target.port}"
    return "127.0.0.1:8080"


def listen_target(listen: str) -> Target:
    if listen.startswith("unix:"):
        return Target(listen)
    text = listen[len("tcp:"):] if listen.startswith("tcp:") else listen
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return Target(f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}")


def set_parent_death_signal() -> Callable[[], None]:
    """A preexec_fn: the gateway gets SIGTERM if `fastfn dev` dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return lambda: None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def cmd_dev(args: argparse.Namespace) -> int:
    if args.dir:
        functions_dir = Path(args.dir)
        if not functions_dir.is_dir():
            raise CliError(f"{functions_dir} is not a folder (create it, or `fastfn new NAME --dir {functions_dir}`)",
                           EXIT_NOINPUT)
        note = ""
    elif Path("functions").is_dir():
        functions_dir, note = Path("functions"), ""
    else:
        demo = templates_dir()
        if demo is None:
            raise CliError("no ./functions folder here and no templates/ to demo; "
                           "create one with `fastfn new NAME`", EXIT_NOINPUT)
        functions_dir, note = demo, " (no ./functions here: serving the demo templates)"
    gateway = find_gateway()
    listen = args.listen or default_listen()
    target = listen_target(listen)
    colour = colour_wanted(args.color, sys.stdout)
    output = DevOutput(args.log_format, colour, target.base(), args.verbose)

    argv = [gateway, "--log-format", "json", "--listen", listen]
    if args.config:
        argv += ["--config", args.config]
    argv += args.gateway_args
    argv.append(str(functions_dir))
    env = dict(os.environ)  # the gateway starts its watchdogs with its own --log-format
    env.pop("FN_LOG_FORMAT", None)

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
                                stderr=subprocess.PIPE, env=env, preexec_fn=set_parent_death_signal())
    except OSError as exc:
        raise CliError(f"cannot start {gateway}: {exc.strerror or exc}", EXIT_OSERR) from None

    stopping = threading.Event()

    def forward(sig: int, _frame) -> None:
        stopping.set()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)

    def read_log() -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            output.line(raw.decode("utf-8", "replace"))

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()

    def watch() -> None:
        """Waits for the gateway, prints the table, then reports function changes (hot reload)."""
        known: Optional[dict] = None
        while not output.listening.wait(0.05):  # before that, another server may hold the port
            if proc.poll() is not None or stopping.is_set():
                return
        started = time.monotonic()
        while proc.poll() is None and not stopping.is_set():
            try:
                listing = get_status_json(target, "/_fn/functions", 2.0)
            except CliError:
                listing = None
            if listing is not None:
                summaries = {f.get("name"): f.get("summary", {}) for f in listing.get("functions", [])}
                if known is None:
                    starting = any(s.get("sockets_up", 0) < s.get("daemons", 0) and s.get("warm") is not False
                                   for s in summaries.values())
                    if starting and time.monotonic() - started < 5:
                        time.sleep(0.05)  # wait (briefly) for the sockets, so the table shows them up
                        continue
                    output.functions_table(listing, note)
                    known = {n: shape(s) for n, s in summaries.items()}
                else:
                    current = {n: shape(s) for n, s in summaries.items()}
                    for name in sorted(set(known) | set(current)):
                        if name not in known:
                            output.function_change("added", name, summaries[name])
                        elif name not in current:
                            output.function_change("removed", name, {})
                        elif known[name] != current[name]:
                            output.function_change("changed", name, summaries[name])
                    known = current
            stopping.wait(0.05 if known is None else 1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # only before our handler is installed; forwarded the same way
            forward(signal.SIGINT, None)
    stopping.set()
    reader.join(3.0)  # its watchdogs share the pipe: do not wait for them forever
    watcher.join(3.0)
    if code < 0:
        output.err(f"{PROG}: fastfn-gateway was killed by signal {-code}\n")
        return 128 + (-code)
    return code


def shape(summary: dict) -> tuple:
    return (summary.get("runtime"), summary.get("format"), tuple(summary.get("routes", [])))



def add_parser(sub, fmt) -> None:
    dev = sub.add_parser("dev", formatter_class=fmt, help="run the gateway on a functions folder",
                         description="""\
Runs fastfn-gateway on DIR (default ./functions, else the templates/ demo) with hot reload: function
folders that appear, change or go away take effect within about a second. Once the gateway is
healthy it prints a table of functions, routes, formats and URLs, then one line per request on
stdout (colour on a terminal, plain otherwise, JSON lines with --log-format json). The gateway's
other log lines (warnings, the functions' stderr) go to stderr.

fastfn-gateway is found through FASTFN_GATEWAY_BIN, next to fastfn, in the build tree or on PATH.
It listens on --listen, else the host:port of FASTFN_URL, else 127.0.0.1:8080. Ctrl-C (SIGINT) and
SIGTERM stop it (SIGHUP reloads it); fastfn dev exits with the gateway's exit status (2: bad
configuration or the port is in use).""",
                         usage="fastfn dev [DIR] [options] [-- GATEWAY-OPTIONS...]")
    dev.add_argument("dir", nargs="?", metavar="DIR", help="the functions folder")
    dev.add_argument("--listen", metavar="ADDR", help="HOST:PORT, :PORT or unix:/path.sock")
    dev.add_argument("--config", metavar="FILE", help="a fastfn.json for the gateway")
    dev.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="text (default) or JSON lines: {\"event\":\"ready\"|\"request\"|\"function_added\"...}")
    dev.add_argument("-v", "--verbose", action="store_true",
                     help="also show the gateway's and watchdogs' info lines (starts, reloads)")
    dev.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto",
                     help="colour the access lines (auto: when stdout is a terminal and NO_COLOR is unset)")
    dev.set_defaults(func=cmd_dev)
