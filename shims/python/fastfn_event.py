"""Runs a FastFN-style Python function, `def handler(event)`, as a hot fastfn process (format http).

The gateway starts it as `python3 fastfn_event.py FILE [NAME]` in the function's folder: FILE is
imported once, then every request on stdin is answered by NAME(event) (default `handler`, else
`main`), sync or async. The event is FastFN's:

  id, ts, method, path, raw_path, query ({name: value}, a list for a repeated name), headers
  (lowercase names), body (text; base64 text when the body is not UTF-8, then is_base64 is true and
  body_base64 holds it too), params, client {ip, ua}, context {request_id, function_name,
  deadline_ms, timeout_ms (what is left of the deadline)}.

Route parameters (a file route's [id], [...slug]) come from the gateway's X-Fn-Params header (a
JSON object, not passed on in headers) into event["params"] and as keyword arguments the handler
declares (`def handler(event, id)`, or **kwargs for all of them).

What the handler returns is the response: {status (or statusCode), headers, body} with body text,
bytes, or a dict/list sent as JSON (is_base64 with body_base64 or body for binary); a dict or list
without those keys is a JSON 200; a str is a 200 (text/html when it starts with "<"), bytes an
octet-stream 200, None an empty 200. An exception, or a result of another shape, is a 500 whose
body says only that: the traceback goes to stderr, the function's log.
"""

import asyncio
import base64
import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from urllib.parse import parse_qs

from fastfn_http import Request, Response, serve

ENVELOPE_KEYS = {"status", "statusCode", "headers", "body", "body_base64", "is_base64",
                 "isBase64Encoded"}


class BadResponse(Exception):
    """The handler returned something that is not a response."""


def load_handler(file: str, name: str):
    folder = os.path.dirname(os.path.abspath(file))
    sys.path.insert(0, folder)  # the function's own modules, beside its handler
    spec = importlib.util.spec_from_file_location("handler", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    for candidate in (name, "main") if name == "handler" else (name,):
        function = getattr(module, candidate, None)
        if callable(function):
            return function
    raise SystemExit(f"fastfn_event: {file} defines no function {name}(event)")


def query_of(text: str) -> dict:
    return {key: values[0] if len(values) == 1 else values
            for key, values in parse_qs(text, keep_blank_values=True).items()}


def params_of(headers: dict) -> dict:
    try:
        params = json.loads(headers.pop("x-fn-params", "{}"))
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def event_of(request: Request) -> dict:
    headers = dict(request.headers)
    params = params_of(headers)
    deadline_ms = request.deadline_ms
    event = {
        "id": request.request_id,
        "ts": int(time.time() * 1000),
        "method": request.method,
        "path": request.path,
        "raw_path": request.target,
        "query": query_of(request.query),
        "headers": headers,
        "params": params,
        "client": {"ip": headers.get("x-forwarded-for", "").split(",")[0].strip(),
                   "ua": headers.get("user-agent", "")},
        "context": {"request_id": request.request_id,
                    "function_name": os.environ.get("FN_FUNCTION_NAME", ""),
                    "deadline_ms": deadline_ms,
                    "timeout_ms": max(0, deadline_ms - int(time.time() * 1000))
                    if deadline_ms else 0},
    }
    try:
        event["body"], event["is_base64"] = request.body.decode("utf-8"), False
    except UnicodeDecodeError:
        encoded = base64.b64encode(request.body).decode("ascii")
        event["body"], event["body_base64"], event["is_base64"] = encoded, encoded, True
    return event


def keyword_arguments(function, params: dict) -> dict:
    if not params:
        return {}
    parameters = list(inspect.signature(function).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(params)
    named = {p.name for p in parameters
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return {key: value for key, value in params.items() if key in named}


def header_lines(headers) -> dict:
    if not isinstance(headers, dict):
        raise BadResponse(f"headers must be a dict, got {type(headers).__name__}")
    lines = {}
    for name, value in headers.items():
        values = [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]
        if any(c in str(name) + "".join(values) for c in "\r\n\0"):
            raise BadResponse(f"header {name!r} holds a line break")
        lines[str(name)] = values if len(values) > 1 else values[0]
    return lines


def has_content_type(headers: dict) -> bool:
    return any(name.lower() == "content-type" for name in headers)


def json_response(status: int, value, headers: dict) -> Response:
    if not has_content_type(headers):
        headers["Content-Type"] = "application/json"
    return Response(status, json.dumps(value) + "\n", headers)


def bare_response(result) -> Response:
    if result is None:
        return Response(200, b"")
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Response(200, bytes(result), {"Content-Type": "application/octet-stream"})
    if isinstance(result, str):
        kind = "text/html" if result.lstrip().startswith("<") else "text/plain"
        return Response(200, result, {"Content-Type": f"{kind}; charset=utf-8"})
    if isinstance(result, (dict, list)):
        return json_response(200, result, {})
    raise BadResponse(f"the handler returned a {type(result).__name__}")


def response_of(result) -> Response:
    if not (isinstance(result, dict) and ENVELOPE_KEYS & result.keys()):
        return bare_response(result)
    status = result.get("status", result.get("statusCode", 200))
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponse(f"status must be an integer 100..599, got {status!r}")
    headers = header_lines(result.get("headers") or {})
    if result.get("is_base64", result.get("isBase64Encoded", False)):
        encoded = result.get("body_base64", result.get("body")) or ""
        return Response(status, base64.b64decode(encoded, validate=True), headers)
    body = result.get("body")
    if isinstance(body, (dict, list)):
        return json_response(status, body, headers)
    if isinstance(body, (bytes, bytearray, memoryview)):
        if not has_content_type(headers):
            headers["Content-Type"] = "application/octet-stream"
        return Response(status, bytes(body), headers)
    return Response(status, "" if body is None else str(body), headers)


def error_response(request: Request, what: str) -> Response:
    reason = {"error": what + "; the function's log has the details",
              "request_id": request.request_id}
    return Response(500, json.dumps(reason) + "\n", {"Content-Type": "application/json"})


def main() -> None:
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: fastfn_event.py HANDLER_FILE [FUNCTION_NAME]")
    protocol_stdout = sys.stdout
    sys.stdout = sys.stderr  # what the module prints while it loads goes to the log
    function = load_handler(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "handler")
    sys.stdout = protocol_stdout
    loop = asyncio.new_event_loop()  # one for the process: an async handler may keep clients

    def handle(request: Request) -> Response:
        event = event_of(request)
        try:
            result = function(event, **keyword_arguments(function, event["params"]))
            if inspect.isawaitable(result):
                result = loop.run_until_complete(result)
            return response_of(result)
        except BadResponse as error:
            print(f"request_id={request.request_id} bad response: {error}", file=sys.stderr,
                  flush=True)
            return error_response(request, "the function returned no valid response")
        except Exception:
            print(f"request_id={request.request_id} handler raised:\n{traceback.format_exc()}",
                  file=sys.stderr, end="", flush=True)
            return error_response(request, "the function raised an exception")

    serve(handle)


if __name__ == "__main__":
    main()
