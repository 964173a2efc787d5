"""The fastfn stdio loop for hot Python handlers (format http), standard library only.

fastfn writes one HTTP/1.1 request at a time to stdin, framed by Content-Length, and reads one
response from stdout. `serve(handle)` runs that loop for you: `handle(request)` gets a Request
and returns a Response (or a str/bytes/dict for a 200). A Response whose body is an iterator is
sent chunked, each piece as soon as it is produced (server-sent events, long outputs).

stdout is the protocol: serve() points sys.stdout at stderr, so a stray print() lands in the
function's log instead of breaking the stream. Diagnostics go to stderr.
"""

import json
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import BinaryIO, Callable, Dict, Iterable, List, Optional, Tuple, Union

Body = Union[bytes, str, Iterable[Union[bytes, str]]]


class ProtocolError(Exception):
    """The bytes on stdin are not a request: the stream is out of step and cannot be trusted."""


@dataclass
class Request:
    method: str
    target: str
    headers: Dict[str, str]  # lowercase names; repeated fields joined with ", "
    body: bytes
    header_list: List[Tuple[str, str]] = field(default_factory=list)  # as received

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def request_id(self) -> str:
        return self.headers.get("x-fn-request-id", "")

    @property
    def deadline_ms(self) -> int:
        """Unix epoch milliseconds after which the watchdog stops waiting for this response."""
        return int(self.headers.get("x-fn-deadline-ms", "0") or 0)

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Body = b""
    headers: Dict[str, Union[str, List[str]]] = field(default_factory=dict)


def _line(stdin: BinaryIO) -> bytes:
    line = stdin.readline(65536)
    if line and not line.endswith(b"\n"):
        raise ProtocolError(f"line too long or cut short: {line[:80]!r}")
    return line


def _read_request(stdin: BinaryIO) -> Optional[Request]:
    """The next request, or None when stdin closed between requests."""
    line = _line(stdin)
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ProtocolError(f"bad request line {line[:80]!r}")
    method, target, _version = parts
    headers: Dict[str, str] = {}
    header_list: List[Tuple[str, str]] = []
    while True:
        raw = _line(stdin)
        if not raw:
            raise ProtocolError("stdin closed inside a request head")
        text = raw.decode("latin-1").rstrip("\r\n")  # bare \n accepted as well as \r\n
        if not text:
            break
        name, colon, value = text.partition(":")
        if not colon:
            raise ProtocolError(f"bad header line {raw[:80]!r}")
        name, value = name.strip(), value.strip()
        header_list.append((name, value))
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ProtocolError("chunked request body (fastfn always sends Content-Length)")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise ProtocolError(f"bad Content-Length {length!r}")
    body = stdin.read(int(length)) if int(length) else b""
    if len(body) != int(length):
        raise ProtocolError(f"stdin closed after {len(body)} of {length} body bytes")
    return Request(method, target, headers, body, header_list)


def _coerce(result) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list)):
        return Response(200, json.dumps(result) + "\n", {"Content-Type": "application/json"})
    return Response(200, result if result is not None else b"")


def _encode(data: Union[bytes, str]) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _head(status: int, headers: Dict[str, str], framing: str) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {status} {reason}"]
    if not any(k.lower() == "content-type" for k in headers):
        lines.append("Content-Type: text/plain; charset=utf-8")
    skip = ("content-length", "transfer-encoding", "connection")
    for name, value in headers.items():
        if name.lower() not in skip:  # a list is one line per value (Set-Cookie)
            lines += [f"{name}: {item}" for item in (value if isinstance(value, list) else [value])]
    lines.append(framing)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send(stdout: BinaryIO, data: bytes) -> None:
    """Writes all of `data` and flushes. One write call per piece: with PYTHONUNBUFFERED stdout is
    unbuffered, and each call is a write(2) that may also write less than it was given."""
    view = memoryview(data)
    while view:
        written = stdout.write(view)
        view = view[len(view) if written is None else written:]
    stdout.flush()


def _write_response(stdout: BinaryIO, response: Response, method: str) -> None:
    body = response.body
    bodiless = method == "HEAD" or response.status in (204, 304) or response.status < 200
    if isinstance(body, (bytes, bytearray, memoryview, str)) or bodiless:
        data = b"" if bodiless and not isinstance(body, (bytes, str)) else _encode(body)
        head = _head(response.status, response.headers, f"Content-Length: {len(data)}")
        _send(stdout, head if bodiless else head + data)
        return
    _send(stdout, _head(response.status, response.headers, "Transfer-Encoding: chunked"))
    for piece in body:
        data = _encode(piece)
        if data:  # an empty chunk would end the body
            _send(stdout, b"%x\r\n%s\r\n" % (len(data), data))
    _send(stdout, b"0\r\n\r\n")


def serve(handle: Callable[[Request], object]) -> None:
    """Reads requests from stdin until it closes, answering each with handle(request)."""
    # One reader for the whole life of the process: bytes read ahead stay in its buffer.
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # print() goes to the log, never into the protocol stream
    try:
        while (request := _read_request(stdin)) is not None:
            try:
                response = _coerce(handle(request))
            except Exception as error:  # the handler's bug becomes a 500, the process lives on
                print(f"handler error: {error!r}", file=sys.stderr, flush=True)
                response = Response(500, f"handler error: {error}\n")
            try:
                _write_response(stdout, response, request.method)
            except (BrokenPipeError, ProtocolError):
                raise
            except Exception as error:  # a streamed body failed after its head went out
                print(f"handler error while streaming: {error!r}; exiting", file=sys.stderr,
                      flush=True)
                sys.exit(1)
    except ProtocolError as error:
        print(f"fastfn_http: {error}; exiting", file=sys.stderr, flush=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(0)  # the watchdog went away
