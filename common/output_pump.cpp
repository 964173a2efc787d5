#include "common/output_pump.h"

#include <unistd.h>

#include <cerrno>
#include <string>

namespace common {
namespace {

constexpr std::size_t kReadSize = 64 * 1024;
// On each readiness: enough for a full pipe (64 KiB) and then some, and then the others' turn.
constexpr int kReadsPerTurn = 4;
// At stop: what the pipes hold, without chasing a writer that is still going.
constexpr int kReadsAtStop = 64;

}  // namespace

bool read_available(int fd, OutputPump::Sink& sink, int max_reads) {
  thread_local std::string buffer(kReadSize, '\0');
  for (int i = 0; i < max_reads; ++i) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return false;
    if (n <= 0) return true;
    sink.on_bytes(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  }
  return false;
}

OutputPump::OutputPump() {
  thread_ = std::thread([this] { loop_.run(); });
}

OutputPump::~OutputPump() { stop(); }

void OutputPump::add(UniqueFd fd, std::unique_ptr<Sink> sink) {
  set_nonblocking(fd.get());
  auto source = std::make_shared<std::unique_ptr<Source>>(
      std::make_unique<Source>(Source{std::move(fd), std::move(sink)}));
  if (loop_.post([this, source] { start_reading(std::move(*source)); })) return;
  // The pump has stopped: what the pipe holds now, and no more.
  read_available((*source)->fd.get(), *(*source)->sink, kReadsAtStop);
  (*source)->sink->on_end();
}

void OutputPump::start_reading(std::unique_ptr<Source> source) {
  int fd = source->fd.get();
  source->watch = loop_.watch(fd, EPOLLIN, [this, fd](std::uint32_t) { on_readable(fd); });
  auto [it, added] = sources_.emplace(fd, std::move(source));
  if (it->second->watch == 0) end(fd);  // epoll refused it (it cannot refuse a pipe): read it now
}

void OutputPump::on_readable(int fd) {
  auto it = sources_.find(fd);
  if (it == sources_.end()) return;
  if (read_available(fd, *it->second->sink, kReadsPerTurn)) end(fd);
}

void OutputPump::end(int fd) {
  auto it = sources_.find(fd);
  if (it == sources_.end()) return;
  if (it->second->watch != 0)
    loop_.unwatch(it->second->watch);
  else
    read_available(fd, *it->second->sink, kReadsAtStop);
  it->second->sink->on_end();
  sources_.erase(it);  // closes the pipe
}

void OutputPump::stop() {
  if (stopped_) return;
  stopped_ = true;
  loop_.stop();
  thread_.join();
  // The loop has ended (and run what was posted before): its state is this thread's now.
  for (auto& [fd, source] : sources_) {
    read_available(fd, *source->sink, kReadsAtStop);
    source->sink->on_end();
  }
  sources_.clear();
}

}  // namespace common
