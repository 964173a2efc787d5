// The signal loop both binaries run on their main thread: SIGTERM and SIGINT stop, SIGHUP
// reloads (the gateway) or recycles (the watchdog).
#pragma once

#include <functional>

namespace common {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread it starts later, so
// that only wait_for_stop receives them, and ignores SIGPIPE (a closed peer is an error return,
// not a death). Call first thing in main.
void block_control_signals();

// Waits for SIGTERM or SIGINT and returns it, calling `on_hangup` for each SIGHUP meanwhile.
int wait_for_stop(const std::function<void()>& on_hangup);

}  // namespace common
