// Cuts a child's stderr into log lines. Lines of any length are handled: one longer than the limit
// is emitted in pieces as it arrives, so a 1 MiB line never stalls the pipe or grows a buffer.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace common {

class LineSplitter {
 public:
  using Emit = std::function<void(std::string_view line)>;

  explicit LineSplitter(std::size_t max_line = 16 * 1024) : max_line_(max_line > 0 ? max_line : 1) {}

  // Emits every complete line in `bytes` (without its "\n" or "\r\n"), and pieces of max_line bytes
  // of a line that grows past the limit; keeps the unfinished rest.
  void feed(std::string_view bytes, const Emit& emit);
  // Emits what is left (the last line had no newline).
  void flush(const Emit& emit);

 private:
  void emit_line(std::string_view line, const Emit& emit);

  std::size_t max_line_;
  std::string partial_;
  bool just_cut_ = false;  // the last emit was a piece cut at max_line
};

}  // namespace common
