// Round robin over the sockets that are up, in the spirit of h2o's balancer: pure, over bit masks.
// A function has at most 64 sockets (runtime-daemons caps at 64), so one word holds a mask.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace gateway {

// Picks the first socket at or after `start` (wrapping) that is routable and not yet tried for
// this request. `count` sockets exist (<= 64); bit i of a mask is socket i. nullopt when none is
// left.
std::optional<std::size_t> pick_round_robin(std::uint64_t routable, std::uint64_t tried,
                                            std::size_t count, std::size_t start) noexcept;

}  // namespace gateway
