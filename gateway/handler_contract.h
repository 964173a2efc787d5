// How a python or node handler file talks to fastfn when its fn.config.json names no format, read
// from its source without running it. FastFN's handlers define a function and no loop
// (`def handler(event)`, `exports.handler = async (event) => ...`): the event contract, run hot
// through fastfn's shim. fastfn's own hot handlers import its stdio loop (fastfn_http): format
// http. Anything else is a CGI program, as fastfn always ran it. Line-based, so it reads what a
// handler's author wrote at the top level of the file and nothing deeper:
//   python  event: `def handler(` or `async def handler(` at column 0 (else `def main(`), and no
//           column-0 `if __name__`, `print(`, `sys.stdout`, or call of that function;
//           stdio: a line `import fastfn_http` or `from fastfn_http import ...`.
//   node    event: `exports.handler =` (also `module.exports.handler =`), `export [async]
//           function handler`, `export const|let|var handler`, or `module.exports = {...handler`
//           on one line; and no `require.main === module`, nor column-0 `console.log(` or
//           `process.stdout.write(`;
//           stdio: `require('./fastfn_http')` (either quote, with or without .js).
#pragma once

#include <string>
#include <string_view>

namespace gateway {

struct HandlerContract {
  enum class Kind { kCgi, kStdio, kEvent } kind = Kind::kCgi;
  std::string function;  // kEvent: the function the shim calls ("handler" or "main")
};

// `runtime` is "python" or "node"; any other runtime is kCgi.
HandlerContract detect_contract(std::string_view runtime, std::string_view source);

}  // namespace gateway
