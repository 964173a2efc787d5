#!/usr/bin/env python3
"""docs/CONFIG.md lists every name the code accepts, and the docs link nothing outside the repository.

The names come from the code itself, each in two independent ways, so that a changed help text, a
moved table or a broken regex fails the test instead of making it pass on nothing:

- flags: the `--help` of fastfn-watchdog and fastfn-gateway, and the option tables in the sources;
- environment variables: the help texts, and the string literals the C++ sources (watchdog/,
  gateway/, common/) look up in the environment;
- fastfn.json and fn.config.json keys: the accepted-key lists in gateway/config.cpp and
  gateway/function_config.cpp, and the "known keys" list the real gateway prints for an unknown
  key (at start for fastfn.json, in its log for fn.config.json).

Every extraction asserts a plausible minimum count. A name counts as documented when it is the
first word of a `code span` in a table row of its binary's or file's section of CONFIG.md (one row
per name), and the key tables list no key the parser rejects. Each check reports every missing name
at once. Run alone (cheap: two short-lived gateways, no build): python3 tests/integration/test_config_reference.py
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gateway_support  # noqa: E402
import harness  # noqa: E402
from gateway_support import gateway_binary  # noqa: E402
from harness import REPO_ROOT, watchdog_binary  # noqa: E402

CONFIG_MD = REPO_ROOT / "docs" / "CONFIG.md"
SOURCE_DIRS = ("watchdog", "gateway", "common")
# The section of CONFIG.md each binary's or file's names must be in.
WATCHDOG, GATEWAY, FASTFN_JSON, FN_CONFIG = "fastfn-watchdog", "fastfn-gateway", "fastfn.json", "fn.config.json"
# A key no parser knows, to make the gateway print the ones it does.
UNKNOWN_KEY = "zz_not_a_key"
KNOWN_KEYS = re.compile(r'unknown key "([\w.]*?)' + UNKNOWN_KEY + r'" \(known keys: ([^)]*)\)')

# Environment look-ups in the C++ sources: (what, regex whose group 1 is the name, minimum found
# over all sources). The minimums are what the code has today, less a margin: a regex that stops
# matching (the code was rewritten) fails here rather than checking nothing.
ENV_PATTERNS = (
    ("env.find(\"NAME\")", re.compile(r'\b(?:env|source)\.find\("([A-Za-z_]\w*)"\)'), 5),
    ("lookup(env, \"NAME\")", re.compile(r'\blookup\(env, "([A-Za-z_]\w*)"\)'), 2),
    ("getenv(\"NAME\")", re.compile(r'\bgetenv\("([A-Za-z_]\w*)"\)'), 0),
    ("starts_with(\"NAME=\") over an env list", re.compile(r'starts_with\("([A-Za-z_]\w*)="\)'), 1),
    # gateway/config.cpp's kEnvVars: {"FN_LISTEN", [](Layer& l, ...
    ("the gateway's variable table", re.compile(r'\{"([A-Z][A-Z0-9_]*)",\s*\[\]\('), 10),
    # watchdog/options.cpp's specs(): {"--format", "format", true, ...
    ("the watchdog's option table", re.compile(r'\{"--[a-z][a-z0-9-]*", "(\w+)", (?:true|false),'), 20),
)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def sources(directory: str) -> list[Path]:
    root = REPO_ROOT / directory
    return sorted(p for p in root.rglob("*") if p.suffix in (".cpp", ".h") and p.is_file())


def help_text(binary: str) -> str:
    result = harness.run_cli(["--help"], binary=binary, timeout=10)
    if result.returncode != 0:
        raise AssertionError(f"{binary} --help failed\n{result.describe()}")
    return result.stdout


def help_flags(text: str) -> set[str]:
    """The flags in a help text's option column: lines starting "  --flag" or "  -h, --help"."""
    flags = set()
    for short, long in re.findall(r"^ +(-[A-Za-z]|--[a-z][a-z0-9-]*)(?:, (--[a-z][a-z0-9-]*))?", text, re.M):
        flags.update(f for f in (short, long) if f)
    return flags


