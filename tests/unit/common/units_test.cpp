#include "common/units.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string_view>

using common::parse_duration;
using common::parse_size;
using common::parse_whole;
using std::chrono::milliseconds;

TEST_CASE("units: parses 250ms") { CHECK(parse_duration("250ms") == milliseconds(250)); }

TEST_CASE("units: parses seconds, minutes and hours") {
  SUBCASE("10s") { CHECK(parse_duration("10s") == milliseconds(10'000)); }
  SUBCASE("2m") { CHECK(parse_duration("2m") == milliseconds(120'000)); }
  SUBCASE("1h") { CHECK(parse_duration("1h") == milliseconds(3'600'000)); }
  SUBCASE("a fraction of a second") { CHECK(parse_duration("1.5s") == milliseconds(1500)); }
  SUBCASE("zero") { CHECK(parse_duration("0") == milliseconds(0)); }
}

TEST_CASE("units: a plain number is seconds") {
  CHECK(parse_duration("30") == milliseconds(30'000));
  CHECK(parse_duration("0.25") == milliseconds(250));
}

TEST_CASE("units: parses Go's durations, as OpenFaaS configurations write them") {
  CHECK(parse_duration("1m30s") == milliseconds(90'000));
  CHECK(parse_duration("1h2m3s") == milliseconds(3'723'000));
  CHECK(parse_duration("1.5h") == milliseconds(5'400'000));
  CHECK(parse_duration("2s500ms") == milliseconds(2'500));
  CHECK(parse_duration("0s") == milliseconds(0));
  SUBCASE("below a millisecond rounds up: a short duration is never none") {
    CHECK(parse_duration("500us") == milliseconds(1));
    CHECK(parse_duration("1500\u00b5s") == milliseconds(2));
    CHECK(parse_duration("1ns") == milliseconds(1));
    CHECK(parse_duration("0ns") == milliseconds(0));
  }
}

TEST_CASE("units: rejects malformed durations") {
  for (std::string_view text : {"", "ms", "s", "10x", "10 s", " 10s", "10s ", "-1s", "-5", "+5s",
                                "10sec", "10S", "1.5.s", "abc", "10ms10", "inf", "infs", "1m30",
                                "1m 30s", "1m-30s", "1m+30s", "30s1", "1d"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

TEST_CASE("units: rejects NaN as a duration") {
  // from_chars reads "nan" as a double; a NaN must not turn into a garbage (negative) duration.
  for (std::string_view text : {"nan", "nans", "NaN", "nanms"}) {
    CAPTURE(text);
    auto parsed = parse_duration(text);
    CHECK_FALSE_MESSAGE(parsed.has_value(), "parsed as " << (parsed ? parsed->count() : 0) << "ms");
  }
}

TEST_CASE("units: rejects overflowing durations") {
  CHECK_FALSE(parse_duration("1e300s").has_value());
  CHECK_FALSE(parse_duration("99999999999999999999h").has_value());
  CHECK_FALSE(parse_duration("1e400").has_value());
  CHECK_FALSE(parse_duration("3000000000s").has_value());  // past 2^31 s
  CHECK_FALSE(parse_duration("1e10").has_value());
  CHECK_FALSE(parse_duration("1000000000s2000000000s").has_value());
  CHECK(parse_duration("2000000000s") == std::chrono::seconds(2'000'000'000));
}

TEST_CASE("units: parses sizes") {
  SUBCASE("plain bytes") { CHECK(parse_size("512") == 512u); }
  SUBCASE("B") { CHECK(parse_size("512B") == 512u); }
  SUBCASE("zero") { CHECK(parse_size("0") == 0u); }
  SUBCASE("KiB") { CHECK(parse_size("64KiB") == 64u * 1024); }
  SUBCASE("MiB") { CHECK(parse_size("10MiB") == 10u * 1024 * 1024); }
  SUBCASE("GiB") { CHECK(parse_size("2GiB") == 2ull * 1024 * 1024 * 1024); }
  SUBCASE("KB and MB are powers of 1024") {
    CHECK(parse_size("64KB") == 64u * 1024);
    CHECK(parse_size("10MB") == 10u * 1024 * 1024);
    CHECK(parse_size("1GB") == 1ull << 30);
  }
  SUBCASE("short units") {
    CHECK(parse_size("4k") == 4096u);
    CHECK(parse_size("4K") == 4096u);
    CHECK(parse_size("3M") == 3u << 20);
    CHECK(parse_size("1G") == 1ull << 30);
  }
}

TEST_CASE("units: rejects malformed sizes") {
  for (std::string_view text : {"", "KiB", "-1", "+1", "1.5MiB", "10 MiB", " 10", "10TiB", "10kib",
                                "10XB", "0x10", "ten"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_size(text).has_value());
  }
}

TEST_CASE("units: rejects overflowing sizes") {
  CHECK(parse_size("18446744073709551615") == 18446744073709551615ull);
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK(parse_size("17179869183GiB") == 17179869183ull << 30);
  CHECK_FALSE(parse_size("17179869184GiB").has_value());
  CHECK_FALSE(parse_size("99999999999999999999KiB").has_value());
}

TEST_CASE("units: a whole number is digits alone, within its bounds") {
  CHECK(parse_whole("0", 0, 255) == 0);
  CHECK(parse_whole("255", 0, 255) == 255);
  CHECK(parse_whole("007", 0, 255) == 7);
  CHECK(parse_whole("9223372036854775807", 0, INT64_MAX) == INT64_MAX);
  for (const char* bad : {"", "256", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.0",
                          "9223372036854775808", "99999999999999999999"})
    CHECK_MESSAGE(!parse_whole(bad, 0, 255).has_value(), bad);
  CHECK(!parse_whole("0", 1, 65535));
  CHECK(!parse_whole("9223372036854775808", 0, INT64_MAX));
}
