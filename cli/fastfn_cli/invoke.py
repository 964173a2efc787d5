"""`fastfn invoke NAME`: one call through the gateway, its body streamed to stdout and its exit code
the function's; with --async, the same request queued (/async-function/ROUTE), its id printed."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import socket
import sys
import urllib.parse
from typing import Optional

from fastfn_cli.body import BodySource
from fastfn_cli.call import check_call_id
from fastfn_cli.client import (ASYNC_PREFIX, Target, gateway_error, gateway_target, get_status_json, seconds,
                               warn_gateway_error)
from fastfn_cli.errors import CliError, NotAGateway, warn
from fastfn_cli.exchange import exit_code_for, print_answer, sent_request, show_head
from fastfn_cli.exits import (EXIT_BROKEN, EXIT_NOTFOUND, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, TABLE,
                              help_table)
from fastfn_cli.output import restore_sigpipe

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP method or header name (RFC 9110 token)


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or "\n" in value:
        raise CliError(f"-H {text!r}: expected 'Name: value'", EXIT_USAGE)
    return name, value.strip()



def function_route(listing: dict, name: str) -> Optional[str]:
    """The first route of function NAME in a /_fn/functions listing (/NAME when it has none), or
    None when the listing has no such function."""
    for fn in listing.get("functions", []):
        if fn.get("name") == name:
            routes = fn.get("summary", {}).get("routes") or [f"/{name}"]
            return routes[0]
    return None


def with_sub_path(route: str, sub: str) -> str:
    """ROUTE with --path appended (/sub, sub, ?x=1), quoted for a request line."""
    if sub and not sub.startswith(("/", "?")):
        sub = "/" + sub
    if sub:
        route = (route.rstrip("/") + sub) if sub.startswith("/") else route + sub
        if not route.startswith("/"):
            route = "/" + route
    return urllib.parse.quote(route, safe="/?&=:@!$'()*+,;~%-._#[]")


def resolve_path(target: Target, name: str, sub: str, timeout: Optional[float]) -> str:
    """The request path for function NAME (its first route, from /_fn/functions) plus --path."""
    if name.startswith("/"):
        return with_sub_path(name, sub)
    try:
        listing = get_status_json(target, "/_fn/functions", timeout)
    except NotAGateway:  # no function list to look in: the usual route
        listing = {"functions": [{"name": name, "summary": {"routes": [f"/{name}"]}}]}
    route = function_route(listing, name)
    if route is None:
        raise no_such_function(target, name, listing)
    return with_sub_path(route, sub)


def no_such_function(target: Target, name: str, listing: dict) -> CliError:
    names = [str(fn.get("name")) for fn in listing.get("functions", [])]
    known = ", ".join(names) if names else "none"
    return CliError(f"no function named {name!r} at {target.base()} (functions: {known})", EXIT_NOTFOUND)


def default_method(method: Optional[str], body_present: bool) -> str:
    """-X's method, else POST with a body and GET without; EXIT_USAGE when it is not a token."""
    chosen = (method or ("POST" if body_present else "GET")).upper()
    if not TOKEN.fullmatch(chosen):
        raise CliError(f"-X {method!r}: not an HTTP method", EXIT_USAGE)
    return chosen


def invoke_request(args: argparse.Namespace, target: Target) -> tuple[str, str, list[tuple[str, str]], BodySource]:
    """The method, route (without the gateway's prefix), headers and body of `fastfn invoke`'s -X,
    NAME, --path, -H and -d, or stdin as the body when -d is not given (BodySource.from_stdin).
    Stdin is read last, after the arguments were checked and the route found: a mistake is told
    at once, not after the input has been waited for."""
    headers = [parse_header(h) for h in args.header]
    body = BodySource(args.data)
    if args.request is not None:
        default_method(args.request, True)
    route = resolve_path(target, args.name, args.path or "", args.timeout)
    if not body.present and not args.no_stdin:
        body = BodySource.from_stdin()
    return default_method(args.request, body.present), route, headers, body


def cmd_invoke(args: argparse.Namespace) -> int:
    restore_sigpipe()
    if args.async_call:
        return invoke_async(args)
    if args.callback is not None or args.call_id is not None:
        raise CliError("--callback and --call-id go with --async", EXIT_USAGE)
    target = gateway_target(args)
    method, route, headers, body = invoke_request(args, target)
    path = target.prefix + route
    with sent_request(target, method, path, headers, body, args.timeout) as response:
        if args.include:
            show_head(response)
        print_answer(f"{method} {path}", response, args.timeout)
        if args.include and getattr(response, "fastfn_trailers", None):
            for name, value in response.fastfn_trailers:
                sys.stderr.write(f"{name}: {value}\n")
        code = exit_code_for(response)
        if code != EXIT_OK and args.include:
            warn(f"exit code {code}")
        return code



