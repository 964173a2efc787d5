#include "common/line_splitter.h"

namespace common {
namespace {

std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

void LineSplitter::feed(std::string_view bytes, const Emit& emit) {
  while (!bytes.empty()) {
    auto newline = bytes.find('\n');
    std::size_t room = max_line_ - partial_.size();
    bool too_long = newline == std::string_view::npos ? bytes.size() >= room : newline > room;
    if (too_long) {  // emit a full piece now rather than buffer a line without bound
      partial_.append(bytes.substr(0, room));
      emit(partial_);
      partial_.clear();
      bytes.remove_prefix(room);
      just_cut_ = true;
      continue;
    }
    if (newline == std::string_view::npos) {
      partial_.append(bytes);
      return;
    }
    if (partial_.empty()) {
      emit_line(without_cr(bytes.substr(0, newline)), emit);
    } else {
      partial_.append(bytes.substr(0, newline));
      emit_line(without_cr(partial_), emit);
      partial_.clear();
    }
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::flush(const Emit& emit) {
  if (partial_.empty()) return;
  emit_line(without_cr(partial_), emit);
  partial_.clear();
}

void LineSplitter::emit_line(std::string_view line, const Emit& emit) {
  // A line of exactly max_line bytes was already emitted when it filled up; its newline ends it
  // rather than starting an empty line.
  bool ends_cut_line = just_cut_ && line.empty();
  just_cut_ = false;
  if (!ends_cut_line) emit(line);
}

}  // namespace common
