#include <doctest/doctest.h>

#include <string>

#include "protocol/http_parser.h"

using namespace protocol;

namespace {

struct Decoded {
  ParseStatus status = ParseStatus::kIncomplete;
  ParseError error = ParseError::kBadHeader;
  std::string body;
  std::size_t consumed = 0;
  Headers trailers;
};

// Drives a decoder the way a caller reading a socket does: keep what was not consumed, add the
// next slice, call until no progress.
Decoded decode(BodyFraming framing, std::string_view bytes, std::size_t slice = 0,
               const Limits& limits = {}) {
  BodyDecoder decoder(framing, limits);
  Decoded out;
  std::string pending;
  std::size_t fed = 0;
  while (true) {
    std::size_t take = slice == 0 ? bytes.size() - fed : std::min(slice, bytes.size() - fed);
    pending.append(bytes.substr(fed, take));
    fed += take;
    BodyDecoder::Step step;
    do {
      step = decoder.next(pending);
      out.body.append(step.data);
      out.consumed += step.consumed;
      pending.erase(0, step.consumed);
    } while (step.status == ParseStatus::kIncomplete && step.consumed > 0);
    out.status = step.status;
    out.error = step.error;
    if (step.status != ParseStatus::kIncomplete || fed == bytes.size()) break;
  }
  out.trailers = decoder.trailers();
  if (out.status == ParseStatus::kComplete) CHECK(decoder.body_bytes() == out.body.size());
  return out;
}

const BodyFraming kChunked{BodyKind::kChunked, 0};

ParseError chunked_error(std::string_view bytes, const Limits& limits = {}) {
  Decoded out = decode(kChunked, bytes, 0, limits);
  REQUIRE(out.status == ParseStatus::kError);
  return out.error;
}

}  // namespace

TEST_CASE("body: fixed length in one piece and in slices") {
  for (std::size_t slice : {0, 1, 2, 7}) {
    CAPTURE(slice);
    Decoded out = decode({BodyKind::kLength, 5}, "helloNEXT", slice);
    CHECK(out.status == ParseStatus::kComplete);
    CHECK(out.body == "hello");
    CHECK(out.consumed == 5);
  }
}

TEST_CASE("body: nothing to decode for kNone and a zero length") {
  BodyDecoder none({BodyKind::kNone, 0});
  CHECK(none.done());
  CHECK(none.next("abc").status == ParseStatus::kComplete);
  CHECK(none.next("abc").consumed == 0);
  BodyDecoder zero({BodyKind::kLength, 0});
  CHECK(zero.next("").status == ParseStatus::kComplete);
}

TEST_CASE("body: a partial fixed-length body is incomplete") {
  BodyDecoder decoder({BodyKind::kLength, 10});
  auto step = decoder.next("abc");
  CHECK(step.status == ParseStatus::kIncomplete);
  CHECK(step.data == "abc");
  CHECK(decoder.next("").consumed == 0);
  CHECK_FALSE(decoder.done());
}

TEST_CASE("body: chunked, in every slicing") {
  std::string bytes = "5\r\nhello\r\n1;name=value;x\r\n \r\nA\nabcdefghij\n0\r\n\r\nNEXT";
  for (std::size_t slice : {0, 1, 2, 3, 5, 11}) {
    CAPTURE(slice);
    Decoded out = decode(kChunked, bytes, slice);
    CHECK(out.status == ParseStatus::kComplete);
    CHECK(out.body == "hello abcdefghij");
    CHECK(out.consumed == bytes.size() - 4);
  }
}

TEST_CASE("body: one step yields one run of data") {
  BodyDecoder decoder(kChunked);
  std::string_view bytes = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
  auto first = decoder.next(bytes);
  CHECK(first.data == "abc");
  CHECK(first.consumed == 6);
  auto second = decoder.next(bytes.substr(first.consumed));
  CHECK(second.data == "def");
  auto last = decoder.next(bytes.substr(first.consumed + second.consumed));
  CHECK(last.status == ParseStatus::kComplete);
  CHECK(last.data.empty());
  CHECK(decoder.done());
  CHECK(decoder.body_bytes() == 6);
}

