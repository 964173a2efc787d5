"""A FastAPI app as any FastAPI app is written (fastfn --format server runs it under uvicorn)."""

import os

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.api_route("/", methods=["GET", "HEAD"], response_class=Response)
async def hello(name: str = "world"):
    return Response(f"hello {name} from pid {os.getpid()}\n", media_type="text/plain; charset=utf-8")


@app.post("/", response_class=Response)
async def echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")
