#include "common/log_fields.h"

namespace common {
namespace {

constexpr std::size_t npos = std::string_view::npos;

bool is_key_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9'); }

// The length of the key when a field starts at `at` (`key=`), else 0.
std::size_t key_length_at(std::string_view text, std::size_t at) {
  if (at >= text.size() || (at > 0 && text[at - 1] != ' ') || !is_key_start(text[at])) return 0;
  std::size_t end = at + 1;
  while (end < text.size() && is_key_char(text[end])) ++end;
  return end < text.size() && text[end] == '=' ? end - at : 0;
}

// Where the next field starts at or after `from`, npos when none does.
std::size_t next_field(std::string_view text, std::size_t from) {
  for (std::size_t at = from; at < text.size();) {
    if (key_length_at(text, at) > 0) return at;
    std::size_t space = text.find(' ', at);
    if (space == npos) break;
    at = space + 1;
  }
  return npos;
}

// The closing quote of a value opening at `open` (see the grammar in the header), npos when none.
std::size_t closing_quote(std::string_view text, std::size_t open) {
  std::size_t first = npos;
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
      continue;
    }
    if (text[i] != '"') continue;
    if (i + 1 == text.size()) return i;
    if (text[i + 1] != ' ') continue;
    if (key_length_at(text, i + 2) > 0) return i;
    if (first == npos) first = i;
  }
  return first;
}

class Splitter {
 public:
  Splitter(std::string_view text, LogShape shape, LogPartsVisitor& visitor)
      : text_(text), shape_(shape), visitor_(visitor) {}

  void run() {
    std::size_t at = 0;
    if (shape_ == LogShape::kFunctionOutput) at = function_word();
    while (at < text_.size()) {
      std::size_t key_length = fields_ < kMaxLogFields ? key_length_at(text_, at) : 0;
      if (key_length > 0) {
        at = field_at(at, key_length);
      } else {
        std::size_t next = fields_ < kMaxLogFields ? next_field(text_, at) : npos;
        // The space before the next field separates; the text keeps its own.
        emit_text(text_.substr(at, next == npos ? npos : next - 1 - at), " ");
        at = next;
      }
    }
  }

 private:
  // `FUNCTION pid=...`: the first word is the function when fields follow it.
  std::size_t function_word() {
    std::size_t space = text_.find(' ');
    if (space == 0 || space == npos || key_length_at(text_, space + 1) == 0) return 0;
    emit_field({"function", text_.substr(0, space), false});
    return space + 1;
  }

  // Reads the field at `at`; returns where the next part starts (npos: the end).
  std::size_t field_at(std::size_t at, std::size_t key_length) {
    std::string_view key = text_.substr(at, key_length);
    std::size_t start = at + key_length + 1;
    if (start < text_.size() && text_[start] == '"') {
      std::size_t close = closing_quote(text_, start);
      emit_field({key, text_.substr(start + 1, close == npos ? npos : close - start - 1), true});
      return close == npos || close + 1 >= text_.size() ? npos : close + 2;
    }
    std::size_t space = text_.find(' ', start);
    if (space == npos) {
      emit_field({key, text_.substr(start), false});
      return npos;
    }
    std::string_view value = text_.substr(start, space - start);
    if (shape_ != LogShape::kEvent && value.ends_with(':')) {
      emit_field({key, value.substr(0, value.size() - 1), false});
      emit_text(text_.substr(space + 1), ": ");
      return npos;
    }
    if (shape_ == LogShape::kEvent && next_field(text_, space + 1) == npos) {
      emit_field({key, text_.substr(start), false});  // the last field: all that is left
      return npos;
    }
    emit_field({key, value, false});
    return space + 1;
  }

  void emit_field(const LogField& field) {
    ++fields_;
    visitor_.field(field);
  }

  void emit_text(std::string_view piece, std::string_view joiner) {
    if (piece.empty()) return;
    visitor_.text(piece, texts_++ == 0 ? std::string_view() : joiner);
  }

  std::string_view text_;
  LogShape shape_;
  LogPartsVisitor& visitor_;
  std::size_t fields_ = 0;
  std::size_t texts_ = 0;
};

}  // namespace

LogShape log_shape_of(std::string_view logger_name) {
  if (logger_name == "fn") return LogShape::kFunctionOutput;
  if (logger_name == "gateway.install") return LogShape::kChildOutput;
  return LogShape::kEvent;
}

void split_log_message(std::string_view message, LogShape shape, LogPartsVisitor& visitor) {
  Splitter(message, shape, visitor).run();
}

}  // namespace common