TEST_CASE("body: chunked trailers are collected") {
  Decoded out = decode(kChunked, "1\r\na\r\n0\r\nX-Exit-Code: 3\r\nChecksum:  abc \r\n\r\n", 1);
  REQUIRE(out.status == ParseStatus::kComplete);
  REQUIRE(out.trailers.size() == 2);
  CHECK(out.trailers[0].name == "X-Exit-Code");
  CHECK(out.trailers[0].value == "3");
  CHECK(out.trailers[1].value == "abc");
}

TEST_CASE("body: accepts the largest and uppercase chunk sizes") {
  Limits limits;
  limits.max_body_bytes = UINT64_MAX;
  BodyDecoder decoder(kChunked, limits);
  auto step = decoder.next("FFFFFFFFFFFFFFFF\r\nab");
  CHECK(step.status == ParseStatus::kIncomplete);
  CHECK(step.data == "ab");
}

TEST_CASE("body: rejects a malformed chunk size line") {
  for (std::string_view bytes :
       {"g\r\n", "-1\r\n", "+1\r\n", "\r\n", " 1\r\n", "0x1\r\n", "1 \r\na\r\n", "1\t\r\n",
        "1;a\x01\r\n", "1\rx\n", "1;\x7f\r\n", "0x10000000000000000\r\n"}) {
    CAPTURE(bytes);
    CHECK(chunked_error(bytes) == ParseError::kBadChunk);
  }
}

TEST_CASE("body: accepts extensions after whitespace") {
  Decoded out = decode(kChunked, "1 ;ext=\"quoted value\"\r\na\r\n0\r\n\r\n");
  CHECK(out.status == ParseStatus::kComplete);
  CHECK(out.body == "a");
}

TEST_CASE("body: rejects chunk data not followed by a line ending") {
  SUBCASE("extra byte") { CHECK(chunked_error("3\r\nabcd\r\n0\r\n\r\n") == ParseError::kBadChunk); }
  SUBCASE("CR then other") { CHECK(chunked_error("3\r\nabc\rX") == ParseError::kBadChunk); }
  SUBCASE("CR alone waits") {
    CHECK(decode(kChunked, "3\r\nabc\r").status == ParseStatus::kIncomplete);
  }
}

TEST_CASE("body: rejects a chunk size line without end") {
  std::string line = "1;" + std::string(5000, 'x');
  CHECK(chunked_error(line) == ParseError::kBadChunk);
  CHECK(decode(kChunked, line.substr(0, 4000)).status == ParseStatus::kIncomplete);
}

TEST_CASE("body: rejects malformed trailers") {
  SUBCASE("obs-fold") { CHECK(chunked_error("0\r\nA: b\r\n c\r\n\r\n") == ParseError::kBadChunk); }
  SUBCASE("no colon") { CHECK(chunked_error("0\r\nnonsense\r\n\r\n") == ParseError::kBadChunk); }
  SUBCASE("space before colon") {
    CHECK(chunked_error("0\r\nA : b\r\n\r\n") == ParseError::kBadChunk);
  }
  SUBCASE("control character") {
    CHECK(chunked_error("0\r\nA: \x02\r\n\r\n") == ParseError::kBadChunk);
  }
}

