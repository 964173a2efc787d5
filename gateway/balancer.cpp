#include "gateway/balancer.h"

namespace gateway {

std::optional<std::size_t> pick_round_robin(std::uint64_t routable, std::uint64_t tried,
                                            std::size_t count, std::size_t start) noexcept {
  if (count == 0) return std::nullopt;
  std::uint64_t candidates = routable & ~tried;
  for (std::size_t step = 0; step < count; ++step) {
    std::size_t index = (start + step) % count;
    if (candidates & (std::uint64_t{1} << index)) return index;
  }
  return std::nullopt;
}

}  // namespace gateway
