#include "gateway/function_logs.h"

#include <algorithm>
#include <set>

namespace gateway {
namespace {

// `line` cut to at most `size` bytes with kCutMarker, never inside a UTF-8 sequence.
std::string cut(std::string_view line, std::size_t size) {
  std::size_t keep = size > kCutMarker.size() ? size - kCutMarker.size() : 0;
  while (keep > 0 && (static_cast<unsigned char>(line[keep]) & 0xC0) == 0x80) --keep;
  return std::string(line.substr(0, keep)).append(kCutMarker.substr(0, size - keep));
}

}  // namespace

std::string skipped_line(std::uint64_t count) {
  return "[fastfn: " + std::to_string(count) + " lines skipped: this follower fell behind]\n";
}

void FunctionLog::append(std::string_view line) {
  std::string kept =
      line.size() + 1 > limits_.bytes ? cut(line, limits_.bytes - 1) : std::string(line);
  {
    std::lock_guard lock(mutex_);
    while (!lines_.empty() &&
           (lines_.size() >= limits_.lines || bytes_ + kept.size() + 1 > limits_.bytes)) {
      bytes_ -= lines_.front().size() + 1;
      lines_.pop_front();
    }
    bytes_ += kept.size() + 1;
    lines_.push_back(std::move(kept));
    ++next_;
  }
  changed_.notify_all();
}

FunctionLog::Lines FunctionLog::last(std::optional<std::size_t> count) const {
  std::lock_guard lock(mutex_);
  std::size_t taken = std::min(count.value_or(lines_.size()), lines_.size());
  Lines lines;
  lines.next = next_;
  for (auto it = lines_.end() - static_cast<std::ptrdiff_t>(taken); it != lines_.end(); ++it)
    lines.text.append(*it).push_back('\n');
  return lines;
}

FunctionLog::Lines FunctionLog::since(std::uint64_t from) const {
  std::lock_guard lock(mutex_);
  const std::uint64_t oldest = next_ - lines_.size();
  Lines lines;
  lines.next = next_;
  lines.skipped = from < oldest ? oldest - from : 0;
  for (std::uint64_t n = std::max(from, oldest); n < next_; ++n)
    lines.text.append(lines_[static_cast<std::size_t>(n - oldest)]).push_back('\n');
  return lines;
}

bool FunctionLog::wait(std::uint64_t from, Clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, deadline, [&] { return closed_ || next_ > from; });
}

void FunctionLog::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
}

bool FunctionLog::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

FollowEnd follow(const FunctionLog& log, std::uint64_t from,
                 const std::function<bool(std::string_view)>& send,
                 const std::function<bool()>& client_gone, std::chrono::milliseconds check_every) {
  for (;;) {
    if (!log.wait(from, FunctionLog::Clock::now() + check_every)) {
      if (client_gone()) return FollowEnd::kClientGone;
      continue;
    }
    auto lines = log.since(from);
    from = lines.next;
    if (lines.skipped > 0 && !send(skipped_line(lines.skipped))) return FollowEnd::kSendFailed;
    if (!lines.text.empty() && !send(lines.text)) return FollowEnd::kSendFailed;
    if (lines.text.empty() && log.closed()) return FollowEnd::kClosed;
  }
}

std::shared_ptr<FunctionLog> FunctionLogs::open(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& log = logs_[name];
  if (!log) {
    log = std::make_shared<FunctionLog>(limits_);
    if (closed_) log->close();
  }
  return log;
}

std::shared_ptr<FunctionLog> FunctionLogs::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = logs_.find(name);
  return it == logs_.end() ? nullptr : it->second;
}

void FunctionLogs::keep_only(const std::vector<std::string>& names) {
  std::vector<std::shared_ptr<FunctionLog>> gone;
  {
    std::lock_guard lock(mutex_);
    std::set<std::string_view> kept(names.begin(), names.end());
    for (auto it = logs_.begin(); it != logs_.end();) {
      if (kept.count(it->first) > 0) {
        ++it;
        continue;
      }
      gone.push_back(std::move(it->second));
      it = logs_.erase(it);
    }
  }
  for (const auto& name : names) open(name);
  for (const auto& log : gone) log->close();
}

void FunctionLogs::close_all() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (const auto& [name, log] : logs_) log->close();
}

FunctionLogs::Follower::~Follower() {
  if (!logs_) return;
  std::lock_guard lock(logs_->mutex_);
  --logs_->followers_;
}

std::optional<FunctionLogs::Follower> FunctionLogs::admit() {
  std::lock_guard lock(mutex_);
  if (followers_ >= max_followers_) return std::nullopt;
  ++followers_;
  return Follower(*this);
}

int FunctionLogs::followers() const {
  std::lock_guard lock(mutex_);
  return followers_;
}

}  // namespace gateway
