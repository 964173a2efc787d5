"""One request with a body and its answer: sent while the body streams (sent_request), the answer's
head (-i) and body (print_answer: the gateway's own JSON errors become one line on stderr), and
the exit code the answer gives."""

from __future__ import annotations

import contextlib
import http.client
import socket
import sys
from typing import Iterator, Optional, Sequence

from fastfn_cli.body import BodySender, BodySource
from fastfn_cli.client import Target, TrailerResponse, connect, gateway_error, seconds, warn_gateway_error
from fastfn_cli.errors import CliError
from fastfn_cli.exits import EXIT_BROKEN, EXIT_TIMEOUT, exit_code_for_answer


def exit_code_for(response: TrailerResponse) -> int:
    reported = response.trailer("X-Fn-Exit-Code") or response.getheader("X-Fn-Exit-Code")
    return exit_code_for_answer(response.status, reported)


@contextlib.contextmanager
def sent_request(target: Target, method: str, path: str, headers: Sequence[tuple[str, str]],
                 body: BodySource, timeout: Optional[float]) -> Iterator[TrailerResponse]:
    """Sends METHOD PATH with `headers` and `body` and yields the response once its head arrived;
    a streamed body goes on being sent (BodySender) while the caller reads the answer. The
    connection is closed at the end."""
    conn = connect(target, timeout)
    sender: Optional[BodySender] = None
    try:
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            names = {n.lower() for n, _ in headers}
            for name, value in headers:
                conn.putheader(name, value)
            inline = body.inline()
            if "content-length" not in names and "transfer-encoding" not in names:
                if body.length is not None:
                    conn.putheader("Content-Length", str(body.length))
                elif body.present:
                    conn.putheader("Transfer-Encoding", "chunked")
                elif method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", "0")
            conn.endheaders(inline)
            if body.present and inline is None:
                sender = BodySender(conn.sock, body, chunked=body.length is None)
                sender.start()
            response = conn.getresponse()
        except (socket.timeout, TimeoutError):
            raise CliError(f"{method} {path}: no answer within {seconds(timeout)} (--timeout)", EXIT_TIMEOUT) from None
        except (OSError, http.client.HTTPException) as exc:
            raise CliError(f"{method} {path}: the connection to {target.base()} broke before an answer: "
                           f"{exc!r}", EXIT_BROKEN) from None
        yield response  # type: ignore[misc]
    finally:
        conn.close()
        if sender is not None:
            sender.join(1.0)


def show_head(response: http.client.HTTPResponse) -> None:
    """-i: the status line and the headers, on stderr."""
    sys.stderr.write(f"HTTP/1.1 {response.status} {response.reason}\n")
    for name, value in response.getheaders():
        sys.stderr.write(f"{name}: {value}\n")
    sys.stderr.write("\n")
    sys.stderr.flush()


def stream_body(response: http.client.HTTPResponse) -> None:
    """The body to stdout as it comes: each piece is seen at once, also through a pipe."""
    out = sys.stdout.buffer
    while True:
        piece = response.read1(65536)
        if not piece:
            return
        out.write(piece)
        out.flush()


def print_answer(what: str, response: TrailerResponse, timeout: Optional[float],
                 status: Optional[int] = None, same_request: bool = True) -> None:
    """Streams the answer's body to stdout as it comes, except an error answered by the gateway
    itself (its JSON {"error": ...}), which becomes one line on stderr. `status` is the status the
    body was answered with (default: this answer's; for a queued call's result, the run's)."""
    out = sys.stdout.buffer
    reason = response.reason if status is None else http.client.responses.get(status, "")
    status = response.status if status is None else status
    try:
        small_json = (status >= 400 and response.getheader("X-Fn-Exit-Code") is None
                      and "json" in (response.getheader("Content-Type") or "")
                      and response.length is not None and response.length <= 65536)
        if small_json:
            data = response.read()
            error = gateway_error(response, data, same_request)
            if error is not None:
                warn_gateway_error(what, status, reason, error)
            else:
                out.write(data)
        else:
            stream_body(response)
        out.flush()
    except (socket.timeout, TimeoutError):
        raise CliError(f"{what}: the answer stalled for {seconds(timeout)} (--timeout)",
                       EXIT_TIMEOUT) from None
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise CliError(f"{what}: the answer broke off: {exc!r}", EXIT_BROKEN) from None

