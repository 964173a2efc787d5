"""`fastfn describe NAME`: what the gateway says about one function (/_fn/functions: its summary
and configuration; /_fn/health: its sockets), with the URLs it is called at."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from fastfn_cli.client import ASYNC_PREFIX, gateway_target, get_status_json
from fastfn_cli.errors import CliError
from fastfn_cli.exits import EXIT_OK
from fastfn_cli.invoke import no_such_function
from fastfn_cli.output import restore_sigpipe, route_url, sockets_cell, table, write_json

SHOWN_APART = ("name", "dir", "command", "methods")  # config keys with a line of their own


def find_function(listing: dict, name: str) -> Optional[dict]:
    for fn in listing.get("functions", []):
        if fn.get("name") == name:
            return fn
    return None


def function_urls(base: str, routes: list) -> dict:
    """The URLs the function is called at: synchronously, and queued (/async-function/ROUTE)."""
    return {"urls": [route_url(base, r) for r in routes],
            "async_urls": [route_url(base, ASYNC_PREFIX + r) for r in routes]}


def sockets_of(health: dict, name: str) -> list:
    sockets = [s for runtime in health.get("runtimes", {}).values() for s in runtime.get("sockets", [])
               if s.get("function") == name]
    return sorted(sockets, key=lambda s: s.get("index", 0))


def config_lines(config: dict, prefix: str = "") -> list[tuple[str, str]]:
    """The configuration's set keys as (key, value) pairs, nested objects as a.b; unset (null)
    keys left out."""
    lines = []
    for key, value in config.items():
        if not prefix and key in SHOWN_APART:
            continue
        if isinstance(value, dict):
            lines += config_lines(value, f"{prefix}{key}.")
        elif value is not None:
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value) or "-"
            elif isinstance(value, bool):
                value = "true" if value else "false"
            lines.append((prefix + key, str(value)))
    return lines


def state_text(summary: dict) -> str:
    words = ["ready" if summary.get("ready") else "NOT READY", "up" if summary.get("up") else "down"]
    if summary.get("installing"):
        words.append("installing its dependencies")
    words.append(f"start {summary.get('start')}, {'warm' if summary.get('warm') else 'cold'}")
    return ", ".join(words)


def describe_text(fn: dict, urls: dict, sockets: list) -> str:
    summary, config = fn.get("summary", {}), fn.get("config", {})
    fmt = summary.get("format")
    if summary.get("contract") and summary.get("contract") != fmt:
        fmt = f"{fmt} (contract {summary.get('contract')})"
    rows = [("name", fn.get("name")), ("runtime", summary.get("runtime")), ("format", fmt),
            ("routes", ", ".join(summary.get("routes", [])) or "-"),
            ("url", "\n".join(urls["urls"]) or "-"), ("async url", "\n".join(urls["async_urls"]) or "-"),
            ("state", state_text(summary))]
    if summary.get("error"):
        rows.append(("error", summary["error"]))
    rows += [("sockets", f"{sockets_cell(summary)} up, routing {summary.get('routing')}, "
                         f"{summary.get('in_flight', 0)} in flight, {summary.get('queued', 0)} queued"),
             ("dir", config.get("dir")), ("command", " ".join(config.get("command") or []) or "-"),
             ("methods", ", ".join(config.get("methods") or []) or "any")]
    rows += config_lines(config)
    width = max(len(key) for key, _ in rows) + 2
    text = ""
    for key, value in rows:
        lines = str("-" if value is None else value).split("\n")
        text += f"{key + ':':<{width}}{lines[0]}\n" + "".join(f"{'':<{width}}{line}\n" for line in lines[1:])
    if sockets:
        text += "\n" + table(("#", "STATE", "PID", "RESTARTS", "ADDRESS", "LAST ERROR"),
                             [[s.get("index"), s.get("state") or ("up" if s.get("up") else "down"),
                               s.get("pid"), s.get("restarts"), s.get("address"), s.get("last_error")]
                              for s in sockets])
    return text


def cmd_describe(args: argparse.Namespace) -> int:
    restore_sigpipe()
    target = gateway_target(args)
    listing = get_status_json(target, "/_fn/functions", args.timeout)
    fn = find_function(listing, args.name)
    if fn is None:
        raise no_such_function(target, args.name, listing)
    urls = function_urls(target.base(), fn.get("summary", {}).get("routes", []))
    try:
        sockets = sockets_of(get_status_json(target, "/_fn/health", args.timeout), args.name)
    except CliError:  # the function's own report stands without its sockets
        sockets = []
    if args.json:
        write_json({**fn, **urls, "sockets": sockets})
    else:
        sys.stdout.write(describe_text(fn, urls, sockets))
    return EXIT_OK


def add_parser(sub, common: argparse.ArgumentParser, fmt) -> None:
    describe = sub.add_parser("describe", parents=[common], formatter_class=fmt,
                              help="one function: routes, URLs, sockets, configuration",
                              description="""\
Shows what the gateway says about function NAME (GET /_fn/functions and /_fn/health): runtime,
format, routes, the URLs it is called at (and queued at, /async-function/ROUTE), whether it is
ready and up, its sockets (state, pid, restarts) and its configuration.
Exit codes: 0, 67 no such function, 69 cannot connect, 124 timeout, 74 broken answer, 76 not a
fastfn gateway.""")
    describe.add_argument("name", metavar="NAME", help="the function's name (fastfn list --names)")
    describe.add_argument("--json", action="store_true",
                          help="print the function's JSON (summary, config, urls, async_urls, sockets)")
    describe.set_defaults(func=cmd_describe)
