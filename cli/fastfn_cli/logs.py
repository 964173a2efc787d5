"""`fastfn logs NAME [-f] [-n N]`: a function's recent log lines as the gateway keeps them
(GET /_fn/logs/NAME: its watchdogs' stderr lines, oldest first), and with -f each new one as it
comes (?follow=1, one chunked answer kept open) until Ctrl-C."""

from __future__ import annotations

import argparse
import http.client
import socket
import sys
import urllib.parse
from typing import Optional

from fastfn_cli.client import connect, gateway_error, gateway_target, own_headers, seconds
from fastfn_cli.errors import CliError, NotAGateway
from fastfn_cli.exchange import stream_body
from fastfn_cli.exits import EXIT_BROKEN, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, exit_code_for_status
from fastfn_cli.output import restore_sigpipe


def logs_path(name: str, lines: Optional[int], follow: bool) -> str:
    """/_fn/logs/NAME[?lines=N][&follow=1]; a nested name (api/users) keeps its slashes."""
    query = ([f"lines={lines}"] if lines is not None else []) + (["follow=1"] if follow else [])
    path = "/_fn/logs/" + urllib.parse.quote(name.strip("/"), safe="/")
    return path + ("?" + "&".join(query) if query else "")


def positive_lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of lines (0 or more), got {text!r}")
    return value


def cmd_logs(args: argparse.Namespace) -> int:
    restore_sigpipe()
    if not args.name.strip("/"):
        raise CliError("logs: NAME is empty", EXIT_USAGE)
    target = gateway_target(args)
    path = target.prefix + logs_path(args.name, args.lines, args.follow)
    what = f"GET {path}"
    conn = connect(target, args.timeout)
    try:
        try:
            conn.request("GET", path, headers=own_headers())
            response = conn.getresponse()
            if response.status != 200:
                raise refused(target.base(), args.name, response, response.read(65536))
            if args.follow:  # a followed log may stay quiet for hours: only Ctrl-C ends it
                conn.sock.settimeout(None)
            stream_body(response)
        except (socket.timeout, TimeoutError):
            raise CliError(f"{what}: no answer within {seconds(args.timeout)} (--timeout)",
                           EXIT_TIMEOUT) from None
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise CliError(f"{what}: the connection to {target.base()} broke: {exc!r}",
                           EXIT_BROKEN) from None
    except KeyboardInterrupt:
        if not args.follow:
            raise
        return EXIT_OK  # Ctrl-C is how -f ends
    finally:
        conn.close()
    return EXIT_OK


def refused(base: str, name: str, response: http.client.HTTPResponse, body: bytes) -> CliError:
    """The gateway's JSON error (404: no such function, 403: not from loopback) as one line with the
    exit code of its status; another answer is not a fastfn gateway's."""
    error = gateway_error(response, body, same_request=False) or gateway_error(response, body)
    if error is None:
        return NotAGateway(f"GET {base}/_fn/logs/{name}: {response.status} {response.reason}: "
                           f"{body[:300].decode('utf-8', 'replace').strip()} "
                           f"(is FASTFN_URL a fastfn gateway that keeps logs?)")
    return CliError(f"logs {name}: {response.status} {response.reason}: {error['error']}",
                    exit_code_for_status(response.status))


def add_parser(sub, common: argparse.ArgumentParser, fmt) -> None:
    logs = sub.add_parser("logs", parents=[common], formatter_class=fmt,
                          help="a function's log lines (its stderr), -f to follow",
                          description="""\
Prints function NAME's recent log lines as the gateway keeps them (GET /_fn/logs/NAME): what its
watchdogs wrote to stderr (the function's own stderr lines among them), oldest first. -n N prints
only the last N. -f prints them and then each new line as it comes, until Ctrl-C (exit 0).
Exit codes: 0, 67 no such function, 65 refused (403: not from loopback), 69 cannot connect,
124 no answer within --timeout, 74 the connection broke, 76 not a fastfn gateway.""",
                          epilog="""\
examples:
  fastfn logs hello
  fastfn logs hello -n 20
  fastfn logs hello -f | grep request_id=""")
    logs.add_argument("name", metavar="NAME", help="the function's name (fastfn list --names)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.add_argument("-n", "--lines", metavar="N", type=positive_lines, default=None,
                      help="only the last N lines (default: all the gateway keeps)")
    logs.set_defaults(func=cmd_logs)
