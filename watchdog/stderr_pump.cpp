#include "watchdog/stderr_pump.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/logging.h"

namespace watchdog {
namespace {

constexpr std::size_t kReadSize = 64 * 1024;

}  // namespace

void LogTag::set_request(std::string_view request_id) {
  std::lock_guard lock(mutex_);
  request_id_.assign(request_id);
}

std::string LogTag::request() const {
  std::lock_guard lock(mutex_);
  return request_id_.empty() ? "-" : request_id_;
}

StderrPump::StderrPump(std::string function)
    : function_(std::move(function)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!epoll_ || !wakeup_) throw std::system_error(errno, std::system_category(), "epoll/eventfd");
  epoll_event event{EPOLLIN, {.fd = wakeup_.get()}};
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wakeup_.get(), &event);
  thread_ = std::thread([this] { run(); });
}

StderrPump::~StderrPump() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wakeup_.get(), &one, sizeof(one));
  thread_.join();
}

void StderrPump::add(common::UniqueFd stderr_fd, std::shared_ptr<LogTag> tag) {
  int fd = stderr_fd.get();
  common::set_nonblocking(fd);
  {
    std::lock_guard lock(mutex_);
    std::string request = tag->request();
    sources_.emplace(fd, Source{std::move(stderr_fd), std::move(tag), common::LineSplitter(),
                                std::move(request)});
  }
  epoll_event event{EPOLLIN, {.fd = fd}};
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event);
}

void StderrPump::run() {
  epoll_event events[32];
  for (;;) {
    int count = ::epoll_wait(epoll_.get(), events, 32, -1);
    for (int i = 0; i < count; ++i) {
      if (events[i].data.fd == wakeup_.get()) return;
      read_from(events[i].data.fd);
    }
  }
}

void StderrPump::read_from(int fd) {
  static const auto log = common::logger("fn");
  thread_local std::string buffer(kReadSize, '\0');
  ssize_t n = ::read(fd, buffer.data(), buffer.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  std::lock_guard lock(mutex_);
  auto it = sources_.find(fd);
  if (it == sources_.end()) return;
  Source& source = it->second;
  std::string request = source.tag->request();
  auto emit = [&](std::string_view line) {
    log->info("{} pid={} request_id={}: {}", function_, source.tag->pid(), source.request, line);
  };
  if (request != source.request) {  // a new request: what the last one dropped is said under its id
    source.lines.end_request(emit);
    source.request = std::move(request);
  }
  if (n <= 0) {
    source.lines.flush(emit);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    sources_.erase(it);
    return;
  }
  source.lines.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), emit);
}

}  // namespace watchdog
