#include "gateway/function_runtime.h"

#include "common/units.h"

namespace gateway {
namespace {

constexpr std::uint64_t kDefaultMaxBody = 10 * 1024 * 1024;  // the watchdog's default
constexpr std::chrono::milliseconds kDefaultTimeout{30'000};

}  // namespace

FunctionRuntime::FunctionRuntime(FunctionSpec spec_in,
                                 std::vector<std::shared_ptr<Upstream>> upstreams_in)
    : spec(std::move(spec_in)), upstreams(std::move(upstreams_in)), admission(spec.worker_pool) {
  // The methods it answers (GET and POST when it takes any), so its error series exist at 0.
  std::vector<std::string_view> methods(spec.methods.begin(), spec.methods.end());
  if (methods.empty()) methods = {"GET", "POST"};
  requests.declare_defaults(methods);
}

std::uint64_t FunctionRuntime::routable_mask() const {
  std::uint64_t mask = 0;
  for (std::size_t i = 0; i < upstreams.size() && i < 64; ++i)
    if (upstreams[i]->routable()) mask |= std::uint64_t{1} << i;
  return mask;
}

int FunctionRuntime::sockets_up() const {
  int up = 0;
  for (const auto& upstream : upstreams) up += upstream->state() == Upstream::State::kUp;
  return up;
}

std::optional<std::string> FunctionRuntime::problem() const {
  if (!spec.broken.empty()) return spec.broken;
  for (const auto& upstream : upstreams)
    if (auto problem = upstream->problem()) return problem;
  return std::nullopt;
}

std::string FunctionRuntime::unavailable_reason() const {
  return problem().value_or("runtime unavailable");
}

std::uint64_t FunctionRuntime::max_body() const {
  return spec.max_body_bytes.value_or(kDefaultMaxBody);
}

std::chrono::milliseconds FunctionRuntime::timeout() const {
  return spec.timeout_ms ? common::effective_timeout(std::chrono::milliseconds(*spec.timeout_ms))
                         : kDefaultTimeout;
}

}  // namespace gateway
