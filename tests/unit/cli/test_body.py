#!/usr/bin/env python3
"""Stdin as the body (fastfn_cli/body.py): which kinds of stdin are one (stdin_kind), and what
BodySource.from_stdin makes of each: a character device (a terminal, /dev/null), a closed or an
empty stdin are no body; a pipe or a file with bytes is one, whole."""

import os
import stat
import subprocess
import sys
import tempfile
import unittest

from cli_path import CLI_DIR

from fastfn_cli.body import stdin_kind  # noqa: E402

# Prints what from_stdin found: "none", or "LENGTH|BODY" (LENGTH "-" when chunked).
PROBE = f"""
import sys
sys.path.insert(0, {str(CLI_DIR)!r})
from fastfn_cli.body import BodySource
body = BodySource.from_stdin()
if not body.present:
    print("none")
else:
    data = b"".join(body.pieces())
    print(("-" if body.length is None else str(body.length)) + "|" + data.decode())
"""


def probe(**popen) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, timeout=30, **popen)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


class StdinKindTest(unittest.TestCase):
    def test_modes(self):
        self.assertEqual(stdin_kind(stat.S_IFREG | 0o644), "file")
        self.assertEqual(stdin_kind(stat.S_IFIFO | 0o600), "stream")
        self.assertEqual(stdin_kind(stat.S_IFSOCK | 0o600), "stream")
        for mode in (stat.S_IFCHR, stat.S_IFDIR, stat.S_IFBLK):  # a tty and /dev/null are S_IFCHR
            self.assertIsNone(stdin_kind(mode | 0o600), oct(mode))

    def test_dev_null_and_a_terminal_are_character_devices(self):
        self.assertIsNone(stdin_kind(os.stat(os.devnull).st_mode))


class FromStdinTest(unittest.TestCase):
    def test_dev_null_is_no_body(self):
        self.assertEqual(probe(stdin=subprocess.DEVNULL), "none")

    def test_a_closed_stdin_is_no_body(self):
        self.assertEqual(probe(stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0)), "none")

    def test_an_empty_pipe_is_no_body(self):
        self.assertEqual(probe(input=b""), "none")

    def test_a_pipe_is_the_body_chunked(self):
        self.assertEqual(probe(input=b"hello\nworld"), "-|hello\nworld")

    def test_a_file_is_the_body_from_where_it_stands_with_its_length(self):
        with tempfile.TemporaryFile() as file:
            file.write(b"skipped:the rest")
            file.seek(len(b"skipped:"))
            self.assertEqual(probe(stdin=file), "8|the rest")
        with tempfile.TemporaryFile() as empty:
            self.assertEqual(probe(stdin=empty), "none")


if __name__ == "__main__":
    unittest.main()