def doc_sections() -> dict[str, str]:
    """CONFIG.md's "## " sections by title."""
    found: dict[str, list[str]] = {}
    current = None
    for line in read(CONFIG_MD).splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {title: "\n".join(lines) for title, lines in found.items()}


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|") and not re.match(r"^\|[-| :]+$", line)]


def code_words(text: str) -> set[str]:
    """The first word of every `code span` in `text` (`--max-body SIZE` gives --max-body)."""
    return {span.split()[0] for span in re.findall(r"`([^`]+)`", text) if span.split()}


def documented(section: str) -> set[str]:
    return set().union(*(code_words(row) for row in table_rows(section)))


def first_cells(section: str) -> set[str]:
    """The names the rows of a section's tables are about (their first cell's code spans)."""
    return set().union(*(code_words(row.split("|")[1]) for row in table_rows(section)))


class ConfigReferenceTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls) -> None:
        harness.check_executable(watchdog_binary(), "fastfn-watchdog (set FASTFN_WATCHDOG)")
        harness.check_executable(gateway_binary(), "fastfn-gateway (set FASTFN_GATEWAY)")
        cls.sections = doc_sections()
        for title in (WATCHDOG, GATEWAY, FASTFN_JSON, FN_CONFIG):
            if title not in cls.sections:
                raise AssertionError(f"{CONFIG_MD} has no section \"## {title}\" (found: {sorted(cls.sections)})")
        cls.help = {WATCHDOG: help_text(watchdog_binary()), GATEWAY: help_text(gateway_binary())}

    def assert_documented(self, expected: dict[str, dict[str, str]]) -> None:
        """expected: section -> {name: where the name was found}. Fails listing every missing name."""
        missing = [f"  {name} (from {origin}) is not in a table row of \"## {title}\""
                   for title, names in expected.items()
                   for name, origin in sorted(names.items())
                   if name not in documented(self.sections[title])]
        self.assert_none(missing, f"docs/CONFIG.md lacks {len(missing)} name(s):\n" + "\n".join(missing))

    def assert_none(self, problems: list, message: str) -> None:
        if problems:  # assertFalse would print the list's repr before the message
            self.fail(message)

    def assert_at_least(self, names, minimum: int, what: str) -> None:
        self.assertGreaterEqual(len(names), minimum,
                                f"{what}: found only {sorted(names)}; has the code changed shape?")

    # ---- flags

    def source_flags(self) -> dict[str, set[str]]:
        # The watchdog's option table and argv checks; the gateway's argv checks in main.cpp.
        watchdog_src = read(REPO_ROOT / "watchdog" / "options.cpp")
        flags = {
            WATCHDOG: set(re.findall(r'\{"(--[a-z][a-z0-9-]*)", ', watchdog_src)) |
                      set(re.findall(r'\barg == "(--?[A-Za-z][\w-]*)"', watchdog_src)),
            GATEWAY: set(re.findall(r'\barg == "(--?[A-Za-z][\w-]*)"', read(REPO_ROOT / "gateway" / "main.cpp"))),
        }
        self.assert_at_least(flags[WATCHDOG], 20, "flags in watchdog/options.cpp")
        self.assert_at_least(flags[GATEWAY], 7, "flags in gateway/main.cpp")
        return flags

    def test_every_flag_is_documented(self) -> None:
        expected: dict[str, dict[str, str]] = {}
        for title, flags in self.source_flags().items():
            from_help = help_flags(self.help[title])
            self.assert_at_least(from_help, 20 if title == WATCHDOG else 7, f"flags in {title} --help")
            expected[title] = {f: "the source" for f in flags} | {f: "--help" for f in from_help}
        self.assert_documented(expected)

    def test_help_lists_every_flag(self) -> None:
        # A flag the parser takes but --help omits is one users cannot find.
        missing = [f"  {title}: {flag}" for title, flags in self.source_flags().items()
                   for flag in sorted(flags - help_flags(self.help[title]))]
        self.assert_none(missing, "flags accepted but missing from --help:\n" + "\n".join(missing))

    def test_documented_flags_exist(self) -> None:
        accepted = self.source_flags()
        extra = [f"  \"## {title}\": {flag}" for title in (WATCHDOG, GATEWAY)
                 for flag in sorted(first_cells(self.sections[title]))
                 if flag.startswith("-") and flag not in accepted[title] | help_flags(self.help[title])]
        self.assert_none(extra, "docs/CONFIG.md documents flags the binaries do not accept:\n" + "\n".join(extra))

    # ---- environment variables

    def test_every_environment_variable_is_documented(self) -> None:
        expected: dict[str, dict[str, str]] = {WATCHDOG: {}, GATEWAY: {}}
        common: dict[str, str] = {}
        for what, pattern, minimum in ENV_PATTERNS:
            found = 0
            for directory in SOURCE_DIRS:
                for path in sources(directory):
                    for name in pattern.findall(read(path)):
                        found += 1
                        origin = f"{what} in {path.relative_to(REPO_ROOT)}"
                        target = {"watchdog": expected[WATCHDOG], "gateway": expected[GATEWAY]}.get(directory, common)
                        target.setdefault(name, origin)
            self.assertGreaterEqual(found, minimum, f"{what}: {found} match(es) in the sources, expected "
                                                    f"at least {minimum}; has the code changed shape?")
        watchdog_help = set(re.findall(r"\[([a-z_]+)\]", self.help[WATCHDOG]))
        self.assert_at_least(watchdog_help, 20, "[variables] in fastfn-watchdog --help")
        watchdog_help |= set(re.findall(r"\b(fprocess)\b", self.help[WATCHDOG]))
        gateway_help = set(re.findall(r"\b((?:FN|FASTFN|XDG)_[A-Z0-9_]+)\b", self.help[GATEWAY]))
        self.assert_at_least(gateway_help, 15, "FN_* variables in fastfn-gateway --help")
        for name in watchdog_help:
            expected[WATCHDOG].setdefault(name, "fastfn-watchdog --help")
        for name in gateway_help:
            expected[GATEWAY].setdefault(name, "fastfn-gateway --help")
        self.assert_documented(expected)
        # common/ serves both binaries: its variables may sit in either section.
        everywhere = documented(self.sections[WATCHDOG]) | documented(self.sections[GATEWAY])
        missing = sorted(name for name in common if name not in everywhere)
        self.assert_none(missing, f"variables read in common/ missing from docs/CONFIG.md: {missing}")

    # ---- fastfn.json and fn.config.json keys

    def source_keys(self) -> dict[str, set[str]]:
        config_cpp = read(REPO_ROOT / "gateway" / "config.cpp")
        # file_keys(): {"functions-dir", [](Layer& l, const Value& v) { ...
        file_keys = set(re.findall(r'\{"([a-z][a-z0-9-]*)",\s*\[\]\(Layer& \w+, const Value& \w+\)', config_cpp))
        self.assert_at_least(file_keys, 8, "fastfn.json keys in gateway/config.cpp file_keys()")
        function_cpp = read(REPO_ROOT / "gateway" / "function_config.cpp")
        block = re.search(r"kFunctionKeys = \{([^}]*)\}", function_cpp)
        self.assertIsNotNone(block, "kFunctionKeys not found in gateway/function_config.cpp")
        fn_keys = set(re.findall(r'"(\w+)"', block.group(1)))
        self.assert_at_least(fn_keys, 12, "kFunctionKeys in gateway/function_config.cpp")
        # Nested objects: a key set then for_each_key(value, kKeys, "worker_pool.", ...).
        nested = re.findall(r'kKeys = \{([^}]*)\};\s*for_each_key\(\w+, kKeys, "(\w+)\."', function_cpp)
        prefixes = {prefix for _, prefix in nested}
        self.assertTrue({"worker_pool", "assets"} <= prefixes,
                        f"nested key sets in gateway/function_config.cpp: found {sorted(prefixes)}")
        for names, prefix in nested:
            fn_keys.add(prefix)
            fn_keys |= {f"{prefix}.{name}" for name in re.findall(r'"(\w+)"', names)}
        return {FASTFN_JSON: file_keys, FN_CONFIG: fn_keys}

    def gateway_keys(self) -> dict[str, set[str]]:
        """The known-key lists the real gateway prints for an unknown key in each kind of file."""
        tmp = tempfile.mkdtemp(prefix="fastfn-cfgref-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # fastfn.json: refused at start, one line, exit 2 (nothing is started).
        config = Path(tmp) / "fastfn.json"
        config.write_text(json.dumps({UNKNOWN_KEY: 1}))
        result = gateway_support.run_gateway_cli(["--config", str(config), tmp])
        self.assertEqual(result.returncode, 2, result.describe())
        self.assertEqual(len(result.stderr_lines()), 1, result.describe())
        listed = KNOWN_KEYS.findall(result.stderr)
        self.assertEqual(len(listed), 1, result.describe())
        file_keys = {k.strip() for k in listed[0][1].split(",")}
        self.assert_at_least(file_keys, 8, "fastfn.json known keys printed by the gateway")
        # fn.config.json: one function per level of nesting, each skipped with a log line.
        functions = gateway_support.FunctionsDir(os.path.join(tmp, "tree"))
        gateway_support.write_json(functions.root / "fn.config.json", {"assets": {"dir": "public", UNKNOWN_KEY: 1}})
        functions.add("top", {"handler.sh": "#!/bin/sh\n"}, {UNKNOWN_KEY: 1})
        functions.add("pool", {"handler.sh": "#!/bin/sh\n"}, {"worker_pool": {UNKNOWN_KEY: 1}})
        with gateway_support.Gateway(functions) as gw:
            log = gw.wait_log(lambda text: len(KNOWN_KEYS.findall(text)) >= 3 and text, what="3 unknown-key lines")
        fn_keys: set[str] = set()
        for prefix, names in KNOWN_KEYS.findall(log):
            if prefix:
                fn_keys.add(prefix.rstrip("."))
            fn_keys |= {prefix + name.strip() for name in names.split(",")}
        self.assert_at_least(fn_keys, 20, "fn.config.json known keys printed by the gateway")
        return {FASTFN_JSON: file_keys, FN_CONFIG: fn_keys}

    def test_every_config_key_is_documented(self) -> None:
        expected: dict[str, dict[str, str]] = {FASTFN_JSON: {}, FN_CONFIG: {}}
        for origin, keys in (("the gateway's known-keys line", self.gateway_keys()),
                             ("the accepted-key lists in gateway/", self.source_keys())):
            for title, names in keys.items():
                for name in names:
                    expected[title].setdefault(name, origin)
        self.assert_documented(expected)

    def test_documented_keys_exist(self) -> None:
        # DESIGN.md names keys the code does not accept yet; the key tables must not list them.
        accepted = self.source_keys()
        extra = [f"  \"## {title}\": {key}" for title in (FASTFN_JSON, FN_CONFIG)
                 for key in sorted(first_cells(self.sections[title])) if key not in accepted[title]]
        self.assert_none(extra, "docs/CONFIG.md documents keys the gateway refuses:\n" + "\n".join(extra))

    # ---- links

    def test_relative_links_stay_inside_the_repository(self) -> None:
        files = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
        inline = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
        reference = re.compile(r"^\s*\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
        checked, broken = 0, []
        for path in files:
            text = read(path)
            text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)  # code is not links
            text = re.sub(r"`[^`\n]*`", "", text)
            for target in inline.findall(text) + reference.findall(text):
                if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # http:, https:, mailto: and anchors in the same page
                checked += 1
                file_part = target.split("#", 1)[0].split("?", 1)[0]
                resolved = (path.parent / file_part).resolve()
                where = f"  {path.relative_to(REPO_ROOT)}: ({target})"
                if target.startswith("/") or not resolved.is_relative_to(REPO_ROOT):
                    broken.append(f"{where} points outside the repository")
                elif not resolved.exists():
                    broken.append(f"{where} points to a missing file")
        self.assertGreaterEqual(checked, 5, "relative links found in README.md and docs/*.md; the regex broke?")
        self.assert_none(broken, "links that leave the repository or point to nothing:\n" + "\n".join(broken))


if __name__ == "__main__":
    unittest.main(verbosity=2)
