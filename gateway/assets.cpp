#include "gateway/assets.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/unique_fd.h"

namespace gateway {
namespace {

using common::Error;
using common::fail;
using common::Result;
using common::UniqueFd;

constexpr std::size_t kMaxPath = 4000;    // below PATH_MAX with the assets dir in front
constexpr std::size_t kMaxSegment = 255;  // NAME_MAX
constexpr std::size_t kPiece = 256 * 1024;
constexpr std::array<std::string_view, 2> kReserved = {"_fn", "console"};
constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Decodes %XX exactly once. A decoded '/', '\' or '%' is refused here: an encoded separator or a
// second layer of encoding only ever serves to slip past a check.
Result<std::string> percent_decode(std::string_view path) {
  if (!protocol::percent_decode(path)) return fail(Error::Code::kBadRequest, "malformed percent-encoding");
  auto decoded = protocol::percent_decode(path, [](char c) { return c == '/' || c == '\\' || c == '%'; });
  if (!decoded) return fail(Error::Code::kNotFound, "encoded path separator or double percent-encoding");
  return std::move(*decoded);
}

// Strict UTF-8: no overlong forms (C0 AE is "."), no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80                   ? 1
                    : (b >= 0xC2 && b <= 0xDF) ? 2
                    : (b >= 0xE0 && b <= 0xEF) ? 3
                    : (b >= 0xF0 && b <= 0xF4) ? 4
                                               : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    auto b1 = static_cast<unsigned char>(n > 1 ? s[i + 1] : 0);
    if ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 > 0x9F) || (b == 0xF0 && b1 < 0x90) ||
        (b == 0xF4 && b1 > 0x8F))
      return false;
    i += n;
  }
  return true;
}

// Checks the decoded path's bytes; the segments are judged by check_segments.
common::Status check_bytes(std::string_view decoded) {
  for (char c : decoded) {
    auto byte = static_cast<unsigned char>(c);
    if (byte == 0) return fail(Error::Code::kBadRequest, "NUL byte in the path");
    if (byte < 0x20 || byte == 0x7f)
      return fail(Error::Code::kBadRequest, "control byte in the path");
    if (c == '\\') return fail(Error::Code::kNotFound, "backslash in the path");
  }
  if (!valid_utf8(decoded)) return fail(Error::Code::kBadRequest, "invalid UTF-8 in the path");
  return {};
}

// `rest` is the decoded path without its leading '/'.
common::Status check_segments(std::string_view rest) {
  if (rest.starts_with('/')) return fail(Error::Code::kNotFound, "absolute path");
  std::size_t start = 0;
  while (start < rest.size()) {
    std::size_t end = std::min(rest.find('/', start), rest.size());
    std::string_view segment = rest.substr(start, end - start);
    if (segment.empty()) return fail(Error::Code::kNotFound, "empty path segment");
    if (segment.starts_with('.'))
      return fail(Error::Code::kNotFound, "dotfiles and dot-segments are not served");
    if (segment.size() > kMaxSegment) return fail(Error::Code::kNotFound, "path segment too long");
    start = end + 1;
  }
  return {};
}

