"""The exit codes of `fastfn` (docs/CLI.md, "Exit codes").

A function's own exit code passes through as it is; the command's own outcomes use the codes of
sysexits.h (64 and above), so `exit 3` of a function is never mistaken for "cannot connect".
Pure: no I/O.
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Optional

EXIT_OK = 0
EXIT_DEGRADED = 1      # `fastfn health`: the gateway answered, and its status is degraded
EXIT_USAGE = 64        # EX_USAGE: bad arguments
EXIT_REFUSED = 65      # EX_DATAERR: a 4xx answer other than 404
EXIT_NOINPUT = 66      # EX_NOINPUT: -d @FILE cannot be read, `fastfn dev DIR` is not a folder
EXIT_NOTFOUND = 67     # EX_NOUSER: no such function, route or call (404)
EXIT_CONNECT = 69      # EX_UNAVAILABLE: cannot connect to the gateway; no fastfn-gateway to run
EXIT_SERVER = 70       # EX_SOFTWARE: a 5xx answer other than 504
EXIT_OSERR = 71        # EX_OSERR: cannot start fastfn-gateway
EXIT_OSFILE = 72       # EX_OSFILE: fastfn's templates are missing
EXIT_CANTCREAT = 73    # EX_CANTCREAT: `fastfn new`: DIR/NAME exists or cannot be created
EXIT_BROKEN = 74       # EX_IOERR: the connection broke, or the answer was not valid HTTP
EXIT_PENDING = 75      # EX_TEMPFAIL: `fastfn call`: the call has not finished yet
EXIT_PROTOCOL = 76     # EX_PROTOCOL: the answer was not a fastfn gateway's
EXIT_TIMEOUT = 124     # timed out (504, or no answer within --timeout), as timeout(1) exits

# (code, sysexits name, meaning): the one table --help and docs/CLI.md give.
TABLE = (
    (EXIT_OK, "", "a 2xx or 3xx answer (redirects are not followed); with --async: queued (202)"),
    (EXIT_USAGE, "EX_USAGE", "bad arguments (an unknown option, a header without ':', a bad method)"),
    (EXIT_REFUSED, "EX_DATAERR", "a 4xx answer other than 404: method not allowed (405), body too "
                                 "large (413), too many requests (429), or the function's own 4xx"),
    (EXIT_NOINPUT, "EX_NOINPUT", "an input cannot be read: -d @FILE, or fastfn dev's DIR"),
    (EXIT_NOTFOUND, "EX_NOUSER", "404: no such function or route, no such call (fastfn call), or "
                                 "the function's own 404"),
    (EXIT_CONNECT, "EX_UNAVAILABLE", "cannot connect to the gateway (is `fastfn dev` running? "
                                     "FASTFN_URL?); fastfn dev: no fastfn-gateway to run"),
    (EXIT_SERVER, "EX_SOFTWARE", "a 5xx answer other than 504: the function failed (500), broke "
                                 "the protocol (502), is unavailable or overloaded (503)"),
    (EXIT_OSERR, "EX_OSERR", "fastfn dev cannot start fastfn-gateway"),
    (EXIT_OSFILE, "EX_OSFILE", "fastfn new: the templates folder is missing"),
    (EXIT_CANTCREAT, "EX_CANTCREAT", "fastfn new: DIR/NAME exists, or cannot be created"),
    (EXIT_BROKEN, "EX_IOERR", "the connection broke, or the answer was not valid HTTP"),
    (EXIT_PENDING, "EX_TEMPFAIL", "fastfn call: not finished yet (queued, running, retrying)"),
    (EXIT_PROTOCOL, "EX_PROTOCOL", "the answer was not a fastfn gateway's (is FASTFN_URL one?)"),
    (EXIT_TIMEOUT, "", "timed out: 504 from the gateway (the function's timeout), or no answer "
                       "within --timeout (124, as timeout(1))"),
)


def exit_code_for_status(status: int) -> int:
    """The exit code of an answer's status when no exit code of the function came with it."""
    if status < 400:
        return EXIT_OK
    if status == 404:
        return EXIT_NOTFOUND
    if status == 504:
        return EXIT_TIMEOUT
    if status < 500:
        return EXIT_REFUSED
    return EXIT_SERVER


def reported_exit_code(value: object) -> Optional[int]:
    """A function's exit code as the gateway reports it (X-Fn-Exit-Code's text, or a JSON number):
    1 to 255, or None for 0, missing or garbage (the status decides then)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and 0 < value <= 255:
        return value
    return None


def exit_code_for_answer(status: int, exit_code: object = None) -> int:
    """`fastfn invoke`'s code: the function's own non-zero exit code when reported, else the
    status's."""
    code = reported_exit_code(exit_code)
    return code if code is not None else exit_code_for_status(status)


def exit_code_for_call(state: Mapping, result_exit_code: object = None) -> int:
    """`fastfn call`'s code for a finished call: the function's exit code when the call's record
    (`exit_code`) or its result (X-Fn-Exit-Code) has one, else its last run's status; a run that
    got no answer counts as the gateway's 502, as a synchronous client would have seen it."""
    for candidate in (state.get("exit_code"), result_exit_code):
        code = reported_exit_code(candidate)
        if code is not None:
            return code
    return exit_code_for_status(function_status_of(state))


def function_status_of(state: Mapping) -> int:
    status = state.get("function_status")
    return status if isinstance(status, int) and not isinstance(status, bool) and status > 0 else 502


def help_table(codes: Optional[tuple[int, ...]] = None) -> str:
    """The rows of TABLE (those of `codes`, in order) as --help shows them."""
    rows = [row for row in TABLE if codes is None or row[0] in codes]
    lines = []
    for code, name, meaning in rows:
        label = f"  {code:<3} {name}".ljust(21)
        lines += textwrap.wrap(meaning, 99, initial_indent=label, subsequent_indent=" " * 21)
    return "\n".join(lines) + "\n"
