"""Where fastfn's other parts are: the directory the command runs from (the zipapp's, or cli/ of a
source tree), fastfn-gateway and the templates, found next to it as installed, in a build tree or
a source tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

from fastfn_cli.errors import CliError
from fastfn_cli.exits import EXIT_CONNECT

PACKAGE_DIR = Path(__file__).resolve().parent


def program_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The directory of the `fastfn` program: for a zipapp (the package is inside the archive
    bindir/fastfn) bindir, for a source tree cli/."""
    for parent in package_dir.parents:
        if parent.is_file():
            return parent.parent
    return package_dir.parent


def gateway_candidates(program: Path) -> list[Path]:
    """Where fastfn-gateway may be, best first: next to fastfn (installed), then in a build tree
    (the zipapp at build/cli/fastfn: build/gateway/), then in a source tree's build*/ folders
    (cli/fastfn: the newest, `build` first)."""
    candidates = [program / "fastfn-gateway", program.parent / "gateway" / "fastfn-gateway"]
    builds = [p for p in program.parent.glob("build*/gateway/fastfn-gateway") if p.is_file()]
    builds.sort(key=lambda p: (p.parent.parent.name != "build", -p.stat().st_mtime))
    return candidates + builds


def find_gateway(env: Optional[dict] = None, program: Optional[Path] = None) -> str:
    """FASTFN_GATEWAY_BIN, else next to the program (installed), else a build tree, else PATH."""
    env = os.environ if env is None else env
    explicit = env.get("FASTFN_GATEWAY_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise CliError(f"FASTFN_GATEWAY_BIN={explicit} is not an executable file", EXIT_CONNECT)
        return explicit
    for candidate in gateway_candidates(program or program_dir()):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("fastfn-gateway")
    if found:
        return found
    raise CliError("cannot find fastfn-gateway (next to fastfn, in the build tree or on PATH); "
                   "build it with `ninja -C build` or set FASTFN_GATEWAY_BIN", EXIT_CONNECT)


def template_candidates(env: dict, program: Path) -> Sequence[Optional[str | Path]]:
    """FASTFN_TEMPLATES, a source tree's templates/ (cli/../templates), the installed
    share/fastfn/templates (bindir/../share/fastfn/templates)."""
    return [env.get("FASTFN_TEMPLATES"), program.parent / "templates",
            program.parent / "share" / "fastfn" / "templates"]


def templates_dir(env: Optional[dict] = None, program: Optional[Path] = None) -> Optional[Path]:
    env = os.environ if env is None else env
    for candidate in template_candidates(env, program or program_dir()):
        if candidate and (Path(candidate) / "sh-cgi").is_dir():
            return Path(candidate)
    return None