TEST_CASE("body: bounds the trailer section") {
  Limits limits;
  limits.max_head_bytes = 16;
  SUBCASE("size") {
    CHECK(chunked_error("0\r\nX: 0123456789abcdef\r\n\r\n", limits) == ParseError::kHeadTooLarge);
    CHECK(chunked_error("0\r\nX: 0123456789abcdef", limits) == ParseError::kHeadTooLarge);
    CHECK(decode(kChunked, "0\r\nX: 012345678\r\n\r\n", 0, limits).status ==
          ParseStatus::kComplete);  // 16 bytes of trailers exactly
  }
  SUBCASE("count") {
    limits.max_head_bytes = 1024;
    limits.max_headers = 2;
    CHECK(chunked_error("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits) ==
          ParseError::kTooManyHeaders);
  }
}

TEST_CASE("body: enforces the body size limit") {
  Limits limits;
  limits.max_body_bytes = 8;
  SUBCASE("announced length") {
    Decoded out = decode({BodyKind::kLength, 9}, "", 0, limits);
    CHECK(out.status == ParseStatus::kError);
    CHECK(out.error == ParseError::kBodyTooLarge);
    CHECK(decode({BodyKind::kLength, 8}, "12345678", 0, limits).status == ParseStatus::kComplete);
  }
  SUBCASE("one chunk") { CHECK(chunked_error("9\r\n", limits) == ParseError::kBodyTooLarge); }
  SUBCASE("chunks growing past it") {
    CHECK(chunked_error("5\r\nhello\r\n4\r\n", limits) == ParseError::kBodyTooLarge);
    CHECK(decode(kChunked, "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", 0, limits).status ==
          ParseStatus::kComplete);
  }
  SUBCASE("an overflowing size") {
    CHECK(chunked_error("ffffffffffffffff\r\n") == ParseError::kBodyTooLarge);
  }
}

TEST_CASE("body: a size too large for 64 bits is too large, not malformed, with or without a limit") {
  Limits unlimited;
  unlimited.max_body_bytes = UINT64_MAX;
  for (std::string_view bytes : {"10000000000000000\r\n", "10000000000000003\r\nabc\r\n",
                                 "ffffffffffffffffffffffffffff\r\n", "10000000000000000;ext\r\n"}) {
    CAPTURE(bytes);
    CHECK(chunked_error(bytes, unlimited) == ParseError::kBodyTooLarge);
    CHECK(chunked_error(bytes) == ParseError::kBodyTooLarge);
  }
}

TEST_CASE("body: leading zeros of a chunk size do not count as digits") {
  Decoded out = decode(kChunked, "00000000000000000003\r\nabc\r\n0000\r\n\r\n");
  CHECK(out.status == ParseStatus::kComplete);
  CHECK(out.body == "abc");
}

TEST_CASE("body: announced_bytes knows a chunk's size before its data") {
  Limits unlimited;
  unlimited.max_body_bytes = UINT64_MAX;
  BodyDecoder decoder(kChunked, unlimited);
  CHECK(decoder.announced_bytes() == 0);
  auto step = decoder.next("5\r\nhel");
  CHECK(step.data == "hel");
  CHECK(decoder.body_bytes() == 3);
  CHECK(decoder.announced_bytes() == 5);
  step = decoder.next("lo\r\nffffffffffff\r\n");
  CHECK(step.data == "lo");
  step = decoder.next(std::string_view("lo\r\nffffffffffff\r\n").substr(step.consumed));
  CHECK(step.data.empty());
  CHECK(step.status == ParseStatus::kIncomplete);
  CHECK(decoder.announced_bytes() == 5 + 0xffffffffffffULL);
  SUBCASE("a fixed length is announced whole") {
    BodyDecoder fixed({BodyKind::kLength, 1000}, unlimited);
    CHECK(fixed.announced_bytes() == 1000);
    fixed.next("abc");
    CHECK(fixed.announced_bytes() == 1000);
  }
}

TEST_CASE("body: stays failed after an error") {
  BodyDecoder decoder(kChunked);
  CHECK(decoder.next("zz\r\n").status == ParseStatus::kError);
  auto again = decoder.next("0\r\n\r\n");
  CHECK(again.status == ParseStatus::kError);
  CHECK(again.error == ParseError::kBadChunk);
}
