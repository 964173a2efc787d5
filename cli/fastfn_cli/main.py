"""fastfn: the everyday front-end of fastfn (docs/CLI.md).

  fastfn dev [DIR]        the gateway on DIR, with a table of functions and one line per request
  fastfn new NAME         a new function folder from a template
  fastfn list             the functions the gateway serves
  fastfn describe NAME    one function: its routes, URLs, sockets and configuration
  fastfn health           the gateway's health: functions and sockets
  fastfn invoke NAME      calls a function; its exit code is the function's
  fastfn invoke NAME --async   queues the call instead, prints its id
  fastfn call ID          a queued call's state, or its result once it has finished (--wait)
  fastfn logs NAME [-f]   a function's recent log lines (its stderr), and new ones with -f

Python 3 standard library only. FASTFN_URL picks the gateway (default http://127.0.0.1:8080).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from fastfn_cli import PROG, VERSION, call, describe, dev, invoke, listing, logs, new
from fastfn_cli.client import DEFAULT_URL
from fastfn_cli.errors import CliError, warn
from fastfn_cli.exits import EXIT_USAGE

COMMANDS = ("dev", "new", "list", "describe", "health", "invoke", "call", "logs")
# --timeout's default per command; logs -f waits for lines with no bound (logs.py).
DEFAULT_TIMEOUTS = {"invoke": 60.0, "call": 60.0}


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and EX_USAGE
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    common = Parser(add_help=False)
    common.add_argument("--url", metavar="URL",
                        help=f"the gateway: http://HOST:PORT or unix:/path.sock (default: $FASTFN_URL, "
                             f"else {DEFAULT_URL})")
    common.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="give up on a connection or an answer idle this long (default 10; "
                             "invoke and call: 60, 0 = never; call --wait: the whole wait)")

    parser = Parser(prog=PROG, formatter_class=fmt, description=__doc__.split("\n\n", 1)[1],
                    epilog="`fastfn COMMAND --help` tells more. Exit codes: docs/CLI.md.")
    parser.add_argument("--version", action="version", version=f"{PROG} {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    dev.add_parser(sub, fmt)
    new.add_parser(sub, fmt)
    listing.add_parsers(sub, common, fmt)
    describe.add_parser(sub, common, fmt)
    invoke.add_parser(sub, common, fmt)
    call.add_parser(sub, common, fmt)
    logs.add_parser(sub, common, fmt)
    return parser


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The command line for our parser, and what `fastfn dev ... -- ARGS` passes to the gateway;
    `fastfn help [COMMAND]` is `fastfn [COMMAND] --help`."""
    argv = list(argv)
    if argv and argv[0] == "help":
        argv = [*argv[1:2], "--help"] if len(argv) > 1 else ["--help"]
    if argv and argv[0] == "dev" and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def parse(argv: Sequence[str]) -> Optional[argparse.Namespace]:
    """The parsed command line with its timeout settled (None: no bound), or None without a
    command. A bad one exits EXIT_USAGE (SystemExit), as argparse does."""
    argv, gateway_args = split_argv(argv)
    args = build_parser().parse_args(argv)
    if not getattr(args, "command", None):
        return None
    args.gateway_args = gateway_args
    if hasattr(args, "timeout"):
        if args.timeout is None:
            args.timeout = DEFAULT_TIMEOUTS.get(args.command, 10.0)
        if args.timeout <= 0:
            args.timeout = None
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args is None:
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except CliError as exc:
        warn(str(exc))
        return exc.code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The zipapp's entry (its generated __main__ calls this and ignores what it returns)."""
    sys.exit(main())
