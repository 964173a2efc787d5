#!/usr/bin/env python3
"""What `fastfn dev` prints of the gateway's JSON log lines (fastfn_cli/dev_output.py): fields read
from their keys (docs/CONFIG.md, --log-format json), the access line made of them, the other lines
as the text log writes them, the clock of a timestamp, sizes, and the lines that are not log lines."""

import contextlib
import io
import json
import unittest

import cli_path  # noqa: F401

from fastfn_cli.dev_output import (DevOutput, clock_of, fields_of, human_bytes, message_text,  # noqa: E402
                                   parse_record, status_colour, status_text)

ACCESS = ('{"time":"2026-12-07T14:05:03.123Z","level":"info","logger":"gateway.access","msg":"request",'
          '"method":"GET","path":"/hello/abc","function":"hello","status":200,"ms":1.25,"bytes":27,'
          '"request_id":"6f1c0a2e"}')


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


class RecordTest(unittest.TestCase):
    def test_fields_are_the_keys_after_the_records_own(self):
        record = parse_record(ACCESS)
        self.assertEqual(record["msg"], "request")
        self.assertEqual(fields_of(record), {"method": "GET", "path": "/hello/abc", "function": "hello",
                                             "status": 200, "ms": 1.25, "bytes": 27, "request_id": "6f1c0a2e"})

    def test_not_records(self):
        for line in ("2026-12-07T14:05:03.123 info [gateway] listening", "{not json", "[1, 2]", '{"level":"info"}'):
            self.assertIsNone(parse_record(line), line)

    def test_message_text_writes_the_fields_back_as_the_text_log_does(self):
        record = parse_record('{"time":"t","level":"warning","logger":"watchdog.cgi","msg":"function failed",'
                              '"request_id":"ab","pid":42,"exit":"exit code 3"}')
        self.assertEqual(message_text(record), 'function failed request_id=ab pid=42 exit="exit code 3"')
        line = parse_record('{"time":"t","level":"info","logger":"fn","msg":"a b=c","function":"hello",'
                            '"pid":42,"request_id":""}')
        self.assertEqual(message_text(line), "hello pid=42: a b=c", "a function's own line, whose it is")


class LinesTest(unittest.TestCase):
    def test_an_access_line_from_the_fields(self):
        out, err = printed(DevOutput("text", False, "http://h"), ACCESS)
        self.assertEqual(err, "")
        self.assertRegex(out, r"^14:05:03\.123  200 GET    /hello/abc        → hello  1\.2ms 27B  6f1c0a2e\n$")

    def test_an_access_line_as_a_json_event(self):
        out, _ = printed(DevOutput("json", False, "http://h"), ACCESS)
        self.assertEqual(json.loads(out), {"event": "request", "time": "2026-12-07T14:05:03.123Z", "method": "GET",
                                           "path": "/hello/abc", "function": "hello", "status": 200, "ms": 1.25,
                                           "bytes": 27, "request_id": "6f1c0a2e"})

    def test_our_own_polls_and_the_watchdogs_access_lines_are_left_out(self):
        own = ACCESS.replace('"6f1c0a2e"', '"fastfn-cli-42-1"')
        watchdog = ACCESS.replace('"gateway.access"', '"watchdog.access"')
        self.assertEqual(printed(DevOutput("text", False, "http://h"), own, watchdog), ("", ""))

    def test_a_warning_reads_as_in_the_text_log(self):
        line = ('{"time":"2026-12-07T14:05:03.123Z","level":"warning","logger":"watchdog.cgi",'
                '"msg":"function failed","pid":42,"exit":"exit code 3"}')
        _, err = printed(DevOutput("text", False, "http://h"), line)
        self.assertEqual(err, '14:05:03.123 warning [watchdog.cgi] function failed pid=42 exit="exit code 3"\n')

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
                        '"msg":"listening","address":"tcp:127.0.0.1:8080"}')
        self.assertTrue(output.listening.is_set())


if __name__ == "__main__":
    unittest.main()
