"""A Flask app as any Flask app is written (fastfn --format server runs it under gunicorn)."""

import os

from flask import Flask, request

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def hello():
    if request.method == "POST":
        return request.get_data(), 200, {"Content-Type": "application/octet-stream"}
    name = request.args.get("name", "world")
    return f"hello {name} from pid {os.getpid()}\n", 200, {"Content-Type": "text/plain; charset=utf-8"}
