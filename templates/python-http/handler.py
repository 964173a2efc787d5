"""A hot Python function: one process answers many requests (fastfn --format http)."""

import os

from fastfn_http import Request, Response, serve


def handle(request: Request):
    name = request.query.partition("name=")[2] or "world"
    return Response(200, f"hello {name} from pid {os.getpid()}\n")


if __name__ == "__main__":
    serve(handle)
