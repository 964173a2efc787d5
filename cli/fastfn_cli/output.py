"""What the command prints: colours, tables, URLs of routes, JSON."""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import IO, Iterable, Sequence


class Style:
    """ANSI colours, or nothing."""

    CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
             "magenta": "35", "cyan": "36"}

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        codes = ";".join(self.CODES[n] for n in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def status(self, status: int) -> str:
        colour = ("green" if status < 300 else "cyan" if status < 400 else "yellow" if status < 500
                  else "red")
        return self(str(status), colour, "bold") if status >= 400 else self(str(status), colour)


def colour_wanted(choice: str, stream: IO) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[("-" if cell is None else str(cell)) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines) + "\n"


def route_url(target_base: str, route: str) -> str:
    if target_base.startswith("unix:"):
        return f"{target_base} {route}"
    return target_base + route


def write_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def restore_sigpipe() -> None:
    """One-shot commands end quietly in `| head`, as other Unix tools do."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def sockets_cell(summary: dict) -> str:
    """'2/3' sockets up of daemons, or 'cold' for a function started on demand and parked now."""
    if summary.get("warm") is False:
        return "cold"
    return f"{summary.get('sockets_up', 0)}/{summary.get('daemons', 0)}"


def function_rows(listing: dict, base: str) -> list[list[object]]:
    rows = []
    for fn in listing.get("functions", []):
        summary = fn.get("summary", {})
        routes = summary.get("routes", [])
        rows.append([fn.get("name"), summary.get("runtime"), summary.get("format"),
                     ",".join(routes) or "-",
                     sockets_cell(summary),
                     route_url(base, routes[0]) if routes else "-"])
    return rows


FUNCTION_HEADERS = ("NAME", "RUNTIME", "FORMAT", "ROUTES", "UP", "URL")

