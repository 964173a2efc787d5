#!/usr/bin/env python3
"""What `fastfn dev` prints of the gateway's log lines (fastfn_cli/dev_output.py): the clock of a
timestamp, sizes, and the lines that are not log lines."""

import contextlib
import io
import unittest

import cli_path  # noqa: F401

from fastfn_cli.dev_output import DevOutput, clock_of, human_bytes, status_colour, status_text  # noqa: E402


def printed(output: DevOutput, *lines: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for line in lines:
            output.line(line)
    return out.getvalue(), err.getvalue()


class HelpersTest(unittest.TestCase):
    def test_clock_of_a_timestamp_with_or_without_its_zone(self):
        for when in ("2026-12-07T14:05:03.123", "2026-12-07T14:05:03.123Z", "2026-12-07T14:05:03.123+01:00",
                     "2026-12-07T14:05:03.123-0500"):
            with self.subTest(when=when):
                self.assertEqual(clock_of(when), "14:05:03.123")
        self.assertEqual(clock_of("garbage"), "garbage")

    def test_sizes_and_statuses(self):
        self.assertEqual([human_bytes(n) for n in (27, 2048, 3 << 20)], ["27B", "2.0KiB", "3.0MiB"])
        self.assertEqual(status_text(0), "---")
        self.assertEqual(status_colour(503), ("red", "bold"))
        self.assertEqual(status_colour(404), ("yellow", "bold"))
        self.assertEqual(status_colour(200), ("green",))


class LinesTest(unittest.TestCase):
    def test_a_line_that_is_not_a_log_line_goes_to_stderr_as_it_is(self):
        out, err = printed(DevOutput("text", False, "http://h"), "Segmentation fault", "   ")
        self.assertEqual((out, err), ("", "Segmentation fault\n"))

    def test_info_chatter_is_hidden_unless_verbose(self):
        line = '{"time":"2026-12-07T14:05:03.123Z","level":"info","logger":"gateway.registry","msg":"loaded"}'
        self.assertEqual(printed(DevOutput("text", False, "http://h"), line), ("", ""))
        _, err = printed(DevOutput("text", False, "http://h", verbose=True), line)
        self.assertEqual(err, "14:05:03.123 info [gateway.registry] loaded\n")

    def test_listening_marks_the_port_as_ours(self):
        output = DevOutput("text", False, "http://h")
        printed(output, '{"time":"2026-12-07T14:05:03.123Z","level":"info","logger":"gateway",'
                        '"msg":"listening address=tcp:127.0.0.1:8080"}')
        self.assertTrue(output.listening.is_set())


if __name__ == "__main__":
    unittest.main()
