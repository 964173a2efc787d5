#include "common/address.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using common::Address;
using common::parse_address;

TEST_CASE("address: parses unix:/path.sock") {
  auto address = parse_address("unix:/run/fn/a.sock");
  REQUIRE(address);
  CHECK(address->kind == Address::Kind::kUnix);
  CHECK(address->path == "/run/fn/a.sock");
  CHECK(address->to_string() == "unix:/run/fn/a.sock");
}

TEST_CASE("address: a relative unix path is kept as given") {
  auto address = parse_address("unix:run/a.sock");
  REQUIRE(address);
  CHECK(address->kind == Address::Kind::kUnix);
  CHECK(address->path == "run/a.sock");
}

TEST_CASE("address: parses tcp forms") {
  SUBCASE("tcp:HOST:PORT") {
    auto address = parse_address("tcp:10.0.0.5:8080");
    REQUIRE(address);
    CHECK(address->kind == Address::Kind::kTcp);
    CHECK(address->host == "10.0.0.5");
    CHECK(address->port == 8080);
  }
  SUBCASE("HOST:PORT") {
    auto address = parse_address("127.0.0.1:9000");
    REQUIRE(address);
    CHECK(address->kind == Address::Kind::kTcp);
    CHECK(address->host == "127.0.0.1");
    CHECK(address->port == 9000);
  }
  SUBCASE("a host name") {
    auto address = parse_address("localhost:80");
    REQUIRE(address);
    CHECK(address->host == "localhost");
    CHECK(address->port == 80);
  }
  SUBCASE(":PORT is every interface") {
    auto address = parse_address(":8080");
    REQUIRE(address);
    CHECK(address->kind == Address::Kind::kTcp);
    CHECK(address->host.empty());
    CHECK(address->port == 8080);
  }
  SUBCASE("tcp::PORT") {
    auto address = parse_address("tcp::8080");
    REQUIRE(address);
    CHECK(address->host.empty());
    CHECK(address->port == 8080);
  }
  SUBCASE("bracketed IPv6") {
    auto address = parse_address("[::1]:8080");
    REQUIRE(address);
    CHECK(address->host == "::1");
    CHECK(address->port == 8080);
  }
  SUBCASE("port bounds") {
    CHECK(parse_address("h:0")->port == 0);
    CHECK(parse_address("h:65535")->port == 65535);
  }
}

TEST_CASE("address: to_string is canonical and parses again") {
  for (std::string_view text : {"unix:/tmp/x.sock", "tcp:127.0.0.1:8080", "tcp::80",
                                "tcp:[::1]:8080", "tcp:example.com:443"}) {
    CAPTURE(text);
    auto address = parse_address(text);
    REQUIRE(address);
    CHECK(address->to_string() == text);
    auto again = parse_address(address->to_string());
    REQUIRE(again);
    CHECK(again->kind == address->kind);
    CHECK(again->path == address->path);
    CHECK(again->host == address->host);
    CHECK(again->port == address->port);
  }
  CHECK(parse_address("127.0.0.1:8080")->to_string() == "tcp:127.0.0.1:8080");
  CHECK(parse_address(":8080")->to_string() == "tcp::8080");
}

TEST_CASE("address: rejects malformed addresses with a reason") {
  for (std::string_view text :
       {"", "unix:", "tcp:", "localhost", "host:", "host:port", "host:-1", "host:65536",
        "host:99999999999", "host: 80", "host:80 ", "[::1]", "host:0x50"}) {
    CAPTURE(text);
    std::string error;
    CHECK_FALSE(parse_address(text, &error).has_value());
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("address: the error pointer is optional") {
  CHECK_FALSE(parse_address("nonsense").has_value());
  CHECK_FALSE(parse_address("unix:").has_value());
}