bool inside(std::string_view relative, std::string_view folder) noexcept {
  return !folder.empty() && relative.starts_with(folder) &&
         (relative.size() == folder.size() || relative[folder.size()] == '/');
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decimal digits only, no sign, no overflow.
std::optional<std::uint64_t> parse_number(std::string_view s) noexcept {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

// Weak comparison over an If-None-Match list: "*", or any entity-tag equal once W/ is dropped.
bool etag_listed(std::string_view list, std::string_view etag) noexcept {
  if (trim(list) == "*") return true;
  auto opaque = [](std::string_view tag) { return tag.starts_with("W/") ? tag.substr(2) : tag; };
  std::string_view want = opaque(etag);
  while (!list.empty()) {
    list = trim(list);
    if (list.starts_with(',')) {
      list.remove_prefix(1);
      continue;
    }
    std::string_view tag = opaque(list);
    std::size_t close = tag.starts_with('"') ? tag.find('"', 1) : std::string_view::npos;
    if (close == std::string_view::npos) return false;
    if (tag.substr(0, close + 1) == want) return true;
    list = tag.substr(close + 1);
  }
  return false;
}

std::int64_t floor_seconds(std::int64_t ns) noexcept {
  std::int64_t s = ns / 1'000'000'000;
  return (ns % 1'000'000'000 < 0) ? s - 1 : s;
}

// Opens one component after another with O_NOFOLLOW: for kernels (or seccomp filters) without
// openat2. Stricter than RESOLVE_BENEATH: no symlink at all is followed.
tl::expected<UniqueFd, int> open_walk(int dir_fd, const std::string& relative) {
  UniqueFd current;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = relative.find('/', start);
    bool last = slash == std::string::npos;
    std::string name = relative.substr(start, last ? std::string::npos : slash - start);
    int flags =
        O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_RDONLY | (last ? 0 : O_DIRECTORY);
    int fd = ::openat(current ? current.get() : dir_fd, name.c_str(), flags);
    if (fd < 0) return tl::unexpected(errno);
    current.reset(fd);
    if (last) return current;
    start = slash + 1;
  }
}

// ENOENT and friends: there is no servable file, which is not an error of ours.
bool no_such_file(int error) noexcept {
  return error == ENOENT || error == ENOTDIR || error == ELOOP || error == EXDEV ||
         error == ENAMETOOLONG || error == EACCES || error == ENXIO || error == EPERM;
}

}  // namespace

tl::expected<UniqueFd, int> open_beneath(int dir_fd, const std::string& relative, bool walk) {
  if (walk) return open_walk(dir_fd, relative);
  open_how how{};
  // O_NONBLOCK: a FIFO in the folder must not block the connection thread on open.
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 8; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof(how));
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    // EAGAIN: a rename raced the lookup (the kernel cannot then prove "beneath"); try again.
    if (errno == EINTR || errno == EAGAIN) continue;
    if (errno == ENOSYS) return open_walk(dir_fd, relative);
    return tl::unexpected(errno);
  }
  return tl::unexpected(EAGAIN);
}

Result<AssetPath> resolve_asset_path(std::string_view path,
                                     std::span<const std::string_view> function_folders) {
  if (!path.starts_with('/')) return fail(Error::Code::kNotFound, "not an origin-form path");
  if (path.size() > kMaxPath) return fail(Error::Code::kNotFound, "path too long");
  auto decoded = percent_decode(path);
  if (!decoded) return tl::unexpected(decoded.error());
  if (auto bytes = check_bytes(*decoded); !bytes) return tl::unexpected(bytes.error());
  std::string_view rest = std::string_view(*decoded).substr(1);
  if (auto segments = check_segments(rest); !segments) return tl::unexpected(segments.error());
  for (std::string_view reserved : kReserved)
    if (inside(rest, reserved)) return fail(Error::Code::kNotFound, "reserved path");
  for (std::string_view folder : function_folders)
    if (inside(rest, folder)) return fail(Error::Code::kNotFound, "path of a function folder");
  AssetPath result{std::string(rest), rest.empty() || rest.ends_with('/')};
  if (result.directory_index) result.relative += "index.html";
  return result;
}

std::string_view content_type_for(std::string_view relative) noexcept {
  // clang-format off
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 21> kTypes = {{
      {"html", "text/html; charset=utf-8"},       {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},         {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},  {"json", "application/json; charset=utf-8"},
      {"map", "application/json; charset=utf-8"}, {"txt", "text/plain; charset=utf-8"},
      {"xml", "application/xml; charset=utf-8"},  {"svg", "image/svg+xml"},
      {"png", "image/png"},   {"jpg", "image/jpeg"},  {"jpeg", "image/jpeg"}, {"gif", "image/gif"},
      {"webp", "image/webp"}, {"ico", "image/x-icon"}, {"avif", "image/avif"},
      {"wasm", "application/wasm"}, {"woff2", "font/woff2"}, {"woff", "font/woff"},
      {"pdf", "application/pdf"},
  }};
  // clang-format on
  std::string_view name = relative.substr(relative.rfind('/') + 1);
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "application/octet-stream";
  std::string_view ext = name.substr(dot + 1);
  for (const auto& [known, type] : kTypes)
    if (protocol::iequals(known, ext)) return type;
  return "application/octet-stream";
}

