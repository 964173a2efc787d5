#!/usr/bin/env python3
"""Where fastfn finds its parts (fastfn_cli/paths.py): the program's directory inside a zipapp and
in a source tree, fastfn-gateway next to it, in a build tree or by FASTFN_GATEWAY_BIN, and the
templates."""

import os
import shutil
import tempfile
import unittest
from pathlib import Path

from cli_path import CLI_DIR, REPO_ROOT

from fastfn_cli.errors import CliError  # noqa: E402
from fastfn_cli.paths import find_gateway, gateway_candidates, program_dir, templates_dir  # noqa: E402


class PathsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="fastfn-cli-paths-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def executable(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return path

    def test_program_dir_of_a_zipapp_is_the_archives_folder(self):
        archive = self.executable(self.tmp / "bin" / "fastfn")
        self.assertEqual(program_dir(archive / "fastfn_cli"), self.tmp / "bin")

    def test_program_dir_of_the_source_tree_is_cli(self):
        self.assertEqual(program_dir(CLI_DIR / "fastfn_cli"), CLI_DIR)
        self.assertEqual(program_dir(), CLI_DIR, "these tests import the source tree's package")

    def test_gateway_next_to_the_program_then_the_build_tree(self):
        program = self.tmp / "build" / "cli"
        self.assertEqual(gateway_candidates(program)[:2],
                         [program / "fastfn-gateway", self.tmp / "build" / "gateway" / "fastfn-gateway"])
        built = self.executable(self.tmp / "build" / "gateway" / "fastfn-gateway")
        self.assertEqual(find_gateway({}, program), str(built))
        installed = self.executable(program / "fastfn-gateway")
        self.assertEqual(find_gateway({}, program), str(installed))

    def test_a_source_trees_build_folders(self):
        built = self.executable(self.tmp / "build-asan" / "gateway" / "fastfn-gateway")
        self.assertIn(built, gateway_candidates(self.tmp / "cli"))

    def test_fastfn_gateway_bin_wins_and_must_be_executable(self):
        explicit = self.executable(self.tmp / "gw")
        self.assertEqual(find_gateway({"FASTFN_GATEWAY_BIN": str(explicit)}, self.tmp), str(explicit))
        with self.assertRaises(CliError) as caught:
            find_gateway({"FASTFN_GATEWAY_BIN": str(self.tmp / "none")}, self.tmp)
        self.assertEqual(caught.exception.code, 69)

    def test_templates(self):
        self.assertEqual(templates_dir({}, CLI_DIR), REPO_ROOT / "templates", "a source tree's")
        installed = self.tmp / "share" / "fastfn" / "templates"
        (installed / "sh-cgi").mkdir(parents=True)
        self.assertEqual(templates_dir({}, self.tmp / "bin"), installed, "bindir/../share/fastfn/templates")
        self.assertEqual(templates_dir({"FASTFN_TEMPLATES": str(REPO_ROOT / "templates")}, self.tmp / "bin"),
                         REPO_ROOT / "templates")
        self.assertIsNone(templates_dir({}, self.tmp / "elsewhere" / "bin"))


if __name__ == "__main__":
    os.umask(0o022)
    unittest.main()
