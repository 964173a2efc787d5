#!/usr/bin/env python3
"""A real CGI program nobody here wrote: git's smart HTTP server, `git http-backend`, served by
`fastfn-watchdog --format cgi --cgi-headers` on tcp loopback and driven by the real `git` client.

It depends on PATH_INFO, QUERY_STRING, CONTENT_TYPE, HTTP_* headers (Git-Protocol, Content-Encoding),
the CGI Status header, and request and response bodies streamed both ways (a ~20 MiB push is sent
chunked, and the clone that follows receives a ~20 MiB pack).
Run alone: python3 tests/integration/test_watchdog_git.py
"""

import sys

sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import MIB  # noqa: E402

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
GIT_TIMEOUT = 120  # seconds, per git command
FILE_SIZE = 20 * MIB


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_executable(HTTP_BACKEND, "git http-backend")
    if shutil.which("git") is None:
        raise RuntimeError("git is not installed")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


class GitHttpBackendTest(harness.WatchdogTestCase):
    def setUp(self):
        super().setUp()
        self.root = self.make_tempdir("fastfn-git-")
        self.repos = os.path.join(self.root, "repos")
        self.home = os.path.join(self.root, "home")
        os.makedirs(self.repos)
        os.makedirs(self.home)
        self.git_env = {k: v for k, v in os.environ.items()
                        if not k.startswith("GIT_") and k.lower() not in (
                            "http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        self.git_env.update({"HOME": self.home, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                             "LC_ALL": "C", "XDG_CONFIG_HOME": os.path.join(self.home, ".config")})
        for key, value in (("user.name", "fastfn test"), ("user.email", "test@fastfn.invalid"),
                           ("init.defaultBranch", "main"), ("advice.detachedHead", "false")):
            self.git("config", "--global", key, value)
        self.bare = os.path.join(self.repos, "repo.git")
        self.git("init", "--bare", self.bare)
        self.git("-C", self.bare, "config", "http.receivepack", "true")
        self.wd = self.start_watchdog(
            [HTTP_BACKEND],
            ["--format", "cgi", "--cgi-headers", "--max-body", "256MiB", "--exec-timeout", "120s",
             "--name", "git"],
            listen="tcp", env={"GIT_PROJECT_ROOT": self.repos, "GIT_HTTP_EXPORT_ALL": "1"})
        self.url = f"http://127.0.0.1:{self.wd.address.port}/repo.git"

    def git(self, *args: str, cwd: str = None, check: bool = True) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(["git", *args], cwd=cwd, env=self.git_env, stdin=subprocess.DEVNULL,
                                    capture_output=True, timeout=GIT_TIMEOUT, start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            self.fail(f"git {' '.join(args)} did not finish in {GIT_TIMEOUT}s: {exc}"
                      f"\n{self.wd.describe() if hasattr(self, 'wd') else ''}")
        if check and result.returncode != 0:
            self.fail(f"git {' '.join(args)} failed ({result.returncode}):\n"
                      f"{result.stderr.decode(errors='replace')[-3000:]}"
                      f"\n{self.wd.describe() if hasattr(self, 'wd') else ''}")
        return result

    def clone(self, name: str) -> str:
        path = os.path.join(self.root, name)
        self.git("clone", self.url, path)
        return path

    def commit_random_file(self, work: str, name: str, size: int) -> str:
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            for chunk in harness.pattern_chunks(size):
                f.write(chunk)
        self.git("add", name, cwd=work)
        self.git("commit", "-q", "-m", f"add {name}", cwd=work)
        return sha256_file(path)

    def head(self, work: str) -> str:
        return self.git("rev-parse", "HEAD", cwd=work).stdout.decode().strip()

    def test_dumb_http_file_is_served_by_path_info(self):
        work = self.clone("work")
        self.commit_random_file(work, "small.bin", 1024)
        self.git("push", "origin", "main", cwd=work)  # HEAD of an empty repository is served empty
        response = self.wd.get("/repo.git/HEAD")
        self.assertEqual(response.status, 200, f"{response!r}\n{self.wd.describe()}")
        self.assertEqual(response.body, b"ref: refs/heads/main\n")

    def test_unknown_repository_gets_the_programs_404_status(self):
        response = self.wd.get("/nope.git/info/refs?service=git-upload-pack")
        self.assertEqual(response.status, 404, f"{response!r}\n{self.wd.describe()}")
        result = self.git("ls-remote", self.url.replace("repo.git", "nope.git"), check=False)
        self.assertNotEqual(result.returncode, 0, "ls-remote of a missing repository succeeded")

    def test_smart_refs_advertisement_uses_query_string_and_content_type(self):
        response = self.wd.get("/repo.git/info/refs?service=git-upload-pack")
        self.assertEqual(response.status, 200, f"{response!r}\n{self.wd.describe()}")
        self.assertEqual(response.headers.get("Content-Type"),
                         "application/x-git-upload-pack-advertisement", repr(response))
        self.assertTrue(response.body.startswith(b"001e# service=git-upload-pack\n"), repr(response))

    def test_push_of_20_mib_then_clone_returns_the_same_file(self):
        first = self.clone("first")  # an empty repository: exercises the refs advertisement
        digest = self.commit_random_file(first, "random.bin", FILE_SIZE)
        self.git("push", "origin", "main", cwd=first)  # ~20 MiB pack: a streamed request body
        second = self.clone("second")  # ~20 MiB pack back: a streamed response body
        self.assertEqual(self.head(second), self.head(first))
        self.assertEqual(sha256_file(os.path.join(second, "random.bin")), digest,
                         "the file cloned back differs from the one pushed")
        self.git("fsck", "--full", cwd=second)
        harness.wait_until(lambda: harness.zombie_count(self.wd.pid) == 0, 5,
                           message=lambda: f"zombies under the watchdog\n{self.wd.describe()}")

    def test_ls_remote_lists_the_pushed_branch(self):
        work = self.clone("work")
        self.commit_random_file(work, "small.bin", 4096)
        self.git("push", "origin", "main", cwd=work)
        listing = self.git("ls-remote", self.url).stdout.decode()
        self.assertIn(f"{self.head(work)}\trefs/heads/main", listing)

    def test_fetch_after_a_second_push_gets_the_new_commit(self):
        first = self.clone("first")
        self.commit_random_file(first, "one.bin", 64 * 1024)
        self.git("push", "origin", "main", cwd=first)
        second = self.clone("second")
        self.commit_random_file(first, "two.bin", 2 * MIB)
        self.git("push", "origin", "main", cwd=first)
        self.git("pull", "-q", "--ff-only", "origin", "main", cwd=second)
        self.assertEqual(self.head(second), self.head(first))


if __name__ == "__main__":
    unittest.main(verbosity=2)
