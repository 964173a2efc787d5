#!/usr/bin/env python3
"""Parsing the command line (fastfn_cli/main.py and the commands' parsers): --version, help,
`dev ... -- ARGS`, timeouts, usage errors (EX_USAGE, 64), invoke's and logs' options."""

import contextlib
import io
import unittest

import cli_path  # noqa: F401

from fastfn_cli import VERSION  # noqa: E402
from fastfn_cli.main import main, parse, split_argv  # noqa: E402


def exit_of(argv):
    """(code, stdout, stderr) of parse(argv) when it exits (SystemExit)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parse(argv)
        except SystemExit as exc:
            return exc.code, out.getvalue(), err.getvalue()
    raise AssertionError(f"{argv} did not exit")


class VersionAndHelpTest(unittest.TestCase):
    def test_version(self):
        self.assertEqual(exit_of(["--version"]), (0, f"fastfn {VERSION}\n", ""))

    def test_help_command_is_help_option(self):
        self.assertEqual(split_argv(["help"]), (["--help"], []))
        self.assertEqual(split_argv(["help", "logs"]), (["logs", "--help"], []))
        code, out, _ = exit_of(["help", "describe"])
        self.assertEqual(code, 0)
        self.assertIn("usage: fastfn describe", out)

    def test_no_command_prints_help_and_exits_64(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(main([]), 64)
        self.assertIn("usage: fastfn", err.getvalue())


class ArgumentsTest(unittest.TestCase):
    def test_dev_passes_what_follows_the_double_dash_to_the_gateway(self):
        args = parse(["dev", "fns", "--", "--log-level", "debug"])
        self.assertEqual((args.dir, args.gateway_args), ("fns", ["--log-level", "debug"]))
        self.assertEqual(split_argv(["invoke", "x", "--", "y"]), (["invoke", "x", "--", "y"], []),
                         "only dev splits")

    def test_timeout_defaults_per_command_and_zero_is_none(self):
        self.assertEqual(parse(["invoke", "x"]).timeout, 60.0)
        self.assertEqual(parse(["call", "x"]).timeout, 60.0)
        for command in (["list"], ["describe", "x"], ["logs", "x"], ["health"]):
            self.assertEqual(parse(command).timeout, 10.0, command)
        self.assertIsNone(parse(["logs", "x", "--timeout", "0"]).timeout)

    def test_invoke_options(self):
        args = parse(["invoke", "hello", "--no-stdin", "-X", "PUT"])
        self.assertEqual((args.name, args.no_stdin, args.request, args.data), ("hello", True, "PUT", None))
        self.assertFalse(parse(["invoke", "hello"]).no_stdin)

    def test_logs_options(self):
        args = parse(["logs", "api/users", "-f", "-n", "5"])
        self.assertEqual((args.name, args.follow, args.lines), ("api/users", True, 5))
        self.assertEqual((parse(["logs", "x"]).follow, parse(["logs", "x"]).lines), (False, None))

    def test_describe_options(self):
        args = parse(["describe", "hello", "--json"])
        self.assertEqual((args.name, args.json), ("hello", True))

    def test_usage_errors_exit_64_with_one_line(self):
        for argv in (["frobnicate"], ["logs"], ["logs", "x", "-n", "-1"], ["logs", "x", "-n", "many"],
                     ["describe"], ["invoke"], ["list", "--bogus"], ["dev", "--log-format", "xml"]):
            with self.subTest(argv=argv):
                code, _, err = exit_of(argv)
                self.assertEqual(code, 64)
                self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main()
