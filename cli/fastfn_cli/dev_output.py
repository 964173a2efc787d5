"""What `fastfn dev` prints: the table of functions once the gateway is ready, one line per request
(from the gateway's access log lines), changes of functions, and the rest of the gateway's log on
stderr; or all of it as JSON lines (--log-format json)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import sys
import threading
from typing import Optional

from fastfn_cli.client import OWN_REQUEST_PREFIX
from fastfn_cli.output import FUNCTION_HEADERS, Style, colour_wanted, function_rows, route_url, table


RECORD_KEYS = ("time", "level", "logger", "msg")  # a JSON log line's own keys; the rest are fields


def parse_record(raw: str) -> Optional[dict]:
    """A JSON log line of the gateway or a watchdog (--log-format json: time, level, logger, msg,
    then one key per key=value field of the message), or None for any other line."""
    if not raw.startswith("{"):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("msg"), str) else None


def fields_of(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in RECORD_KEYS}


def field_text(value: object) -> str:
    """A field as the text log writes it: quoted when it holds a blank or a quote."""
    text = str(value)
    return json.dumps(text) if isinstance(value, str) and (not text or re.search(r'[\s"]', text)) else text


def message_text(record: dict) -> str:
    """The message with its fields after it, as the text log line reads; a function's own stderr
    line (logger fn) after whose it is: `hello pid=42 request_id=ab: LINE`."""
    fields = fields_of(record)
    if record.get("logger") == "fn":
        whose = [str(fields.pop("function", "?")), *(f"{key}={field_text(value)}"
                                                     for key, value in fields.items() if value != "")]
        return f"{' '.join(whose)}: {record['msg']}"
    return " ".join([record["msg"], *(f"{key}={field_text(value)}" for key, value in fields.items())])


def number(value: object, kind: type, default):
    try:
        return kind(value)
    except (TypeError, ValueError):
        return default


class DevOutput:
    """Turns the gateway's log lines into the table, access lines and readable log lines."""

    def __init__(self, log_format: str, colour: bool, base: str, verbose: bool = False):
        self.json = log_format == "json"
        self.verbose = verbose
        self.listening = threading.Event()  # the gateway logged "listening": its port is ours
        self.style = Style(colour and not self.json)
        self.err_style = Style(colour and not self.json and colour_wanted("auto", sys.stderr))
        self.base = base
        self.lock = threading.Lock()
        self.broken = False

    def out(self, text: str) -> None:
        with self.lock:
            if self.broken:
                return
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                self.broken = True  # nobody reads our log any more; the gateway keeps serving
                with contextlib.suppress(OSError):  # and the final flush at exit stays quiet
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def err(self, text: str) -> None:
        with self.lock:
            with contextlib.suppress(BrokenPipeError, ValueError):
                sys.stderr.write(text)
                sys.stderr.flush()

    def emit(self, event: dict) -> None:
        self.out(json.dumps(event) + "\n")

    # -- the table of functions
    def functions_table(self, listing: dict, note: str = "") -> None:
        functions = listing.get("functions", [])
        if self.json:
            self.emit({"event": "ready", "url": self.base, "functions": [
                {"name": f.get("name"), "runtime": f.get("summary", {}).get("runtime"),
                 "format": f.get("summary", {}).get("format"), "routes": f.get("summary", {}).get("routes", []),
                 "urls": [route_url(self.base, r) for r in f.get("summary", {}).get("routes", [])],
                 "sockets_up": f.get("summary", {}).get("sockets_up"),
                 "daemons": f.get("summary", {}).get("daemons")} for f in functions]})
            return
        s = self.style
        text = f"{s('fastfn dev', 'bold')}: gateway at {s(self.base, 'cyan')}{note}\n"
        if functions:
            text += "\n" + table(FUNCTION_HEADERS, function_rows(listing, self.base)) + "\n"
        else:
            text += "no functions yet: add one with `fastfn new NAME` (the folder is watched)\n\n"
        text += f"{s('Ctrl-C stops the gateway; function folders reload when they change', 'dim')}\n"
        self.out(text)

    def function_change(self, kind: str, name: str, summary: dict) -> None:
        routes = summary.get("routes", [])
        if self.json:
            self.emit({"event": f"function_{kind}", "time": now_iso(), "name": name,
                       "runtime": summary.get("runtime"), "format": summary.get("format"), "routes": routes,
                       "urls": [route_url(self.base, r) for r in routes]})
            return
        s = self.style
        colour = {"added": "green", "removed": "red", "changed": "yellow"}[kind]
        where = route_url(self.base, routes[0]) if routes else ""
        detail = "" if kind == "removed" else f"  {summary.get('runtime')} {summary.get('format')}  {where}"
        self.out(f"{s(now_clock(), 'dim')}  {s(kind.ljust(7), colour)} {s(name, 'bold')}{detail}\n")

    # -- the gateway's stderr
    def line(self, raw: str) -> None:
        raw = raw.rstrip("\r\n")
        if not raw.strip():
            return
        record = parse_record(raw)
        if record is None:  # not a log line (an early usage error, a watchdog crash): shown as it is
            self.err(raw + "\n")
            return
        logger, level, msg, when = (str(record.get("logger", "")), str(record.get("level", "")),
                                    record["msg"], str(record.get("time", "")))
        if logger == "gateway" and msg == "listening":
            self.listening.set()
        if logger == "gateway.access" and msg == "request":
            self.access(when, fields_of(record))
        elif logger == "watchdog.access":
            return  # the watchdog's side of a request the gateway logs too
        elif self.json:
            self.err(raw + "\n")
        elif not self.verbose and level in ("info", "debug", "trace") and logger != "fn":
            return  # the start-up and reload chatter the table and the change lines replace (-v shows it)
        else:
            s = self.err_style
            colour = {"warning": "yellow", "warn": "yellow", "error": "red", "critical": "red"}.get(level)
            lvl = s(level, colour, "bold") if colour else s(level, "dim")
            self.err(f"{s(clock_of(when), 'dim')} {lvl} [{logger}] {message_text(record)}\n")

    def access(self, when: str, fields: dict) -> None:
        """One access line of the gateway's (fields: method, path, function, status, ms, bytes,
        request_id, as the JSON log line has them)."""
        request_id = str(fields.get("request_id", ""))
        if request_id.startswith(OWN_REQUEST_PREFIX):
            return
        status, ms, size = number(fields.get("status"), int, 0), number(fields.get("ms"), float, 0.0), \
            number(fields.get("bytes"), int, 0)
        function = str(fields.get("function", "-"))
        if self.json:
            self.emit({"event": "request", "time": when, "method": fields.get("method"),
                       "path": fields.get("path"), "function": None if function == "-" else function,
                       "status": status, "ms": ms, "bytes": size, "request_id": fields.get("request_id")})
            return
        s = self.style
        method, path = str(fields.get("method", "?")), str(fields.get("path", "?"))
        who = s(f"→ {function}", "cyan") if function != "-" else s("(no function)", "dim")
        self.out(f"{s(clock_of(when), 'dim')}  {s(status_text(status), *status_colour(status))} "
                 f"{s(method.ljust(6), 'bold')} {path.ljust(16)}  {who}  "
                 f"{s(f'{ms:.1f}ms {human_bytes(size)}', 'dim')}  {s(request_id, 'dim')}\n")


def status_text(status: int) -> str:
    return str(status) if status else "---"


def status_colour(status: int) -> tuple[str, ...]:
    if status >= 500 or status == 0:
        return ("red", "bold")
    if status >= 400:
        return ("yellow", "bold")
    if status >= 300:
        return ("cyan",)
    return ("green",)


def human_bytes(size: int) -> str:
    if size < 1024:
        return f"{size}B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f}KiB"
    return f"{size / (1024 * 1024):.1f}MiB"


def now_iso() -> str:
    return datetime.datetime.now().isoformat(timespec="milliseconds")


def now_clock() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def clock_of(when: str) -> str:
    """HH:MM:SS.mmm of a log timestamp (2024-05-01T12:00:00.123, with a zone or not: Z, +01:00)."""
    _, sep, clock = when.partition("T")
    return CLOCK_ZONE.sub("", clock) if sep else when


CLOCK_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d)$")

