// The parts of a log message as STYLE.md section 6 writes it, `event text key=value key="quoted"`,
// for the JSON log (json_log_line.h): the message text and its fields, found without allocating.
#pragma once

#include <cstddef>
#include <string_view>

namespace common {

// One `key=value` of a message. `value` is the raw text between the quotes when `quoted` (its \"
// and \\ still escaped), else the bare value.
struct LogField {
  std::string_view key;
  std::string_view value;
  bool quoted = false;
};

// Receives the parts of one message, in order. `joiner` is what goes before `piece` in the
// message text: "" for the first piece, else " " (or ": " before a child's line).
class LogPartsVisitor {
 public:
  virtual void text(std::string_view piece, std::string_view joiner) = 0;
  virtual void field(const LogField& field) = 0;

 protected:
  ~LogPartsVisitor() = default;
};

// How a logger's messages read.
enum class LogShape {
  kEvent,           // `event text key=value ...`
  kChildOutput,     // `text key=value ...: LINE`, LINE a child's own output, never split
  kFunctionOutput,  // `FUNCTION pid=N request_id=ID: LINE`, the `fn` logger's (STYLE.md 6)
};

// The shape of the messages of logger `name`: `fn` and `gateway.install` log what a child wrote.
LogShape log_shape_of(std::string_view logger_name);

// Calls `visitor` for each part of `message`. The grammar, chosen for the messages fastfn writes:
// - a field starts a word (at the start or after a space) with `key=`, key [A-Za-z_][A-Za-z0-9_]*;
// - a quoted value ends at the first unescaped `"` followed by the end or by ` key=`; failing
//   that, at the first followed by a space or the end; unterminated, it runs to the end;
// - a bare value runs to the next space, but the last field's runs to the end of the message (an
//   error text, a command line);
// - words that are not fields are the message text, each run given as it is;
// - kChildOutput and kFunctionOutput: the first bare value ending in `:` before a space ends the
//   fields, and the rest is one piece of text, kept as it is (joiner ": ");
//   kFunctionOutput: the first word is the field `function`;
// - after kMaxLogFields fields, the rest is text.
// With no field at all, the one piece is `message` itself.
void split_log_message(std::string_view message, LogShape shape, LogPartsVisitor& visitor);

inline constexpr std::size_t kMaxLogFields = 64;

}  // namespace common
