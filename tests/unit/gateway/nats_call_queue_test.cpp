// The codec of the NATS queue's messages and records (the queue itself runs against a real
// nats-server in tests/integration/test_async_nats.py).
#include "gateway/nats_call_queue.h"

#include <doctest/doctest.h>

#include <string>

namespace {

using gateway::CallState;
using gateway::StoredCall;

StoredCall sample() {
  StoredCall stored;
  stored.call.id = "a.b-c_1";
  stored.call.function = "hello world";
  stored.call.method = "PUT";
  stored.call.target = "/hello/x?name=\"ada\"&n=1";
  stored.call.headers = {{"Content-Type", "application/octet-stream"}, {"X-Call-Id", "a.b-c_1"}};
  stored.call.body = std::string("line\n\0binary\xff", 13);
  stored.call.callback_url = "http://127.0.0.1:9/cb";
  stored.call.now_ms = 1'700'000'000'123;
  stored.state = CallState::kRetrying;
  stored.attempts = 3;
  stored.next_try_ms = 1'700'000'010'000;
  stored.status = 503;
  stored.exit_code = 7;
  stored.duration_seconds = 0.25;
  stored.error = "the function answered 503\n\"quoted\"";
  stored.content_type = "text/plain";
  stored.result = std::string("{\n}\0", 4);
  stored.result_truncated = true;
  stored.callback_state = "pending";
  stored.callback_attempts = 2;
  stored.callback_next_ms = 1'700'000'020'000;
  return stored;
}

TEST_CASE("a message keeps the whole request, its body byte for byte") {
  StoredCall in = sample();
  auto out = gateway::decode_call(gateway::encode_call(in, true), true);
  REQUIRE(out);
  CHECK(out->call.id == in.call.id);
  CHECK(out->call.function == in.call.function);
  CHECK(out->call.method == "PUT");
  CHECK(out->call.target == in.call.target);
  REQUIRE(out->call.headers.size() == 2);
  CHECK(out->call.headers[0].name == "Content-Type");
  CHECK(out->call.headers[1].value == "a.b-c_1");
  CHECK(out->call.body == in.call.body);
  CHECK(out->call.callback_url == in.call.callback_url);
  CHECK(out->call.now_ms == in.call.now_ms);
  CHECK(out->state == CallState::kRetrying);
  CHECK(out->attempts == 3);
  CHECK(out->next_try_ms == in.next_try_ms);
  CHECK(out->result.empty());  // a message carries the request, not the result
}

TEST_CASE("a record keeps the state and the result, not the request") {
  StoredCall in = sample();
  auto out = gateway::decode_call(gateway::encode_call(in, false), false);
  REQUIRE(out);
  CHECK(out->call.headers.empty());
  CHECK(out->call.body.empty());
  CHECK(out->call.target == in.call.target);
  CHECK(out->status == 503);
  CHECK(out->exit_code == 7);
  CHECK(out->duration_seconds == doctest::Approx(0.25));
  CHECK(out->error == in.error);
  CHECK(out->content_type == "text/plain");
  CHECK(out->result == in.result);
  CHECK(out->result_truncated);
  CHECK(out->callback_state == "pending");
  CHECK(out->callback_attempts == 2);
  CHECK(out->callback_next_ms == in.callback_next_ms);
}

TEST_CASE("a record without an exit code decodes with none") {
  StoredCall in = sample();
  in.exit_code.reset();
  auto out = gateway::decode_call(gateway::encode_call(in, false), false);
  REQUIRE(out);
  CHECK_FALSE(out->exit_code.has_value());
}

TEST_CASE("bytes that are no call decode to nothing") {
  CHECK_FALSE(gateway::decode_call("", true));
  CHECK_FALSE(gateway::decode_call("no line", false));
  CHECK_FALSE(gateway::decode_call("[1,2]\nbody", true));
  CHECK_FALSE(gateway::decode_call("{\"function\":\"f\"}\n", true));  // no id
  CHECK_FALSE(gateway::decode_call("{\"id\":\n", false));
}

}  // namespace
