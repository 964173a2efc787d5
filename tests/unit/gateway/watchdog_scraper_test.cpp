#include "gateway/watchdog_scraper.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "tests/unit/gateway/unix_listener.h"

namespace {

using gateway::ScrapeLimits;
using gateway::Upstream;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A listener that hands out upstreams on its socket, as the gateway's own running watchdogs.
struct Listener : test_support::UnixListener {
  std::shared_ptr<Upstream> upstream(std::string function, int index) const {
    auto upstream = std::make_shared<Upstream>(std::move(function), index, address(), true);
    upstream->set_pid(12345);
    return upstream;
  }
  void answer(const std::string& response) const {
    UnixListener::answer("GET /_/metrics HTTP/1.1\r\n", response);
  }
};

std::string reply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("watchdog_scraper: scrapes the gateway's own running watchdogs only") {
  common::Address address{common::Address::Kind::kUnix, "/nonexistent.sock", "", 0};
  auto spec = gateway::FunctionSpec{};
  spec.name = "f";
  auto running = std::make_shared<Upstream>("f", 0, address, true);
  running->set_pid(100);
  auto not_started = std::make_shared<Upstream>("f", 1, address, true);
  auto parked = std::make_shared<Upstream>("f", 2, address, true);
  parked->set_pid(101);
  parked->park();
  auto external = std::make_shared<Upstream>("f", 3, address, false);  // FN_RUNTIME_SOCKETS
  gateway::Snapshot snapshot;
  snapshot.functions.push_back(std::make_shared<gateway::FunctionRuntime>(
      spec, std::vector{running, not_started, parked, external}));
  auto targets = gateway::scrape_targets(snapshot);
  REQUIRE(targets.size() == 1);
  CHECK(targets[0] == running);
}

TEST_CASE("watchdog_scraper: an answer is kept; another status and a refusal are failures") {
  Listener good, failing;
  std::thread server([&] {
    good.answer(reply(200, "m 1\n"));
    failing.answer(reply(503, "{}"));
  });
  auto gone = std::make_shared<Upstream>(
      "gone", 0, common::Address{common::Address::Kind::kUnix, good.dir + "/none.sock", "", 0},
      true);
  auto scrapes =
      gateway::scrape_watchdogs({good.upstream("a", 0), failing.upstream("b", 1), gone},
                                ScrapeLimits{milliseconds(10'000), milliseconds(20'000), 1});
  server.join();
  REQUIRE(scrapes.size() == 3);
  CHECK(scrapes[0].ok);
  CHECK(scrapes[0].function == "a");
  CHECK(scrapes[0].text == "m 1\n");
  CHECK_FALSE(scrapes[1].ok);
  CHECK(scrapes[1].function == "b");
  CHECK(scrapes[1].index == 1);
  CHECK(scrapes[1].error == "status 503");
  CHECK_FALSE(scrapes[2].ok);
  CHECK(scrapes[2].error.find("connect") != std::string::npos);
}

TEST_CASE("watchdog_scraper: a hung watchdog costs its deadline; the budget bounds the call") {
  // One thread, so the scrapes run one after another: the first hung one takes its 200 ms, the
  // second is cut at the 300 ms budget, and the third finds the budget spent.
  Listener hung1, hung2, hung3;
  auto started = Clock::now();
  auto scrapes = gateway::scrape_watchdogs(
      {hung1.upstream("h", 0), hung2.upstream("h", 1), hung3.upstream("h", 2)},
      ScrapeLimits{milliseconds(200), milliseconds(300), 1});
  auto took = Clock::now() - started;
  REQUIRE(scrapes.size() == 3);
  for (const auto& scrape : scrapes) CHECK_FALSE(scrape.ok);
  CHECK(scrapes[0].error.find("no reply within the deadline") != std::string::npos);
  CHECK(scrapes[0].seconds >= 0.19);
  CHECK(scrapes[2].error.find("budget") != std::string::npos);
  CHECK(took >= milliseconds(300));
  CHECK(took < std::chrono::seconds(20));  // bounded, however slow the machine
}

TEST_CASE("watchdog_scraper: the scrapes run concurrently, each once") {
  // Two hung watchdogs and a good one with two threads: the good one is answered although both
  // hung ones are in flight until their deadline (run one after another, the budget would end
  // before the good one's turn).
  Listener hung1, hung2, good;
  std::thread server([&] { good.answer(reply(200, "m 2\n")); });
  auto scrapes = gateway::scrape_watchdogs(
      {hung1.upstream("h", 0), good.upstream("g", 0), hung2.upstream("h", 1)},
      ScrapeLimits{milliseconds(5'000), milliseconds(5'000), 2});
  server.join();
  REQUIRE(scrapes.size() == 3);
  CHECK_FALSE(scrapes[0].ok);
  CHECK(scrapes[1].ok);
  CHECK(scrapes[1].text == "m 2\n");
  CHECK_FALSE(scrapes[2].ok);
}
