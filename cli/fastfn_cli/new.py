"""`fastfn new NAME`: a function folder from a template, built aside and renamed in whole."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from fastfn_cli.errors import CliError
from fastfn_cli.exits import EXIT_CANTCREAT, EXIT_OK, EXIT_OSFILE, EXIT_USAGE
from fastfn_cli.output import restore_sigpipe
from fastfn_cli.paths import find_gateway, templates_dir

TEMPLATES = ("python-http", "node-http", "python-event", "node-event", "cpp-http", "sh-cgi",
             "php-cgi", "lua-cgi", "python-flask", "python-fastapi", "node-express", "go-http",
             "rust-http")
DEFAULT_TEMPLATE = "python-http"
# fastfn new

NAME_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_name(name: str) -> None:
    """Function names become URL paths (`fastfn new api/users` serves /api/users)."""
    segments = name.split("/")
    problems = []
    if not name or any(not NAME_SEGMENT.fullmatch(s) for s in segments):
        problems.append("use letters, digits, '-', '_' and '.', starting with a letter or digit, "
                        "with '/' between folders (api/users)")
    elif any(s == "node_modules" for s in segments):
        problems.append("node_modules folders are never functions")
    elif segments[0] in ("console", "_fn", "_"):
        problems.append(f"/{segments[0]} is reserved by the gateway")
    elif len(name) > 200:
        problems.append("too long")
    if problems:
        raise CliError(f"bad function name {name!r}: {problems[0]}", EXIT_USAGE)


def template_summary(folder: Path) -> str:
    try:
        config = json.loads((folder / "fn.config.json").read_text())
        return f"runtime {config.get('runtime', '?')}, format {config.get('format', 'cgi')}"
    except (OSError, ValueError):
        return ""


def built_cpp_handler() -> Optional[Path]:
    """The compiled cpp-http handler: FASTFN_CPP_HANDLER, or in the build tree next to the gateway."""
    if os.environ.get("FASTFN_CPP_HANDLER"):
        return Path(os.environ["FASTFN_CPP_HANDLER"])
    candidates = []
    with contextlib.suppress(CliError):
        gateway = Path(find_gateway())
        candidates.append(gateway.parent.parent / "templates" / "cpp-http" / "handler")
        candidates.append(gateway.parent.parent / "libexec" / "fastfn" / "cpp-http-handler")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def build_go_handler(folder: Path, target: Path) -> str:
    """Builds go-http's `handler` in `folder` as a Go user would (go build); a note when it cannot."""
    go = shutil.which("go")
    how = f"build it with `go build -o handler .` in {target}"
    if go is None:
        return f"note: go-http serves an executable `handler` in the folder: install Go and {how}\n"
    env = dict(os.environ, CGO_ENABLED="0")
    result = subprocess.run([go, "build", "-o", "handler", "."], cwd=folder, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        return f"note: go build failed, {how}:\n{result.stderr}"
    return ""


def cmd_new(args: argparse.Namespace) -> int:
    source_root = templates_dir()
    if args.list_templates:
        restore_sigpipe()  # `fastfn new --list-templates | head` ends quietly
        for name in TEMPLATES:
            summary = template_summary(source_root / name) if source_root else ""
            sys.stdout.write(f"{name}\t{summary}\n" if summary else f"{name}\n")
        return EXIT_OK
    if not args.name:
        raise CliError("new: NAME is required (see fastfn new --help)", EXIT_USAGE)
    name = args.name.strip("/")
    validate_name(name)
    if source_root is None:
        raise CliError("cannot find the templates folder (set FASTFN_TEMPLATES to fastfn's templates/)",
                       EXIT_OSFILE)
    source = source_root / args.template
    if not source.is_dir():
        raise CliError(f"template {args.template} is missing from {source_root}", EXIT_OSFILE)
    functions_dir = Path(args.dir) if args.dir else Path("functions")
    target = functions_dir / name
    if target.exists() or target.is_symlink():
        raise CliError(f"{target} already exists; not overwriting it (pick another NAME or remove it)",
                       EXIT_CANTCREAT)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Built aside in a dotfolder (never a function) and renamed in, so a running gateway sees the
        # function whole.
        stage = Path(tempfile.mkdtemp(prefix=".fastfn-new-", dir=target.parent))
        try:
            staged = stage / "fn"
            # cpp-http's `handler` in the source tree is scripts/dev's link into the build dir: the
            # built program is copied in below instead.
            # A template's installed packages and builds stay behind (scripts/dev's gateway made
            # them): the new function installs (npm ci) or builds (cargo) its own.
            skip = ["meson.build", "__pycache__", "*.pyc", "node_modules", ".fastfn", "Cargo.lock"] + (
                ["handler"] if args.template in ("cpp-http", "go-http") else [])
            # python-http and node-http link their stdio loop from fastfn's shims/: the function
            # gets a copy of the file, so it runs wherever it is moved.
            shutil.copytree(source, staged, symlinks=False, ignore=shutil.ignore_patterns(*skip))
            note = ""
            if args.template == "cpp-http":
                handler = built_cpp_handler()
                if handler is not None:
                    shutil.copy2(handler, staged / "handler")
                    os.chmod(staged / "handler", 0o755)
                else:
                    note = ("note: cpp-http serves an executable `handler` in the folder: build fastfn "
                            f"(ninja -C build) and copy build/templates/cpp-http/handler to {target}/\n")
            if args.template == "go-http":
                note = build_go_handler(staged, target)
            if target.exists():
                raise CliError(f"{target} already exists; not overwriting it", EXIT_CANTCREAT)
            os.rename(staged, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except OSError as exc:
        raise CliError(f"cannot create {target}: {exc.strerror or exc}", EXIT_CANTCREAT) from None
    sys.stdout.write(f"created {target} from {args.template} ({template_summary(source)})\n")
    if note:
        sys.stdout.write(note)
    dev = "fastfn dev" if functions_dir.resolve() == Path("functions").resolve() else f"fastfn dev {functions_dir}"
    sys.stdout.write(f"next: {dev}   then: fastfn invoke {name}\n")
    return EXIT_OK


def add_parser(sub, fmt) -> None:
    new = sub.add_parser("new", formatter_class=fmt, help="create a function folder from a template",
                         description=f"""\
Creates DIR/NAME (DIR defaults to ./functions) from a template: {', '.join(TEMPLATES)}
(default {DEFAULT_TEMPLATE}). It never overwrites: an existing DIR/NAME is an error (exit 73). NAME
becomes the route /NAME; use letters, digits, '-', '_' and '.', and '/' for nested folders
(api/users). A running `fastfn dev` picks the new folder up by itself.
Templates come from FASTFN_TEMPLATES, fastfn's templates/ of a source tree, or the installed
share/fastfn/templates.""")
    new.add_argument("name", nargs="?", metavar="NAME")
    new.add_argument("--template", "-t", choices=TEMPLATES, default=DEFAULT_TEMPLATE,
                     help=f"the starter (default {DEFAULT_TEMPLATE})")
    new.add_argument("--dir", metavar="DIR", help="the functions folder (default ./functions, created)")
    new.add_argument("--list-templates", action="store_true", help="list the templates and exit")
    new.set_defaults(func=cmd_new)
