"""`fastfn list` and `fastfn health`: the gateway's /_fn/functions and /_fn/health as tables."""

from __future__ import annotations

import argparse
import sys

from fastfn_cli.client import gateway_target, get_status_json
from fastfn_cli.exits import EXIT_DEGRADED, EXIT_OK
from fastfn_cli.output import (FUNCTION_HEADERS, function_rows, restore_sigpipe, sockets_cell, table,
                               write_json)


def cmd_list(args: argparse.Namespace) -> int:
    restore_sigpipe()
    target = gateway_target(args)
    listing = get_status_json(target, "/_fn/functions", args.timeout)
    if args.json:
        write_json(listing)
    elif args.names:
        for fn in listing.get("functions", []):
            sys.stdout.write(f"{fn.get('name')}\n")
    else:
        rows = function_rows(listing, target.base())
        if rows:
            sys.stdout.write(table(FUNCTION_HEADERS, rows))
        else:
            sys.stdout.write(f"no functions at {target.base()}\n")
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    restore_sigpipe()
    target = gateway_target(args)
    health = get_status_json(target, "/_fn/health", args.timeout)
    status = health.get("status")
    if args.json:
        write_json(health)
    else:
        functions = health.get("functions", {})
        sys.stdout.write(f"gateway {target.base()}: {status} ({len(functions)} functions)\n")
        if functions:
            sys.stdout.write("\n" + table(
                ("FUNCTION", "RUNTIME", "FORMAT", "UP", "SOCKETS", "ROUTING", "IN-FLIGHT", "QUEUED"),
                [[name, f.get("runtime"), f.get("format"), "yes" if f.get("up") else "NO",
                  sockets_cell(f), f.get("routing"),
                  f.get("in_flight"), f.get("queued")] for name, f in functions.items()]))
        broken = [(name, f.get("error")) for name, f in functions.items() if f.get("ready") is False]
        if broken:
            sys.stdout.write("\nnot ready:\n" + "".join(f"  {name}: {error}\n" for name, error in broken))
        sockets = [s for runtime in health.get("runtimes", {}).values() for s in runtime.get("sockets", [])]
        if sockets:
            sockets.sort(key=lambda s: (str(s.get("function")), s.get("index", 0)))
            sys.stdout.write("\n" + table(
                ("FUNCTION", "#", "STATE", "PID", "RESTARTS", "ADDRESS", "LAST ERROR"),
                [[s.get("function"), s.get("index"), s.get("state") or ("up" if s.get("up") else "down"),
                  s.get("pid"), s.get("restarts"), s.get("address"), s.get("last_error")]
                 for s in sockets]))
    return EXIT_OK if status == "ok" else EXIT_DEGRADED



def add_parsers(sub, common: argparse.ArgumentParser, fmt) -> None:
    lst = sub.add_parser("list", parents=[common], formatter_class=fmt, help="the functions the gateway serves",
                         description="""\
Lists the gateway's functions (GET /_fn/functions) as a table: name, runtime, format, routes,
sockets up / daemons, URL. Exit codes: 0, 69 cannot connect, 124 timeout, 74 broken answer, 76 not a
fastfn gateway.""")
    out = lst.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the gateway's JSON")
    out.add_argument("--names", action="store_true", help="only the names, one per line")
    lst.set_defaults(func=cmd_list)

    health = sub.add_parser("health", parents=[common], formatter_class=fmt, help="the gateway's health",
                            description="""\
Shows GET /_fn/health as tables: each function (up, sockets up, routing, in-flight, queued) and each
watchdog socket (state, pid, restarts, last error).
Exit codes: 0 status ok, 1 degraded (a socket is down), 69 cannot connect, 124 timeout, 74 broken
answer.""")
    health.add_argument("--json", action="store_true", help="print the gateway's JSON")
    health.set_defaults(func=cmd_health)
