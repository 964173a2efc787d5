"""Puts the source tree's cli/ first on sys.path, so `import fastfn_cli` is the package under test."""

import sys
from pathlib import Path

sys.dont_write_bytecode = True
REPO_ROOT = Path(__file__).resolve().parents[3]
CLI_DIR = REPO_ROOT / "cli"
sys.path.insert(0, str(CLI_DIR))
