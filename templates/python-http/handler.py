"""A hot Python function: one process answers many requests (fastfn --format http)."""

import os
from urllib.parse import parse_qs

from fastfn_http import Request, Response, serve


def handle(request: Request):
    if request.method == "POST":
        return Response(200, request.body, {"Content-Type": "application/octet-stream"})
    name = parse_qs(request.query).get("name", ["world"])[0]
    return Response(200, f"hello {name} from pid {os.getpid()}\n")


if __name__ == "__main__":
    serve(handle)
