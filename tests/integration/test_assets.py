#!/usr/bin/env python3
"""Integration tests of the gateway's static assets (DESIGN.md, "Assets"; issue 6).

Each test builds a functions dir whose root fn.config.json sets {"assets": {"dir": "public"}}, with a
sh function "hello" next to the assets dir, a secret file next to the assets dir and symlinks inside it
pointing out, then starts the real gateway (FASTFN_GATEWAY) and checks from outside: files served
with Content-Type, ETag, Last-Modified, 304, Range (206/416), HEAD; every traversal shape sent over a
raw socket (clients normalise paths) answers 404/400 JSON and never serves a byte from outside the
folder; dotfiles refused; run_worker_first; functions still route.
Run alone: python3 tests/integration/test_assets.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import email.utils  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import (FunctionsDir, Gateway, GatewayTestCase, check_binaries,  # noqa: E402
                             parse_kv, write_json)

SECRET = b"TOP-SECRET-5f0c2a: must never leave the gateway\n"
INDEX = b"<!doctype html><title>home</title>\n"
CSS = b"body { color: #333 }\n"


def setUpModule():
    check_binaries()


def raw_get(gw: Gateway, target: str, method: str = "GET") -> harness.Response:
    """One request with `target` exactly as given on the request line (no client normalisation)."""
    with gw.connection(timeout=10.0) as conn:
        conn.send_raw(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      .encode("latin-1"))
        return conn.read_response(method)


class AssetsCase(GatewayTestCase):
    """A functions dir with an assets dir "public" and a function "hello" next to it."""

    def build(self, assets: dict) -> FunctionsDir:
        fns = self.functions()
        self.addCleanup(fns.cleanup)
        fns.sh_env("hello")
        write_json(fns.root / "fn.config.json", {"assets": assets})
        self.public = public = fns.root / "public"
        files = {
            "index.html": INDEX,
            "css/site.css": CSS,
            "app.js": b"console.log('hi');\n",
            "data.json": b'{"ok": true}\n',
            "logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
            "pixel.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
            "blob.unknownext": b"\x00\x01\x02",
            "docs/index.html": b"<p>docs</p>\n",
            "hello/index.html": b"<p>shadowed by the function</p>\n",
            "shadow.txt": b"the asset\n",
            "numbers.txt": b"0123456789abcdefghij",
            ".env": SECRET,
            ".git/config": SECRET,
            "css/.hidden": SECRET,
        }
        for name, data in files.items():
            path = public / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        # Outside the folder: next to it (functions root) and next to the functions dir.
        (fns.root / "secret.txt").write_bytes(SECRET)
        (fns.base / "secret.txt").write_bytes(SECRET)
        os.symlink("../secret.txt", public / "leak.txt")
        os.symlink(str(fns.root / "secret.txt"), public / "leak_abs.txt")
        os.symlink("/etc/passwd", public / "passwd")
        os.symlink("..", public / "up")
        os.symlink("../hello", public / "fnlink")
        # The symlinks really point at the secret: only the gateway can keep it in.
        self.assertEqual((public / "leak.txt").read_bytes(), SECRET)
        self.assertEqual((public / "up" / "secret.txt").read_bytes(), SECRET)
        return fns

    def gateway(self, assets: dict = None, extra=None) -> Gateway:
        fns = self.build(assets or {"dir": "public"})
        if extra:
            extra(fns)
        return self.start_gateway(fns, wait_for=["hello"])

    def assert_no_leak(self, response: harness.Response, what: str) -> None:
        self.assertNotIn(b"TOP-SECRET", response.body, f"{what} leaked the secret: {response!r}")
        self.assertNotIn(b"root:", response.body, f"{what} leaked /etc/passwd: {response!r}")

    def validators(self, name: str) -> tuple[str, str]:
        st = (self.public / name).stat()
        return (f'W/"{st.st_size:x}-{st.st_mtime_ns:x}"',
                email.utils.formatdate(st.st_mtime_ns // 1_000_000_000, usegmt=True))


class ServeTest(AssetsCase):
    def test_files_served_with_type_etag_and_last_modified(self):
        gw = self.gateway()
        cases = [
            ("/index.html", "index.html", "text/html; charset=utf-8"),
            ("/", "index.html", "text/html; charset=utf-8"),
            ("/css/site.css", "css/site.css", "text/css; charset=utf-8"),
            ("/app.js", "app.js", "text/javascript; charset=utf-8"),
            ("/data.json", "data.json", "application/json; charset=utf-8"),
            ("/logo.svg", "logo.svg", "image/svg+xml"),
            ("/pixel.png", "pixel.png", "image/png"),
            ("/blob.unknownext", "blob.unknownext", "application/octet-stream"),
            ("/docs/", "docs/index.html", "text/html; charset=utf-8"),
            ("/docs/index.html", "docs/index.html", "text/html; charset=utf-8"),
            ("/css/site.css?v=3", "css/site.css", "text/css; charset=utf-8"),
        ]
        for path, name, content_type in cases:
            with self.subTest(path=path):
                response = gw.get(path)
                self.assert_status(response, 200, gw, path)
                self.assertEqual(response.body, (self.public / name).read_bytes())
                self.assertEqual(response.headers.get("Content-Type"), content_type, response)
                self.assertEqual(response.headers.get("Content-Length"), str(len(response.body)))
                etag, modified = self.validators(name)
                self.assertEqual(response.headers.get("ETag"), etag, response)
                self.assertEqual(response.headers.get("Last-Modified"), modified, response)
                self.assertEqual(response.headers.get("Accept-Ranges"), "bytes", response)
                self.assertTrue(response.headers.get("X-Fn-Request-Id"), response)

    def test_directory_without_slash_redirects(self):
        gw = self.gateway()
        response = gw.get("/docs?x=1")
        self.assert_status(response, 301, gw)
        self.assertEqual(response.headers.get("Location"), "/docs/?x=1", response)
        self.assert_json_error(gw.get("/css/"), 404, gw)  # a directory without index.html

    def test_large_file_streams_whole_and_in_ranges(self):
        def add_big(fns: FunctionsDir) -> None:
            with open(fns.root / "public" / "big.bin", "wb") as f:
                for chunk in harness.pattern_chunks(9 * harness.MIB + 123):
                    f.write(chunk)
        gw = self.gateway(extra=add_big)
        data = (self.public / "big.bin").read_bytes()
        response = gw.get("/big.bin", timeout=60)
        self.assert_status(response, 200, gw)
        self.assertEqual(len(response.body), len(data))
        self.assertEqual(hashlib.sha256(response.body).hexdigest(), hashlib.sha256(data).hexdigest())
        first, last = 3 * harness.MIB - 7, 7 * harness.MIB + 11
        response = gw.get("/big.bin", headers={"Range": f"bytes={first}-{last}"}, timeout=60)
        self.assert_status(response, 206, gw)
        self.assertEqual(response.body, data[first:last + 1])
        self.assertEqual(response.headers.get("Content-Range"), f"bytes {first}-{last}/{len(data)}")

    def test_head_and_keep_alive(self):
        gw = self.gateway()
        etag, _ = self.validators("css/site.css")
        with gw.connection() as conn:
            head = conn.request("HEAD", "/css/site.css")
            self.assert_status(head, 200, gw)
            self.assertEqual(head.body, b"")
            self.assertEqual(head.headers.get("Content-Length"), str(len(CSS)))
            self.assertEqual(head.headers.get("Content-Type"), "text/css; charset=utf-8")
            self.assertEqual(head.headers.get("ETag"), etag)
            # The same connection goes on: no stray body bytes after HEAD, 304 or 206.
            self.assert_status(conn.request("GET", "/css/site.css", headers={"If-None-Match": etag}),
                               304, gw)
            ranged = conn.request("GET", "/numbers.txt", headers={"Range": "bytes=2-4"})
            self.assert_status(ranged, 206, gw)
            self.assertEqual(ranged.body, b"234")
            self.assertEqual(conn.request("GET", "/index.html").body, INDEX)
            self.assertEqual(parse_kv(conn.request("GET", "/hello").text).get("runtime"), "sh")
            refused = conn.request("HEAD", "/.env")
            self.assert_status(refused, 404, gw)
            self.assertEqual((refused.body, refused.headers.get("Content-Type")), (b"", "application/json"))
            self.assertEqual(conn.request("GET", "/app.js").status, 200)


class ConditionalTest(AssetsCase):
    def test_if_none_match_and_if_modified_since_give_304(self):
        gw = self.gateway()
        first = gw.get("/css/site.css")
        self.assert_status(first, 200, gw)
        etag, modified = first.headers.get("ETag"), first.headers.get("Last-Modified")
        for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"zzz", {etag}'},
                        {"If-None-Match": etag[2:]}, {"If-None-Match": "*"},
                        {"If-Modified-Since": modified}):
            with self.subTest(headers=headers):
                response = gw.get("/css/site.css", headers=headers)
                self.assert_status(response, 304, gw)
                self.assertEqual(response.body, b"")
                self.assertEqual(response.headers.get("ETag"), etag)
                self.assertNotIn("Content-Length", response.headers)
        for headers in ({"If-None-Match": '"other"'},
                        {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
                        {"If-None-Match": '"other"', "If-Modified-Since": modified}):
            with self.subTest(headers=headers):
                response = gw.get("/css/site.css", headers=headers)
                self.assert_status(response, 200, gw)
                self.assertEqual(response.body, CSS)
        # A changed file gets a new ETag: the old one no longer matches.
        (self.public / "css" / "site.css").write_bytes(b"body { color: red }\n")
        os.utime(self.public / "css" / "site.css", ns=(1_700_000_000_123_456_789,) * 2)
        response = gw.get("/css/site.css", headers={"If-None-Match": etag})
        self.assert_status(response, 200, gw)
        self.assertEqual(response.body, b"body { color: red }\n")
        self.assertNotEqual(response.headers.get("ETag"), etag)
        self.assertEqual(response.headers.get("Last-Modified"), "Tue, 14 Nov 2023 22:13:20 GMT")

    def test_ranges(self):
        gw = self.gateway()
        size = len(b"0123456789abcdefghij")
        for value, body in (("bytes=0-9", b"0123456789"), ("bytes=10-", b"abcdefghij"),
                            ("bytes=-3", b"hij"), ("bytes=15-99", b"fghij"), ("bytes=0-0", b"0")):
            with self.subTest(range=value):
                response = gw.get("/numbers.txt", headers={"Range": value})
                self.assert_status(response, 206, gw)
                self.assertEqual(response.body, body)
                first = size - len(body) if value.startswith("bytes=-") else int(value[6:].split("-")[0])
                self.assertEqual(response.headers.get("Content-Range"),
                                 f"bytes {first}-{first + len(body) - 1}/{size}")
                self.assertEqual(response.headers.get("Content-Type"), "text/plain; charset=utf-8")
        for value in ("bytes=20-", "bytes=100-200", "bytes=-0"):
            with self.subTest(range=value):
                response = gw.get("/numbers.txt", headers={"Range": value})
                self.assert_json_error(response, 416, gw)
                self.assertEqual(response.headers.get("Content-Range"), f"bytes */{size}")
        for value in ("bytes=0-1,4-5", "bytes=5-2", "lines=1-2", "bytes=x-"):
            with self.subTest(ignored=value):
                response = gw.get("/numbers.txt", headers={"Range": value})
                self.assert_status(response, 200, gw)
                self.assertEqual(response.body, b"0123456789abcdefghij")
        _, modified = self.validators("numbers.txt")
        matching = gw.get("/numbers.txt", headers={"Range": "bytes=0-1", "If-Range": modified})
        self.assertEqual((matching.status, matching.body), (206, b"01"), matching)
        stale = gw.get("/numbers.txt", headers={"Range": "bytes=0-1",
                                                "If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"})
        self.assertEqual((stale.status, stale.body), (200, b"0123456789abcdefghij"), stale)
        head = gw.request("HEAD", "/numbers.txt", headers={"Range": "bytes=0-1"})
        self.assert_status(head, 200, gw, "Range is for GET only:")


class RefusalTest(AssetsCase):
    TRAVERSALS = [
        # (raw request target, expected status)
        ("/../secret.txt", 404),
        ("/../../../../../../etc/passwd", 404),
        ("/css/../../secret.txt", 404),
        ("/%2e%2e/secret.txt", 404),
        ("/%2E%2E/%2E%2E/%2E%2E/etc/passwd", 404),
        ("/.%2e/secret.txt", 404),
        ("/%2e./secret.txt", 404),
        ("/..%2fsecret.txt", 404),
        ("/%2e%2e%2fsecret.txt", 404),
        ("/css%2f..%2f..%2fsecret.txt", 404),
        ("/..%5csecret.txt", 404),
        ("/..%5c..%5c..%5cetc%5cpasswd", 404),
        ("/..\\secret.txt", 404),
        ("/css\\..\\..\\secret.txt", 404),
        ("/%252e%252e/secret.txt", 404),
        ("/%252e%252e%252fsecret.txt", 404),
        ("/%c0%ae%c0%ae/secret.txt", 400),
        ("/%c0%ae%c0%ae%c0%afsecret.txt", 400),
        ("/%e0%80%ae%e0%80%ae/secret.txt", 400),
        ("/%c1%9c..%c1%9csecret.txt", 400),
        ("/index.html%00", 400),
        ("/secret.txt%00.html", 400),
        ("/%00../secret.txt", 400),
        ("/%zz/secret.txt", 400),
        ("/%2", 400),
        ("//etc/passwd", 404),
        ("///etc/passwd", 404),
        ("//%2e%2e/secret.txt", 404),
        ("http://localhost/../secret.txt", 404),
        ("http://localhost//etc/passwd", 404),
        ("/secret.txt", 404),            # next to the assets dir, not in it
        ("/public/index.html", 404),     # the assets dir is not a path prefix
        ("/leak.txt", 404),              # symlink to ../secret.txt
        ("/leak_abs.txt", 404),          # symlink to an absolute path outside
        ("/passwd", 404),                # symlink to /etc/passwd
        ("/up/secret.txt", 404),         # symlink to the parent folder
        ("/up/hello/handler.sh", 404),
        ("/fnlink/handler.sh", 404),     # symlink into a function folder
        ("/%5ffn/health", 404),          # reserved prefixes, encoded
        ("/%63onsole/index.html", 404),
        ("/_fn/../secret.txt", 404),
        ("/console/../secret.txt", 404),
    ]

    def test_every_traversal_shape_over_a_raw_socket_is_refused(self):
        gw = self.gateway()
        control = raw_get(gw, "/css/site.css")  # the raw requests themselves work
        self.assertEqual((control.status, control.body), (200, CSS), control)
        for target, status in self.TRAVERSALS:
            for method in ("GET", "HEAD"):
                with self.subTest(target=target, method=method):
                    response = raw_get(gw, target, method)
                    self.assert_no_leak(response, target)
                    if method == "GET":
                        self.assert_json_error(response, status, gw)
                    else:
                        self.assert_status(response, status, gw, target)
        gw.check_running()
        self.assertEqual(raw_get(gw, "/index.html").body, INDEX, "still serving afterwards")

    def test_symlink_refusal_is_logged(self):
        gw = self.gateway()
        self.assert_json_error(raw_get(gw, "/leak.txt"), 404, gw)
        gw.wait_log(lambda log: "symlink leaves the folder" in log and "leak.txt" in log, 10,
                    what="the refused symlink")

    def test_dotfiles_refused(self):
        gw = self.gateway()
        for path in ("/.env", "/.git/config", "/css/.hidden", "/%2eenv", "/.git/", "/./index.html"):
            with self.subTest(path=path):
                response = raw_get(gw, path)
                self.assert_json_error(response, 404, gw)
                self.assert_no_leak(response, path)

    def test_other_methods_fall_through_to_routing(self):
        gw = self.gateway()
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method=method):
                response = gw.request(method, "/index.html", body=b"x")
                self.assert_json_error(response, 404, gw)
                self.assertNotEqual(response.body, INDEX)
        self.assertEqual(parse_kv(gw.post("/hello", b"x").text).get("method"), "POST")


class RoutingTest(AssetsCase):
    def test_functions_still_route_before_folder_files(self):
        gw = self.gateway()
        kv = parse_kv(gw.get("/hello").text)
        self.assertEqual(kv.get("runtime"), "sh", "the function folder must win over public/hello/")
        kv = parse_kv(gw.get("/hello/sub/path").text)
        self.assertEqual((kv.get("script_name"), kv.get("path_info")), ("/hello", "/sub/path"))
        self.assertEqual(gw.get("/_fn/health").status, 200)
        self.assert_json_error(gw.get("/nope"), 404, gw)
        self.assert_json_error(gw.get("/nope/"), 404, gw)

    def shadow(self, fns: FunctionsDir) -> None:
        fns.sh_env("shadowfn", {"routes": ["/shadow.txt", "/onlyfn"]})

    def test_assets_first_then_routing(self):
        fns = self.build({"dir": "public"})
        self.shadow(fns)
        gw = self.start_gateway(fns, wait_for=["hello", "shadowfn"])
        self.assertEqual(gw.get("/shadow.txt").body, b"the asset\n", "assets come first")
        self.assertEqual(parse_kv(gw.get("/onlyfn").text).get("runtime"), "sh", "no file: routed")
        self.assertEqual(gw.get("/app.js").status, 200)
        self.assert_json_error(gw.get("/missing.txt"), 404, gw)

    def test_run_worker_first(self):
        fns = self.build({"dir": "public", "run_worker_first": True})
        self.shadow(fns)
        gw = self.start_gateway(fns, wait_for=["hello", "shadowfn"])
        kv = parse_kv(gw.get("/shadow.txt").text)
        self.assertEqual(kv.get("script_name"), "/shadow.txt", "the function comes first")
        self.assertEqual(gw.get("/app.js").body, b"console.log('hi');\n", "no route: the asset")
        self.assertEqual(gw.get("/").body, INDEX)
        self.assert_json_error(gw.get("/missing.txt"), 404, gw)
        self.assert_json_error(raw_get(gw, "/../secret.txt"), 404, gw)
        self.assert_json_error(raw_get(gw, "/.env"), 404, gw)
        self.assert_json_error(raw_get(gw, "/a%00b"), 400, gw)

    def test_single_page_application_serves_index_for_unknown_paths(self):
        for first in (False, True):
            with self.subTest(run_worker_first=first):
                fns = self.build({"dir": "public", "not_found_handling": "single-page-application",
                                  "run_worker_first": first})
                self.shadow(fns)
                gw = self.start_gateway(fns, wait_for=["hello", "shadowfn"])
                for path in ("/users/42", "/deep/client/route?tab=1", "/missing.txt"):
                    page = gw.get(path)
                    self.assertEqual((page.status, page.body), (200, INDEX), f"{path}: {page!r}")
                    self.assertTrue(page.headers.get("Content-Type").startswith("text/html"))
                self.assertEqual(gw.get("/app.js").body, b"console.log('hi');\n", "files still win")
                self.assertEqual(parse_kv(gw.get("/onlyfn").text).get("runtime"), "sh",
                                 "functions still win")
                self.assertEqual(parse_kv(gw.get("/hello/x").text).get("runtime"), "sh")
                # Refused paths stay refused: the fallback never turns a traversal into a 200.
                self.assert_json_error(raw_get(gw, "/../secret.txt"), 404, gw)
                self.assert_json_error(raw_get(gw, "/.env"), 404, gw)
                self.assert_json_error(gw.post("/users/42", b"x"), 404, gw)
                gw.close()

    def test_not_found_handling_other_values_are_refused(self):
        fns = self.build({"dir": "public", "not_found_handling": "404-page"})
        gw = self.start_gateway(fns, wait_for=["hello"])
        gw.wait_log(lambda log: "not_found_handling" in log and "single-page-application" in log,
                    what="the refused value named with the accepted ones")

    def test_file_added_later_is_served(self):
        gw = self.gateway()
        self.assert_json_error(gw.get("/late.txt"), 404, gw)
        (self.public / "late.txt").write_bytes(b"late\n")
        self.assertEqual(gw.get("/late.txt").body, b"late\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
