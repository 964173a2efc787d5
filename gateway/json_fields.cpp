#include "gateway/json_fields.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <string>

namespace gateway::json {
namespace {

constexpr std::size_t kMaxExcerpt = 60;

std::string cut(std::string text) {
  if (text.size() <= kMaxExcerpt) return text;
  text.resize(kMaxExcerpt);
  return text + "...";
}

}  // namespace

std::string excerpt(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return cut(std::string(buffer.GetString(), buffer.GetSize()));
}

std::string quoted(std::string_view text) {
  rapidjson::Value value(rapidjson::StringRef(text.data(), text.size()));
  return excerpt(value);
}

void fail(std::string_view what, const rapidjson::Value& got) {
  throw FieldError("expected " + std::string(what) + ", got " + excerpt(got));
}

void fail_text(std::string_view what, std::string_view got) {
  throw FieldError("expected " + std::string(what) + ", got " + quoted(got));
}

tl::expected<rapidjson::Document, std::string> parse_object(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return tl::unexpected("invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                          rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject())
    return tl::unexpected(std::string("expected a JSON object at the top level"));
  return doc;
}

std::string read_string(const rapidjson::Value& value, std::string_view what) {
  if (!value.IsString()) fail(what, value);
  return std::string(value.GetString(), value.GetStringLength());
}

bool read_bool(const rapidjson::Value& value) {
  if (!value.IsBool()) fail("true or false", value);
  return value.GetBool();
}

std::uint64_t read_uint(const rapidjson::Value& value, std::uint64_t min, std::uint64_t max) {
  if (!value.IsUint64()) fail("a non-negative integer", value);
  const std::uint64_t n = value.GetUint64();
  if (n < min || n > max) {
    fail("an integer from " + std::to_string(min) + " to " + std::to_string(max), value);
  }
  return n;
}

std::vector<std::string> read_string_array(const rapidjson::Value& value, std::string_view what) {
  if (!value.IsArray()) fail(what, value);
  std::vector<std::string> out;
  for (const auto& element : value.GetArray()) {
    if (!element.IsString() || element.GetStringLength() == 0) fail(what, value);
    out.emplace_back(element.GetString(), element.GetStringLength());
  }
  return out;
}

}  // namespace gateway::json
