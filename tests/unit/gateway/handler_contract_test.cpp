#include "gateway/handler_contract.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

using gateway::detect_contract;
using Kind = gateway::HandlerContract::Kind;

Kind python(const std::string& source) { return detect_contract("python", source).kind; }
Kind node(const std::string& source) { return detect_contract("node", source).kind; }

std::string template_file(const std::string& path) {
  std::ifstream in(std::string(FASTFN_SOURCE_DIR) + "/templates/" + path);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("handler contract: FastFN's python handlers are the event contract") {
  CHECK(python("import json\n\ndef handler(event):\n    return {'status': 200}\n") == Kind::kEvent);
  CHECK(python("async def handler(event, id):\n    return 'hi'\n") == Kind::kEvent);
  CHECK(python("def  handler (event):\r\n  pass\r\n") == Kind::kEvent);
  const auto main = detect_contract("python", "def main(event):\n    return {}\n");
  CHECK(main.kind == Kind::kEvent);
  CHECK(main.function == "main");
  CHECK(detect_contract("python", "def main(e): pass\ndef handler(e): pass\n").function ==
        "handler");
}

TEST_CASE("handler contract: python that runs itself stays what it was") {
  // CGI scripts: they print, or call their own function, at the top level.
  CHECK(python("print('Content-Type: text/plain')\nprint()\nprint('hi')\n") == Kind::kCgi);
  CHECK(python("def handler():\n    print('hi')\n\nhandler()\n") == Kind::kCgi);
  CHECK(python("def handler(e):\n    pass\nif __name__ == '__main__':\n    handler(None)\n") ==
        Kind::kCgi);
  CHECK(python("import sys\ndef handler(e): pass\nsys.stdout.write('x')\n") == Kind::kCgi);
  // Nested, or only named alike: not a top-level handler.
  CHECK(python("class A:\n    def handler(self, event):\n        pass\n") == Kind::kCgi);
  CHECK(python("def handler_of(event):\n    pass\n") == Kind::kCgi);
  CHECK(python("") == Kind::kCgi);
}

TEST_CASE("handler contract: fastfn's stdio loop is format http, with or without a config") {
  CHECK(python("from fastfn_http import Request, serve\nserve(print)\n") == Kind::kStdio);
  CHECK(python("import fastfn_http\n") == Kind::kStdio);
  CHECK(python("import fastfn_https\n") == Kind::kCgi);
  CHECK(node("const { serve } = require('./fastfn_http');\n") == Kind::kStdio);
  CHECK(node("const http = require(\"./fastfn_http.js\");\n") == Kind::kStdio);
  // The templates, copied without their fn.config.json.
  CHECK(python(template_file("python-http/handler.py")) == Kind::kStdio);
  CHECK(node(template_file("node-http/handler.js")) == Kind::kStdio);
}

TEST_CASE("handler contract: FastFN's node handlers are the event contract") {
  CHECK(node("exports.handler = async (event) => ({ status: 200 });\n") == Kind::kEvent);
  CHECK(node("module.exports.handler = function (event) {};\n") == Kind::kEvent);
  CHECK(node("export async function handler(event) { return 'hi'; }\n") == Kind::kEvent);
  CHECK(node("export const handler = async (event) => 'hi';\n") == Kind::kEvent);
  CHECK(node("async function handler(event) {}\nmodule.exports = { handler };\n") == Kind::kEvent);
  CHECK(node("const handler = () => 1;\nmodule.exports = { other, handler: handler };\n") ==
        Kind::kEvent);
}

TEST_CASE("handler contract: node that runs itself or exports no handler is CGI") {
  CHECK(node("console.log('Content-Type: text/plain\\n');\nconsole.log('hi');\n") == Kind::kCgi);
  CHECK(node("exports.handler = (e) => 1;\nif (require.main === module) exports.handler();\n") ==
        Kind::kCgi);
  CHECK(node("exports.handler = (e) => 1;\nprocess.stdout.write('x');\n") == Kind::kCgi);
  CHECK(node("exports.handlers = {};\nexports.handler == 1;\n") == Kind::kCgi);
  CHECK(node("module.exports = { myhandler };\n") == Kind::kCgi);
  CHECK(node("export function handlerOf(e) {}\n") == Kind::kCgi);
}

TEST_CASE("handler contract: other runtimes are CGI whatever their source") {
  CHECK(detect_contract("sh", "def handler(event):\n  pass\n").kind == Kind::kCgi);
}
