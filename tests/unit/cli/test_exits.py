#!/usr/bin/env python3
"""The exit-code scheme (fastfn_cli/exits.py): a function's own code as it is, fastfn's own codes at
64 and above (sysexits.h)."""

import unittest

import cli_path  # noqa: F401

from fastfn_cli import exits  # noqa: E402
from fastfn_cli.exits import (exit_code_for_answer, exit_code_for_call, exit_code_for_status,  # noqa: E402
                              help_table, reported_exit_code)


class StatusTest(unittest.TestCase):
    def test_each_status_class(self):
        for status, code in ((200, 0), (204, 0), (302, 0), (400, 65), (404, 67), (405, 65), (413, 65),
                             (429, 65), (500, 70), (502, 70), (503, 70), (504, 124)):
            with self.subTest(status=status):
                self.assertEqual(exit_code_for_status(status), code)

    def test_own_codes_cannot_be_mistaken_for_a_small_function_exit_code(self):
        own = [code for code, _, _ in exits.TABLE if code != 0]
        self.assertTrue(all(code >= 64 for code in own), own)
        self.assertEqual(len(own), len(set(own)), "one meaning per code")
        self.assertEqual((exits.EXIT_USAGE, exits.EXIT_CONNECT, exits.EXIT_PENDING), (64, 69, 75),
                         "EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL of sysexits.h")


class ReportedExitCodeTest(unittest.TestCase):
    def test_header_text_and_json_numbers(self):
        for value, code in (("3", 3), (" 9 ", 9), ("255", 255), (3, 3), ("137", 137)):
            with self.subTest(value=value):
                self.assertEqual(reported_exit_code(value), code)

    def test_zero_missing_and_garbage_leave_it_to_the_status(self):
        for value in ("0", 0, None, "", "x", "256", "-1", 256, True, 1.5):
            with self.subTest(value=value):
                self.assertIsNone(reported_exit_code(value))

    def test_answer_the_function_code_wins_over_the_status(self):
        self.assertEqual(exit_code_for_answer(500, "3"), 3)
        self.assertEqual(exit_code_for_answer(200, "9"), 9, "a trailer after a 200 head")
        self.assertEqual(exit_code_for_answer(500, "0"), 70)
        self.assertEqual(exit_code_for_answer(404, None), 67)
        self.assertEqual(exit_code_for_answer(200, None), 0)


class CallExitCodeTest(unittest.TestCase):
    def test_the_records_exit_code_when_it_has_one(self):
        self.assertEqual(exit_code_for_call({"function_status": 500, "exit_code": 3}), 3)

    def test_the_results_exit_code_header(self):
        self.assertEqual(exit_code_for_call({"function_status": 500}, "4"), 4)

    def test_else_the_status_of_the_last_run(self):
        self.assertEqual(exit_code_for_call({"function_status": 200}), 0)
        self.assertEqual(exit_code_for_call({"function_status": 500, "exit_code": 0}), 70)
        self.assertEqual(exit_code_for_call({"function_status": 504}), 124)
        self.assertEqual(exit_code_for_call({"function_status": 404}), 67)

    def test_a_run_without_an_answer_counts_as_502(self):
        self.assertEqual(exit_code_for_call({}), 70)
        self.assertEqual(exit_code_for_call({"function_status": 0}), 70)


class HelpTableTest(unittest.TestCase):
    def test_rows_start_with_their_code_and_stay_within_100_columns(self):
        text = help_table()
        for code, name, _ in exits.TABLE:
            self.assertRegex(text, rf"(?m)^  {code}\s+{name}")
        self.assertLessEqual(max(len(line) for line in text.splitlines()), 100)

    def test_a_selection_keeps_only_its_codes(self):
        text = help_table((0, 75))
        self.assertRegex(text, r"(?m)^  75\s+EX_TEMPFAIL")
        self.assertNotRegex(text, r"(?m)^  64")


if __name__ == "__main__":
    unittest.main()
