#include "gateway/json_fields.h"

#include <doctest/doctest.h>

#include <string>

namespace {

using gateway::json::FieldError;

rapidjson::Document doc(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

}  // namespace

TEST_CASE("json_fields: excerpt is compact and bounded") {
  CHECK(gateway::json::excerpt(doc(R"({ "a" : [1, 2] })")) == R"({"a":[1,2]})");
  const std::string long_text = "\"" + std::string(200, 'x') + "\"";
  const std::string cut = gateway::json::excerpt(doc(long_text));
  CHECK(cut.size() == 63);
  CHECK(cut.ends_with("..."));
}

TEST_CASE("json_fields: quoted escapes like JSON") {
  CHECK(gateway::json::quoted("a\"b\n") == R"("a\"b\n")");
  CHECK(gateway::json::quoted("") == "\"\"");
}

TEST_CASE("json_fields: parse_object reports the offset") {
  CHECK(gateway::json::parse_object(R"({"a": 1})").has_value());
  CHECK(gateway::json::parse_object("{\"a\" 1}").error() ==
        "invalid JSON at offset 5: Missing a colon after a name of object member.");
  CHECK(gateway::json::parse_object("{} x").error().starts_with("invalid JSON at offset 3"));
  CHECK(gateway::json::parse_object("\"s\"").error() == "expected a JSON object at the top level");
}

TEST_CASE("json_fields: readers") {
  SUBCASE("read_uint bounds and types") {
    CHECK(gateway::json::read_uint(doc("5"), 1, 10) == 5u);
    CHECK_THROWS_WITH_AS(gateway::json::read_uint(doc("11"), 1, 10),
                         "expected an integer from 1 to 10, got 11", FieldError);
    CHECK_THROWS_WITH_AS(gateway::json::read_uint(doc("-1"), 0, 10),
                         "expected a non-negative integer, got -1", FieldError);
    CHECK_THROWS_WITH_AS(gateway::json::read_uint(doc("2.0"), 0, 10),
                         "expected a non-negative integer, got 2.0", FieldError);
  }
  SUBCASE("read_bool") {
    CHECK(gateway::json::read_bool(doc("true")));
    CHECK_THROWS_WITH_AS(gateway::json::read_bool(doc("\"true\"")),
                         "expected true or false, got \"true\"", FieldError);
  }
  SUBCASE("read_string") {
    CHECK(gateway::json::read_string(doc("\"x\"")) == "x");
    CHECK_THROWS_WITH_AS(gateway::json::read_string(doc("null"), "a name"),
                         "expected a name, got null", FieldError);
  }
  SUBCASE("read_string_array refuses empty strings and other types") {
    CHECK(gateway::json::read_string_array(doc(R"(["a","b"])"), "names") ==
          std::vector<std::string>{"a", "b"});
    CHECK(gateway::json::read_string_array(doc("[]"), "names").empty());
    CHECK_THROWS_WITH_AS(gateway::json::read_string_array(doc(R"(["a",""])"), "names"),
                         R"(expected names, got ["a",""])", FieldError);
    CHECK_THROWS_AS(gateway::json::read_string_array(doc(R"(["a",1])"), "names"), FieldError);
    CHECK_THROWS_AS(gateway::json::read_string_array(doc(R"({})"), "names"), FieldError);
  }
}
