#include "watchdog/cgi_call.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/logging.h"

namespace watchdog {
namespace {

using common::Error;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadSize = 64 * 1024;
constexpr std::size_t kMaxCombinedStderr = 1024 * 1024;

char* read_buffer() {
  thread_local std::vector<char> buffer(kReadSize);
  return buffer.data();
}

int poll_timeout(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count() + 1, 60'000));
}

}  // namespace

CgiCall::CgiCall(common::Child& child, common::ClientRequest* body, CgiOutput& output,
                 const CgiCallSettings& settings)
    : child_(child), body_(body), output_(output), settings_(settings) {}

common::Result<common::ExitStatus> CgiCall::run() {
  for (auto* fd : {&child_.stdin_fd(), &child_.stdout_fd(), &child_.stderr_fd()})
    if (fd->valid()) common::set_nonblocking(fd->get());
  if (!body_) child_.stdin_fd().reset();
  while (child_.running() || child_.stdout_fd() || child_.stderr_fd()) {
    if (auto refilled = refill_stdin(); !refilled) return stop(refilled.error());
    if (Clock::now() >= settings_.deadline)
      return stop(Error{Error::Code::kTimeout, "the function ran past its exec-timeout"});
    pollfd fds[4];
    nfds_t count = 0;
    bool feeding = child_.stdin_fd() && !pending_.empty();
    if (feeding) fds[count++] = {child_.stdin_fd().get(), POLLOUT, 0};
    if (child_.stdout_fd()) fds[count++] = {child_.stdout_fd().get(), POLLIN, 0};
    if (child_.stderr_fd()) fds[count++] = {child_.stderr_fd().get(), POLLIN, 0};
    if (child_.running()) fds[count++] = {child_.exit_fd(), POLLIN, 0};
    if (::poll(fds, count, poll_timeout(settings_.deadline)) < 0 && errno != EINTR)
      return stop(Error{Error::Code::kInternal, "poll failed"});
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      int fd = fds[i].fd;
      if (feeding && fd == child_.stdin_fd().get()) {
        if (auto written = write_stdin(); !written) return stop(written.error());
      } else if (fd == child_.stdout_fd().get()) {
        if (auto read = read_stdout(); !read) return stop(read.error());
      } else if (fd == child_.stderr_fd().get()) {
        read_stderr();
      } else if (child_.running() && fd == child_.exit_fd()) {
        child_.try_reap();  // also kills what the program left running in its group
      }
    }
  }
  stderr_lines_.flush([this](std::string_view line) { log_line(line); });
  return *child_.status();
}

common::Status CgiCall::refill_stdin() {
  if (!child_.stdin_fd() || !pending_.empty()) return {};
  if (!child_.running()) {  // it exited without reading everything: nobody will
    child_.stdin_fd().reset();
    return {};
  }
  auto read = body_->read_body(settings_.max_body);
  if (!read) return tl::unexpected(read.error());
  pending_ = *read;
  if (pending_.empty()) child_.stdin_fd().reset();  // end of body: the program sees EOF
  return {};
}

common::Status CgiCall::write_stdin() {
  ssize_t n = ::write(child_.stdin_fd().get(), pending_.data(), pending_.size());
  if (n >= 0) {
    pending_.remove_prefix(static_cast<std::size_t>(n));
    return {};
  }
  if (errno == EAGAIN || errno == EINTR) return {};
  // EPIPE: the program closed its stdin; the rest of the body is not wanted.
  child_.stdin_fd().reset();
  pending_ = {};
  return {};
}

common::Status CgiCall::read_stdout() {
  ssize_t n = ::read(child_.stdout_fd().get(), read_buffer(), kReadSize);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return {};
    child_.stdout_fd().reset();
    return {};
  }
  if (n == 0) {
    child_.stdout_fd().reset();
    return {};
  }
  return output_.feed(std::string_view(read_buffer(), static_cast<std::size_t>(n)));
}

void CgiCall::read_stderr() {
  ssize_t n = ::read(child_.stderr_fd().get(), read_buffer(), kReadSize);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    child_.stderr_fd().reset();
    return;
  }
  std::string_view bytes(read_buffer(), static_cast<std::size_t>(n));
  if (settings_.combine_output && stderr_text_.size() < kMaxCombinedStderr)
    stderr_text_.append(bytes.substr(0, kMaxCombinedStderr - stderr_text_.size()));
  stderr_lines_.feed(bytes, [this](std::string_view line) { log_line(line); });
}

void CgiCall::log_line(std::string_view line) {
  static const auto log = common::logger("fn");
  log->info("{} pid={} request_id={}: {}", settings_.function, child_.pid(), settings_.request_id,
            line);
}

common::Result<common::ExitStatus> CgiCall::stop(Error error) {
  child_.terminate();
  return tl::unexpected(std::move(error));
}

}  // namespace watchdog