def invoke_async(args: argparse.Namespace) -> int:
    """`fastfn invoke NAME --async`: the same request to /async-function/ROUTE; prints the call id."""
    if args.call_id is not None:
        check_call_id(args.call_id, "--call-id")
    if args.callback is not None and (not args.callback.strip()
                                      or re.search(r"[\x00-\x20\x7f]", args.callback)):
        raise CliError(f"--callback {args.callback!r}: expected a URL (http://HOST:PORT/PATH)", EXIT_USAGE)
    target = gateway_target(args)
    method, route, headers, body = invoke_request(args, target)
    if args.callback is not None:
        headers.append(("X-Callback-Url", args.callback))
    if args.call_id is not None:
        headers.append(("X-Call-Id", args.call_id))
    path = target.prefix + ASYNC_PREFIX + route
    what = f"{method} {path}"
    with sent_request(target, method, path, headers, body, args.timeout) as response:
        if args.include:
            show_head(response)
        try:
            data = response.read(1 << 20)
        except (socket.timeout, TimeoutError):
            raise CliError(f"{what}: the answer stalled for {seconds(args.timeout)} (--timeout)",
                           EXIT_TIMEOUT) from None
        except (OSError, http.client.HTTPException) as exc:
            raise CliError(f"{what}: the answer broke off: {exc!r}", EXIT_BROKEN) from None
    if response.status >= 400:
        error = gateway_error(response, data)
        if error is not None:
            warn_gateway_error(what, response.status, response.reason, error)
        else:
            text = data[:300].decode("utf-8", "replace").strip()
            warn(f"{what}: {response.status} {response.reason}" + (f": {text}" if text else ""))
        code = exit_code_for(response)
        if args.include:
            warn(f"exit code {code}")
        return code
    call_id = None
    with contextlib.suppress(ValueError):
        queued = json.loads(data)
        if isinstance(queued, dict) and isinstance(queued.get("call_id"), str):
            call_id = queued["call_id"]
    call_id = call_id or response.getheader("X-Call-Id")
    if response.status != 202 or not call_id:
        raise NotAGateway(f"{what}: {response.status} {response.reason} without a call id, not 202 "
                          f"Accepted (does {target.base()} take asynchronous calls?)")
    sys.stdout.write(call_id + "\n")
    sys.stdout.flush()
    return EXIT_OK




INVOKE_CODES = tuple(code for code, _, _ in TABLE if code not in (71, 72, 73, 75))
EXIT_CODES_HELP = f"""\
exit codes (docs/CLI.md):
  N                  the function's own exit code, when the gateway reports a non-zero one
                     (X-Fn-Exit-Code, a header or, for long streamed outputs, a trailer): a cgi
                     function's `exit 3` makes fastfn exit 3, a process killed by a signal gives
                     128+signal; fastfn's own codes are 64 and above (sysexits.h), else:
{help_table(INVOKE_CODES)}"""


def add_parser(sub, common: argparse.ArgumentParser, fmt) -> None:
    invoke = sub.add_parser("invoke", parents=[common], formatter_class=fmt, help="call a function",
                            description="""\
Calls function NAME through the gateway and streams the response body to stdout, so that
`fastfn invoke NAME | ...` and `if fastfn invoke check; then ...` work in scripts. The route is the
function's first route from /_fn/functions (usually /NAME); a NAME starting with / is used as the
path itself. Errors answered by the gateway itself (its JSON {"error": ...}) are printed to stderr
as one line, not to stdout.

Without -d, stdin is the body when it is a pipe or a file (as faas-cli invoke reads it), and the
method POST: `echo hi | fastfn invoke NAME`. A terminal, /dev/null, a closed stdin or an empty one
sends no body (GET). --no-stdin never reads it (in a `while read` loop, as ssh -n).

With --async the same request goes to /async-function/ROUTE: the gateway queues it and answers 202,
and fastfn prints only the call id (id=$(fastfn invoke --async NAME)); `fastfn call ID` tells how it
went. A refused call exits as a synchronous error would.""",
                            epilog=EXIT_CODES_HELP + """
examples:
  fastfn invoke hello
  fastfn invoke hello --path '/sub?name=ada'
  echo '{"a":1}' | fastfn invoke echo -H 'Content-Type: application/json' | jq .
  if fastfn invoke check -X POST -d "$payload"; then echo ok; fi
  id=$(fastfn invoke --async resize -d @big.png --callback http://127.0.0.1:9000/done)""")
    invoke.add_argument("name", metavar="NAME", help="function name, or a path starting with /")
    invoke.add_argument("-X", "--request", metavar="METHOD",
                        help="GET (default), or POST when there is a body (-d, or stdin)")
    invoke.add_argument("-d", "--data", metavar="DATA|@FILE|@-",
                        help="request body: the text DATA, the contents of FILE, or stdin (@-), streamed")
    invoke.add_argument("--no-stdin", action="store_true",
                        help="without -d, send no body even when stdin is a pipe or a file")
    invoke.add_argument("-H", "--header", metavar="'NAME: VALUE'", action="append", default=[],
                        help="a request header (repeatable)")
    invoke.add_argument("--path", metavar="/SUB", default="", help="appended to the route: /sub, /a/b?x=1, ?x=1")
    invoke.add_argument("-i", "--include", action="store_true",
                        help="print the status line, headers and trailers to stderr")
    invoke.add_argument("--async", dest="async_call", action="store_true",
                        help="queue the call (POST /async-function/...) and print its id")
    invoke.add_argument("--callback", metavar="URL",
                        help="with --async: the gateway POSTs the result to URL when the call ends "
                             "(X-Callback-Url)")
    invoke.add_argument("--call-id", metavar="ID",
                        help="with --async: the call's id (1-128 of A-Z a-z 0-9 . _ -; X-Call-Id); "
                             "sending it again queues nothing new")
    invoke.set_defaults(func=cmd_invoke)
