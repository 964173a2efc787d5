"""Talking to the gateway: where it is (Target: http, https, unix:), connections that keep a chunked
body's trailer (X-Fn-Exit-Code), fastfn's own GETs of /_fn/ and the gateway's JSON errors."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import threading
import urllib.parse
from typing import Optional

from fastfn_cli.errors import CliError, NotAGateway, warn
from fastfn_cli.exits import EXIT_BROKEN, EXIT_CONNECT, EXIT_TIMEOUT, EXIT_USAGE

DEFAULT_URL = "http://127.0.0.1:8080"
# Our own polls of /_fn/ carry this request id prefix, so `fastfn dev` leaves them out of its log.
OWN_REQUEST_PREFIX = "fastfn-cli-"
ASYNC_PREFIX = "/async-function"  # a route behind it is queued, not run now


class Target:
    """Where the gateway is: http://HOST:PORT[/prefix], https://..., or unix:/path.sock."""

    def __init__(self, url: str):
        self.url = url.strip()
        self.unix_path: Optional[str] = None
        self.prefix = ""
        if self.url.startswith("unix:"):
            self.unix_path = self.url[len("unix:"):]
            if not self.unix_path:
                raise CliError(f"FASTFN_URL: unix: needs a socket path, got {url!r}", EXIT_USAGE)
            self.scheme, self.host, self.port = "http", "localhost", 0
            return
        parsed = urllib.parse.urlsplit(self.url if "://" in self.url else "http://" + self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise CliError(f"gateway URL must be http://HOST:PORT or unix:/path.sock, got {url!r}",
                           EXIT_USAGE)
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        try:
            self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        except ValueError:
            raise CliError(f"gateway URL has a bad port: {url!r}", EXIT_USAGE) from None
        self.prefix = parsed.path.rstrip("/")

    def base(self) -> str:
        """The URL in front of a route, as users would type it."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.prefix}"

    def connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.unix_path is not None:
            conn: http.client.HTTPConnection = UnixHTTPConnection(self.unix_path, timeout)
        elif self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        conn.response_class = TrailerResponse
        return conn


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: Optional[float]):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class TrailerResponse(http.client.HTTPResponse):
    """http.client reads and drops the trailer of a chunked body; this keeps it (the watchdog sends a
    long output's X-Fn-Exit-Code there)."""

    fastfn_trailers: list

    def _read_and_discard_trailer(self) -> None:  # overrides http.client's (CPython 3.8 to 3.13)
        self.fastfn_trailers = []
        while True:
            line = self.fp.readline(65537)
            if len(line) > 65536:
                raise http.client.LineTooLong("trailer line")
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                self.fastfn_trailers.append((name.strip(), value.strip()))

    def trailer(self, name: str) -> Optional[str]:
        for key, value in getattr(self, "fastfn_trailers", []):
            if key.lower() == name.lower():
                return value
        return None



def gateway_target(args: argparse.Namespace) -> Target:
    return Target(getattr(args, "url", None) or os.environ.get("FASTFN_URL") or DEFAULT_URL)


def connect(target: Target, timeout: Optional[float]) -> http.client.HTTPConnection:
    """An open connection, or CliError(EXIT_CONNECT) / CliError(EXIT_TIMEOUT)."""
    conn = target.connection(timeout)
    try:
        conn.connect()
    except (socket.timeout, TimeoutError):
        conn.close()
        raise CliError(f"no connection to the gateway at {target.base()} within {seconds(timeout)}",
                       EXIT_TIMEOUT) from None
    except OSError as exc:
        conn.close()
        reason = exc.strerror or str(exc)
        raise CliError(f"cannot connect to the gateway at {target.base()}: {reason} "
                       f"(start one with `fastfn dev`, or set FASTFN_URL)", EXIT_CONNECT) from None
    return conn


def seconds(timeout: Optional[float]) -> str:
    return "forever" if timeout is None else f"{timeout:g}s"


_own_requests = 0
_own_lock = threading.Lock()


def own_request_id() -> str:
    global _own_requests
    with _own_lock:
        _own_requests += 1
        return f"{OWN_REQUEST_PREFIX}{os.getpid()}-{_own_requests}"


def own_headers() -> dict[str, str]:
    """The headers of one of fastfn's own requests to the gateway's /_fn/ endpoints: its request
    id, and FN_STATUS_TOKEN as a bearer token when set (a remote gateway answers /_fn/* with it)."""
    headers = {"X-Fn-Request-Id": own_request_id()}
    token = os.environ.get("FN_STATUS_TOKEN", "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def get_answer(target: Target, path: str, timeout: Optional[float]) -> tuple[http.client.HTTPResponse, bytes]:
    """GET one of the gateway's /_fn/ endpoints (as one of fastfn's own requests): its answer and
    whole body."""
    conn = connect(target, timeout)
    try:
        conn.request("GET", target.prefix + path, headers={**own_headers(), "Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except (socket.timeout, TimeoutError):
        raise CliError(f"GET {path}: no answer from {target.base()} within {seconds(timeout)}",
                       EXIT_TIMEOUT) from None
    except (OSError, http.client.HTTPException) as exc:
        raise CliError(f"GET {path}: the connection to {target.base()} broke: {exc!r}",
                       EXIT_BROKEN) from None
    finally:
        conn.close()
    return response, body


def get_status_json(target: Target, path: str, timeout: Optional[float]) -> dict:
    """GET one of the gateway's /_fn/ endpoints and parse its JSON object."""
    response, body = get_answer(target, path, timeout)
    if response.status != 200:
        raise NotAGateway(f"GET {target.base()}{path}: {response.status} {response.reason}: "
                       f"{body[:300].decode('utf-8', 'replace').strip()} (is FASTFN_URL a fastfn gateway?)")
    try:
        data = json.loads(body)
    except ValueError:
        raise NotAGateway(f"GET {target.base()}{path}: the answer is not JSON "
                       f"(is FASTFN_URL a fastfn gateway?)") from None
    if not isinstance(data, dict):
        raise NotAGateway(f"GET {target.base()}{path}: expected a JSON object")
    return data


def gateway_error(response: http.client.HTTPResponse, body: bytes,
                  same_request: bool = True) -> Optional[dict]:
    """The gateway's (or watchdog's) own JSON error {"error", "function", "request_id"}, else None.
    same_request: its request_id is this answer's X-Fn-Request-Id (not so for a queued call's
    result, answered to the run's request and kept)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("error"), str) and "request_id" in data):
        return None
    if same_request and data.get("request_id") != response.getheader("X-Fn-Request-Id"):
        return None
    if not same_request and "function" not in data:
        return None
    return data


def warn_gateway_error(what: str, status: int, reason: str, error: dict) -> None:
    where = f" {error['function']}:" if error.get("function") else ""
    warn(f"{what}: {status} {reason}:{where} {error['error']} (request_id {error.get('request_id')})")

