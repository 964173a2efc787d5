#include "common/error.h"

#include <doctest/doctest.h>

#include <set>
#include <string>

using common::Error;

TEST_CASE("error: http_status maps every code") {
  CHECK(common::http_status(Error::Code::kBadRequest) == 400);
  CHECK(common::http_status(Error::Code::kNotFound) == 404);
  CHECK(common::http_status(Error::Code::kMethodNotAllowed) == 405);
  CHECK(common::http_status(Error::Code::kBodyTooLarge) == 413);
  CHECK(common::http_status(Error::Code::kTooBusy) == 429);
  CHECK(common::http_status(Error::Code::kUnavailable) == 503);
  CHECK(common::http_status(Error::Code::kTimeout) == 504);
  CHECK(common::http_status(Error::Code::kBadGateway) == 502);
  CHECK(common::http_status(Error::Code::kClientGone) == 499);
  CHECK(common::http_status(Error::Code::kInternal) == 500);
}

TEST_CASE("error: code_name gives distinct snake_case names") {
  std::set<std::string> names;
  for (auto code : {Error::Code::kBadRequest, Error::Code::kNotFound,
                    Error::Code::kMethodNotAllowed, Error::Code::kBodyTooLarge,
                    Error::Code::kTooBusy, Error::Code::kUnavailable, Error::Code::kTimeout,
                    Error::Code::kBadGateway, Error::Code::kClientGone, Error::Code::kInternal}) {
    std::string name = common::code_name(code);
    CAPTURE(name);
    CHECK_FALSE(name.empty());
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
    names.insert(name);
  }
  CHECK(names.size() == 10);
  CHECK(std::string(common::code_name(Error::Code::kBadGateway)) == "bad_gateway");
  CHECK(std::string(common::code_name(Error::Code::kTimeout)) == "timeout");
}

TEST_CASE("error: fail builds an unexpected Result") {
  common::Result<int> result = common::fail(Error::Code::kTimeout, "function ran past 30s");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == Error::Code::kTimeout);
  CHECK(result.error().context == "function ran past 30s");
  common::Status status = common::fail(Error::Code::kTooBusy, "queue full");
  CHECK_FALSE(status.has_value());
  CHECK(common::http_status(status.error().code) == 429);
}

TEST_CASE("error: an Error defaults to internal") {
  Error error;
  CHECK(common::http_status(error.code) == 500);
}
