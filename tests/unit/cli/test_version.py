#!/usr/bin/env python3
"""fastfn_cli.VERSION is meson.build's project version (what `fastfn --version` prints)."""

import re
import unittest

from cli_path import REPO_ROOT

import fastfn_cli  # noqa: E402


class VersionTest(unittest.TestCase):
    def test_package_version_is_the_project_version(self):
        meson = (REPO_ROOT / "meson.build").read_text()
        match = re.search(r"project\('fastfn'.*?version:\s*'([^']+)'", meson, re.S)
        self.assertIsNotNone(match, "no version: in meson.build's project()")
        self.assertEqual(fastfn_cli.VERSION, match.group(1))


if __name__ == "__main__":
    unittest.main()