std::string etag_for(const FileStamp& stamp) {
  return fmt::format("W/\"{:x}-{:x}\"", stamp.size, static_cast<std::uint64_t>(stamp.mtime_ns));
}

std::string http_date(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  text = trim(text);
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT")
    return std::nullopt;
  auto day = std::find(kDays.begin(), kDays.end(), text.substr(0, 3));
  auto month = std::find(kMonths.begin(), kMonths.end(), text.substr(8, 3));
  auto mday = parse_number(text.substr(5, 2)), year = parse_number(text.substr(12, 4));
  auto hour = parse_number(text.substr(17, 2)), minute = parse_number(text.substr(20, 2));
  auto second = parse_number(text.substr(23, 2));
  if (day == kDays.end() || month == kMonths.end() || !mday || !year || !hour || !minute ||
      !second || *mday < 1 || *mday > 31 || *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = static_cast<int>(*year) - 1900;
  tm.tm_mon = static_cast<int>(month - kMonths.begin());
  tm.tm_mday = static_cast<int>(*mday);
  tm.tm_hour = static_cast<int>(*hour);
  tm.tm_min = static_cast<int>(*minute);
  tm.tm_sec = static_cast<int>(*second);
  return static_cast<std::int64_t>(::timegm(&tm));
}

bool not_modified(const protocol::Headers& request_headers, std::string_view etag,
                  const FileStamp& stamp) noexcept {
  if (const auto* match = protocol::find_header(request_headers, "If-None-Match"))
    return etag_listed(match->value, etag);
  const auto* since = protocol::find_header(request_headers, "If-Modified-Since");
  if (!since) return false;
  auto date = parse_http_date(since->value);
  return date && floor_seconds(stamp.mtime_ns) <= *date;
}

RangeChoice parse_range(std::string_view value, std::uint64_t size) noexcept {
  value = trim(value);
  if (value.size() < 6 || !protocol::iequals(value.substr(0, 6), "bytes=")) return {};
  std::string_view spec = trim(value.substr(6));
  std::size_t dash = spec.find('-');
  if (spec.find(',') != std::string_view::npos || dash == std::string_view::npos) return {};
  auto first = parse_number(spec.substr(0, dash));
  auto last = parse_number(spec.substr(dash + 1));
  if (!first) {  // suffix: the last n bytes
    if (dash != 0 || !last) return {};
    if (*last == 0 || size == 0) return {RangeKind::kUnsatisfiable, {}};
    std::uint64_t n = std::min(*last, size);
    return {RangeKind::kPartial, {size - n, n}};
  }
  if (dash + 1 < spec.size() && !last) return {};
  if (last && *last < *first) return {};
  if (*first >= size) return {RangeKind::kUnsatisfiable, {}};
  std::uint64_t end = last ? std::min(*last, size - 1) : size - 1;
  return {RangeKind::kPartial, {*first, end - *first + 1}};
}

RangeChoice choose_range(const protocol::Headers& request_headers, std::uint64_t size,
                         std::string_view last_modified) noexcept {
  const auto* range = protocol::find_header(request_headers, "Range");
  if (!range) return {};
  const auto* if_range = protocol::find_header(request_headers, "If-Range");
  if (if_range && trim(if_range->value) != last_modified) return {};
  return parse_range(range->value, size);
}

std::string content_range(const ByteRange& range, std::uint64_t size) {
  return fmt::format("bytes {}-{}/{}", range.first, range.first + range.length - 1, size);
}

namespace {

// The body of a 200/206 in pieces of kPiece: never the whole file in memory.
common::Status stream_file(int fd, ByteRange range, common::ClientResponse& response) {
  std::string buffer(std::min<std::uint64_t>(kPiece, std::max<std::uint64_t>(range.length, 1)),
                     '\0');
  std::uint64_t offset = range.first, left = range.length;
  while (left > 0) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
    ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // the file shrank (or failed) under us: the promised length cannot be kept
      response.abort();
      return fail(Error::Code::kInternal, "asset file changed while it was sent");
    }
    if (auto sent = response.write({buffer.data(), static_cast<std::size_t>(n)}); !sent)
      return sent;
    offset += static_cast<std::uint64_t>(n);
    left -= static_cast<std::uint64_t>(n);
  }
  return response.finish();
}

