// Static files from the assets dir of the root fn.config.json (DESIGN.md, "Assets"). Two parts: a
// pure one that judges a request path before anything touches the disk (percent-decoding once,
// refusing dotfiles, every spelling of "..", encoded slashes and backslashes, double encoding,
// overlong UTF-8, NUL, absolute paths, the reserved prefixes and function folders) and computes
// Content-Type, validators (ETag, Last-Modified, 304) and byte ranges; and an I/O one that opens
// the file beneath the assets dir with openat2(RESOLVE_BENEATH), so the kernel refuses a symlink
// that leaves the folder, and streams it in pieces with pread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "common/error.h"
#include "common/http_exchange.h"
#include "common/unique_fd.h"
#include "protocol/http_message.h"

namespace gateway {

// ---- Pure part (no I/O; thread-safe).

struct AssetPath {
  std::string relative;          // below the assets dir, never empty: "css/site.css", "index.html"
  bool directory_index = false;  // the path named a directory ("/", "/docs/"); index.html appended
};

// Judges `path` (the request path exactly as received, without the query). `function_folders`
// are the function names (folders below the functions dir, "hello", "api/users"); a path inside
// one is refused so that a file never shadows a function's folder. Errors, decided before any file
// is opened: kBadRequest for malformed percent-encoding, NUL and other control bytes and invalid
// UTF-8 (overlong forms included); kNotFound for every other refusal.
common::Result<AssetPath> resolve_asset_path(
    std::string_view path, std::span<const std::string_view> function_folders = {});

// "text/css; charset=utf-8" for "a/site.css" (by extension, case-insensitive); text types carry
// the charset; application/octet-stream for anything unknown.
std::string_view content_type_for(std::string_view relative) noexcept;

// What the validators are made of (from fstat).
struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;  // nanoseconds since the epoch
};

// A weak ETag: W/"<size hex>-<mtime_ns hex>".
std::string etag_for(const FileStamp& stamp);
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), independent of the locale.
std::string http_date(std::int64_t unix_seconds);
// Parses an IMF-fixdate; nullopt for anything else (such a header is then ignored).
std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept;

// Whether a GET/HEAD with `request_headers` gets 304: If-None-Match (weak comparison, "*", lists)
// decides when present; otherwise If-Modified-Since against the file's whole-second mtime.
bool not_modified(const protocol::Headers& request_headers, std::string_view etag,
                  const FileStamp& stamp) noexcept;

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};
enum class RangeKind { kWhole, kPartial, kUnsatisfiable };
struct RangeChoice {
  RangeKind kind = RangeKind::kWhole;
  ByteRange range;  // kPartial only
};

// One Range header value against a file of `size` bytes: "bytes=a-b", "bytes=a-", "bytes=-n".
// Several ranges and malformed values give kWhole (the header is ignored, as RFC 9110 allows).
RangeChoice parse_range(std::string_view value, std::uint64_t size) noexcept;
// The range a GET answers: kWhole without Range, or when If-Range is present and is not the
// file's Last-Modified (`last_modified`; the ETag is weak, so it never matches If-Range).
RangeChoice choose_range(const protocol::Headers& request_headers, std::uint64_t size,
                         std::string_view last_modified) noexcept;
// "bytes 0-99/1234".
std::string content_range(const ByteRange& range, std::uint64_t size);

// ---- I/O part.

// Opens `relative` (as resolve_asset_path gives it) for reading beneath the directory `dir_fd`:
// openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so a symlink that leaves the folder fails
// with EXDEV. With `walk` (and where openat2 is missing) it opens one component after another
// with O_NOFOLLOW instead, which follows no symlink at all. The errno on failure. O_NONBLOCK is
// set, so a FIFO cannot block the open.
tl::expected<common::UniqueFd, int> open_beneath(int dir_fd, const std::string& relative,
                                                 bool walk = false);

// Answers GET/HEAD `request` with the file `path` below `assets_dir` (absolute): 200, 206, 304,
// 416, or 301 to "<path>/" for a directory named without its slash. `extra_headers` go on every
// answer. Returns true when answered, false when there is no such file (nothing was sent: the
// caller routes or answers 404); an error when the file could not be read (nothing was sent) or
// the client went away (kClientGone; the response may be started).
common::Result<bool> serve_asset(const std::string& assets_dir, const AssetPath& path,
                                 common::ClientRequest& request, common::ClientResponse& response,
                                 const protocol::Headers& extra_headers);

}  // namespace gateway
