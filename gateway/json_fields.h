// Typed reads of JSON values for the gateway's two config files (fastfn.json and fn.config.json),
// so that both report a wrong value the same way: `expected <what>, got <the value as JSON>`. The
// readers throw FieldError carrying only that phrase; the caller, which knows the file and the key,
// adds them in front and decides whether the error is fatal (fastfn.json) or skips a function
// (fn.config.json).
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace gateway::json {

// The phrase `expected <what>, got <value>`, without file or key.
class FieldError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `value` as compact JSON, cut to about 60 characters with "..." so one log line stays one line.
std::string excerpt(const rapidjson::Value& value);

// `text` as a JSON string literal (quotes and escapes added), cut like excerpt().
std::string quoted(std::string_view text);

// Throws FieldError("expected " + what + ", got " + excerpt(got)).
[[noreturn]] void fail(std::string_view what, const rapidjson::Value& got);

// Throws FieldError("expected " + what + ", got " + quoted(got)), for values read from text.
[[noreturn]] void fail_text(std::string_view what, std::string_view got);

// Parses `text` as one JSON object. The error is `invalid JSON at offset N: <reason>` or
// `expected a JSON object at the top level`.
tl::expected<rapidjson::Document, std::string> parse_object(std::string_view text);

// Readers: each returns the value or throws FieldError naming what was expected.
std::string read_string(const rapidjson::Value& value, std::string_view what = "a string");
bool read_bool(const rapidjson::Value& value);
// An integer in [min, max]; doubles such as 1.5 or 1e3 are refused.
std::uint64_t read_uint(const rapidjson::Value& value, std::uint64_t min, std::uint64_t max);
// An array whose elements are all non-empty strings; `what` describes the whole array.
std::vector<std::string> read_string_array(const rapidjson::Value& value, std::string_view what);

}  // namespace gateway::json
