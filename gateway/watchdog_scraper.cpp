#include "gateway/watchdog_scraper.h"

#include <algorithm>
#include <atomic>
#include <system_error>
#include <thread>

#include "common/connect.h"
#include "common/http_client.h"

namespace gateway {
namespace {

using Clock = std::chrono::steady_clock;

// A watchdog's text is a few kilobytes per function; more than this is not a watchdog's answer.
constexpr std::size_t kMaxText = 4 * 1024 * 1024;

WatchdogScrape scrape_one(const Upstream& upstream, Clock::time_point deadline) {
  WatchdogScrape scrape{upstream.function(), upstream.index(), false, {}, {}, 0};
  auto started = Clock::now();
  auto finish = [&](std::string error) {
    scrape.error = std::move(error);
    scrape.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return scrape;
  };
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - started);
  if (left.count() <= 0) return finish("not scraped: the scrape's time budget was spent");
  auto fd = common::connect_to(upstream.address(), left);
  if (!fd) return finish("connect: " + fd.error().context);
  auto request = common::request_bytes("GET", "/_/metrics", {}, "localhost", "");
  auto reply = common::round_trip(fd->get(), request, "GET", deadline, kMaxText);
  if (!reply) return finish(reply.error().context);
  if (reply->status != 200) return finish("status " + std::to_string(reply->status));
  if (reply->truncated) return finish("an answer over 4 MiB");
  scrape.ok = true;
  scrape.text = std::move(reply->body);
  return finish("");
}

}  // namespace

std::vector<std::shared_ptr<Upstream>> scrape_targets(const Snapshot& snapshot) {
  std::vector<std::shared_ptr<Upstream>> targets;
  for (const auto& function : snapshot.functions)
    for (const auto& upstream : function->upstreams)
      if (upstream->supervised() && upstream->pid() > 0 &&
          upstream->state() != Upstream::State::kCold)
        targets.push_back(upstream);
  return targets;
}

std::vector<WatchdogScrape> scrape_watchdogs(const std::vector<std::shared_ptr<Upstream>>& targets,
                                             const ScrapeLimits& limits) {
  std::vector<WatchdogScrape> scrapes(targets.size());
  auto budget_end = Clock::now() + limits.budget;
  std::atomic<std::size_t> next{0};
  auto work = [&]() noexcept {
    for (std::size_t i; (i = next.fetch_add(1)) < targets.size();) {
      auto deadline = std::min(budget_end, Clock::now() + limits.per_watchdog);
      try {
        scrapes[i] = scrape_one(*targets[i], deadline);
      } catch (const std::exception& e) {  // memory: this scrape fails, the others go on
        scrapes[i] = {targets[i]->function(), targets[i]->index(), false, {}, e.what(), 0};
      }
    }
  };
  std::vector<std::jthread> helpers;
  std::size_t wanted = std::min(limits.threads, targets.size());
  for (std::size_t i = 1; i < wanted; ++i) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no thread to be had now: the ones there are (and this one) scrape the rest
    }
  }
  work();
  for (auto& helper : helpers) helper.join();  // before `scrapes` is moved out
  return scrapes;
}

}  // namespace gateway