// A directory named without its slash: redirect when it has an index.html, else no file.
Result<bool> redirect_directory(int dir_fd, common::ClientRequest& request,
                                common::ClientResponse& response, protocol::Headers headers) {
  auto index = open_beneath(dir_fd, "index.html");
  struct stat st {};
  if (!index || ::fstat(index->get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::string_view target = request.target();
  std::size_t query = target.find('?');
  std::string location = std::string(request.path()) + "/" +
                         std::string(query == std::string_view::npos ? "" : target.substr(query));
  headers.push_back({"Location", std::move(location)});
  if (auto sent = response.send(301, std::move(headers), ""); !sent)
    return tl::unexpected(sent.error());
  return true;
}

Result<bool> answer(int fd, const FileStamp& stamp, std::string_view relative,
                    common::ClientRequest& request, common::ClientResponse& response,
                    protocol::Headers headers) {
  std::string etag = etag_for(stamp);
  std::string modified = http_date(floor_seconds(stamp.mtime_ns));
  headers.push_back({"ETag", etag});
  headers.push_back({"Last-Modified", modified});
  headers.push_back({"Accept-Ranges", "bytes"});
  const auto& request_headers = request.head().headers;
  common::Status sent;
  if (not_modified(request_headers, etag, stamp)) {
    sent = response.send(304, std::move(headers), "");
    return sent ? Result<bool>(true) : tl::unexpected(sent.error());
  }
  RangeChoice range;
  if (request.method() == "GET") range = choose_range(request_headers, stamp.size, modified);
  if (range.kind == RangeKind::kUnsatisfiable) {
    headers.push_back({"Content-Range", fmt::format("bytes */{}", stamp.size)});
    headers.push_back({"Content-Type", "application/json"});
    std::string request_id(protocol::header_value(headers, "X-Fn-Request-Id"));
    sent = response.send(416, std::move(headers),
                         common::error_json("range not satisfiable", "", request_id));
    return sent ? Result<bool>(true) : tl::unexpected(sent.error());
  }
  if (range.kind == RangeKind::kWhole)
    range.range = {0, stamp.size};
  else
    headers.push_back({"Content-Range", content_range(range.range, stamp.size)});
  headers.push_back({"Content-Type", std::string(content_type_for(relative))});
  headers.push_back({"X-Content-Type-Options", "nosniff"});
  int status = range.kind == RangeKind::kPartial ? 206 : 200;
  response.start(status, std::move(headers), {protocol::BodyKind::kLength, range.range.length});
  sent = request.method() == "HEAD" ? response.finish() : stream_file(fd, range.range, response);
  return sent ? Result<bool>(true) : tl::unexpected(sent.error());
}

}  // namespace

Result<bool> serve_asset(const std::string& assets_dir, const AssetPath& path,
                         common::ClientRequest& request, common::ClientResponse& response,
                         const protocol::Headers& extra_headers) {
  UniqueFd dir(::open(assets_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (no_such_file(errno)) return false;
    return fail(Error::Code::kInternal, "cannot open the assets dir");
  }
  auto file = open_beneath(dir.get(), path.relative);
  if (!file) {
    if (file.error() == EXDEV || file.error() == ELOOP) {
      common::logger("gateway.assets")
          ->warn("asset refused: symlink leaves the folder or loops path={}", path.relative);
    }
    if (no_such_file(file.error())) return false;
    return fail(Error::Code::kInternal, "cannot open the asset");
  }
  struct stat st {};
  if (::fstat(file->get(), &st) != 0) return fail(Error::Code::kInternal, "cannot stat the asset");
  if (S_ISDIR(st.st_mode) && !path.directory_index)
    return redirect_directory(file->get(), request, response, extra_headers);
  if (!S_ISREG(st.st_mode)) return false;
  FileStamp stamp{
      static_cast<std::uint64_t>(st.st_size),
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  return answer(file->get(), stamp, path.relative, request, response, extra_headers);
}

}  // namespace gateway
