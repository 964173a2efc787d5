"""`fastfn call ID`: a queued call's state (GET /_fn/calls/ID) or, once it has finished, its result
(GET /_fn/calls/ID/result), with --wait until then."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import urllib.parse
from typing import Optional

from fastfn_cli.body import BodySource
from fastfn_cli.client import Target, gateway_error, gateway_target, get_answer, own_request_id, seconds
from fastfn_cli.errors import CliError, NotAGateway, warn
from fastfn_cli.exchange import print_answer, sent_request
from fastfn_cli.exits import (EXIT_PENDING, EXIT_PROTOCOL, EXIT_USAGE, exit_code_for_call,
                              exit_code_for_status, function_status_of, help_table)
from fastfn_cli.output import restore_sigpipe, write_json

CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")  # X-Call-Id, as the gateway takes it
FINISHED = ("done", "failed")


def check_call_id(call_id: str, what: str) -> None:
    if not CALL_ID.fullmatch(call_id):
        raise CliError(f"{what} {call_id!r}: a call id is 1 to 128 letters, digits, '-', '_' or '.'",
                       EXIT_USAGE)



def call_path(call_id: str) -> str:
    return f"/_fn/calls/{urllib.parse.quote(call_id, safe='')}"


def call_state(target: Target, call_id: str, timeout: Optional[float]) -> dict:
    """GET /_fn/calls/ID; the gateway's error (404: no such call) is a CliError of its class."""
    path = call_path(call_id)
    response, body = get_answer(target, path, timeout)
    if response.status != 200:
        error = gateway_error(response, body)
        if error is not None:
            raise CliError(f"call {call_id}: {response.status} {response.reason}: {error['error']}",
                           exit_code_for_status(response.status))
    data = None
    with contextlib.suppress(ValueError):
        data = json.loads(body)
    if response.status != 200 or not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise NotAGateway(f"GET {target.base()}{path}: {response.status} {response.reason}: "
                          f"{body[:300].decode('utf-8', 'replace').strip()} "
                          f"(is FASTFN_URL a fastfn gateway with asynchronous calls?)")
    return data


def describe_call(state: dict) -> str:
    """One line: 'ID: running (hello, attempt 1)', 'ID: done (hello, status 200, 1 attempt, 0.02s)'."""
    status = state.get("status")
    attempts = state.get("attempts") or 0
    details = [str(state.get("function"))]
    if status == "running":
        details.append(f"attempt {attempts}")
    elif status == "queued":
        details.append(f"since {state.get('queued_at')}")
    elif status == "retrying":
        details.append(f"{attempts} attempt{'s' if attempts != 1 else ''} so far")
        if state.get("error"):
            details.append(str(state["error"]))
        details.append(f"next at {state.get('next_try_at')}")
    else:
        if state.get("function_status") is not None:
            details.append(f"status {state['function_status']}")
        details.append(f"{attempts} attempt{'s' if attempts != 1 else ''}")
        if isinstance(state.get("duration_seconds"), (int, float)):
            details.append(f"{state['duration_seconds']:.3g}s")
        if state.get("error"):
            details.append(str(state["error"]))
    return f"{state.get('id')}: {status} ({', '.join(details)})"



def cmd_call(args: argparse.Namespace) -> int:
    restore_sigpipe()
    check_call_id(args.id, "call")
    target = gateway_target(args)
    timeout = args.timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.05
    state = call_state(target, args.id, timeout)
    while args.wait and state["status"] not in FINISHED:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        time.sleep(pause if left is None else min(pause, left))
        pause = min(pause * 2, 1.0)
        state = call_state(target, args.id, timeout)
    if args.json:
        write_json(state)
        sys.stdout.flush()
    if state["status"] not in FINISHED:
        line = describe_call(state)
        if args.wait:
            line += f": not finished within {seconds(timeout)} (--timeout)"
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        return EXIT_PENDING
    if args.json:
        return exit_code_for_call(state)
    if state["status"] == "failed":
        warn(describe_call(state))
    path = target.prefix + call_path(args.id) + "/result"
    headers = [("X-Fn-Request-Id", own_request_id())]
    with sent_request(target, "GET", path, headers, BodySource(None), timeout) as response:
        if response.status != 200:
            data = response.read(65536)
            error = gateway_error(response, data)
            message = error["error"] if error else data[:300].decode("utf-8", "replace").strip()
            raise CliError(f"GET {path}: {response.status} {response.reason}: {message}",
                           exit_code_for_status(response.status) if error else EXIT_PROTOCOL)
        status = function_status_of(state)
        with contextlib.suppress(TypeError, ValueError):
            status = int(response.getheader("X-Function-Status")) or 502
        state = {**state, "function_status": status}
        print_answer(f"call {args.id}", response, timeout, status=status, same_request=False)
        if response.getheader("X-Result-Truncated") == "1":
            warn(f"call {args.id}: the gateway kept only the first {state.get('result_bytes')} bytes "
                 f"of the result")
        return exit_code_for_call(state, response.getheader("X-Fn-Exit-Code"))


CALL_CODES = (0, 64, 65, 67, 69, 70, 74, 75, 76, 124)


def add_parser(sub, common: argparse.ArgumentParser, fmt) -> None:
    call = sub.add_parser("call", parents=[common], formatter_class=fmt,
                          help="a queued call's state or result",
                          description="""\
Reports the call ID queued by `fastfn invoke --async` (GET /_fn/calls/ID). While it is queued,
running or waiting for a retry, one line on stderr says so (ID: running (hello, attempt 1)) and the
exit code is 75. Once it is done or failed, its result body goes to stdout as `fastfn invoke` prints
an answer, and the exit code is the function's exit code when the gateway kept it, else the one
`fastfn invoke` gives for the function's status.
--wait polls until the call has finished (every 50 ms at first, then up to every second), for at
most --timeout seconds (default 60, 0 = forever).""",
                          epilog=f"""\
exit codes (docs/CLI.md; a function's exit code as it is when the call's record has it):
{help_table(CALL_CODES)}
examples:
  fastfn call "$id"
  fastfn call "$id" --wait > out.png
  fastfn call "$id" --json | jq .attempts""")
    call.add_argument("id", metavar="ID", help="the call id `fastfn invoke --async` printed")
    call.add_argument("--wait", action="store_true", help="wait until the call has finished")
    call.add_argument("--json", action="store_true",
                      help="print the call's state (the gateway's JSON) instead of its result")
    call.set_defaults(func=cmd_call)
