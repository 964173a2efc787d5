// The result type of the request path (STYLE.md section 4): expected failures are values, mapped to
// an HTTP status in one place (http_status()), never exceptions.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace common {

struct Error {
  enum class Code {
    kBadRequest,      // the client sent something we refuse (400)
    kUnauthorized,    // credentials missing or wrong (401)
    kForbidden,       // 403
    kNotFound,        // 404
    kMethodNotAllowed,
    kBodyTooLarge,    // 413
    kTooBusy,         // admission refused at once: max-inflight, max-queue (429)
    kUnavailable,     // nothing can serve now: crash loop, every socket down, draining (503)
    kTimeout,         // the function ran past its deadline (504)
    kBadGateway,      // the function broke the protocol, died, or could not start (502)
    kClientGone,      // the client closed or timed out; nothing more can be sent
    kInternal,        // a bug or a resource failure of ours (500)
  };
  Code code = Code::kInternal;
  std::string context;  // one lowercase sentence, safe to show to a client
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(Error::Code code, std::string context) {
  return tl::unexpected<Error>(Error{code, std::move(context)});
}

// The HTTP status a client gets for an error: the one mapping of STYLE.md.
int http_status(Error::Code code) noexcept;

// "bad gateway", "timeout", ... for logs and metrics labels.
const char* code_name(Error::Code code) noexcept;

}  // namespace common
