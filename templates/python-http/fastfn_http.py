"""The fastfn stdio loop for hot Python handlers (format http), standard library only.

fastfn writes one HTTP/1.1 request at a time to stdin, framed by Content-Length, and reads one
response from stdout. `serve(handle)` runs that loop for you: `handle(request)` gets a Request
and returns a Response (or a str/bytes/dict for a 200). Print diagnostics to stderr, never stdout:
stdout is the protocol.
"""

import json
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Union

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found",
            500: "Internal Server Error"}


@dataclass
class Request:
    method: str
    target: str
    headers: Dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def request_id(self) -> str:
        return self.headers.get("x-fn-request-id", "")

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Union[bytes, str] = b""
    headers: Dict[str, str] = field(default_factory=dict)


def _read_request(stdin) -> Optional[Request]:
    line = stdin.readline()
    if not line:
        return None
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: Dict[str, str] = {}
    while True:
        header = stdin.readline().decode("latin-1").rstrip("\r\n")
        if not header:
            break
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = stdin.read(length) if length else b""
    return Request(method, target, headers, body)


def _coerce(result) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list)):
        return Response(200, json.dumps(result) + "\n", {"Content-Type": "application/json"})
    return Response(200, result if result is not None else b"")


def _write_response(stdout, response: Response) -> None:
    body = response.body.encode() if isinstance(response.body, str) else response.body
    headers = {"Content-Type": "text/plain; charset=utf-8", **response.headers}
    head = f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-length")
    head += f"Content-Length: {len(body)}\r\n\r\n"
    stdout.write(head.encode("latin-1") + body)
    stdout.flush()


def serve(handle: Callable[[Request], object]) -> None:
    """Reads requests from stdin until it closes, answering each with handle(request)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # One reader for the whole life of the process: bytes read ahead stay in its buffer.
    while (request := _read_request(stdin)) is not None:
        try:
            response = _coerce(handle(request))
        except Exception as error:  # the handler's bug becomes a 500, the process lives on
            print(f"handler error: {error!r}", file=sys.stderr, flush=True)
            response = Response(500, f"handler error: {error}\n")
        _write_response(stdout, response)
