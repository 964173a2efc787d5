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
      continue;
    }
    if (newline == std::string_view::npos) {
      partial_.append(bytes);
      return;
    }
    if (partial_.empty()) {
      emit(without_cr(bytes.substr(0, newline)));
    } else {
      partial_.append(bytes.substr(0, newline));
      emit(without_cr(partial_));
      partial_.clear();
    }
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::flush(const Emit& emit) {
  if (partial_.empty()) return;
  emit(without_cr(partial_));
  partial_.clear();
}

}  // namespace common
