#include "common/error.h"

namespace common {

int http_status(Error::Code code) noexcept {
  switch (code) {
    case Error::Code::kBadRequest: return 400;
    case Error::Code::kUnauthorized: return 401;
    case Error::Code::kForbidden: return 403;
    case Error::Code::kNotFound: return 404;
    case Error::Code::kMethodNotAllowed: return 405;
    case Error::Code::kBodyTooLarge: return 413;
    case Error::Code::kTooBusy: return 429;
    case Error::Code::kUnavailable: return 503;
    case Error::Code::kTimeout: return 504;
    case Error::Code::kBadGateway: return 502;
    case Error::Code::kClientGone: return 499;  // never sent; what nginx logs for it
    case Error::Code::kInternal: return 500;
  }
  return 500;
}

const char* code_name(Error::Code code) noexcept {
  switch (code) {
    case Error::Code::kBadRequest: return "bad_request";
    case Error::Code::kUnauthorized: return "unauthorized";
    case Error::Code::kForbidden: return "forbidden";
    case Error::Code::kNotFound: return "not_found";
    case Error::Code::kMethodNotAllowed: return "method_not_allowed";
    case Error::Code::kBodyTooLarge: return "body_too_large";
    case Error::Code::kTooBusy: return "too_busy";
    case Error::Code::kUnavailable: return "unavailable";
    case Error::Code::kTimeout: return "timeout";
    case Error::Code::kBadGateway: return "bad_gateway";
    case Error::Code::kClientGone: return "client_gone";
    case Error::Code::kInternal: return "internal";
  }
  return "internal";
}

}  // namespace common
