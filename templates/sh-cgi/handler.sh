#!/bin/sh
# A CGI-format function (fastfn's default format): one process per request. The request arrives as
# RFC 3875 variables (REQUEST_METHOD, QUERY_STRING, PATH_INFO, HTTP_*) with the body on stdin, and
# stdout is the response body (exit 0: 200, otherwise 500). stderr is the function's log.
set -eu
name=$(printf '%s\n' "${QUERY_STRING:-}" | tr '&' '\n' | sed -n 's/^name=//p' | head -n 1)
printf 'hello %s from %s %s\n' "${name:-world}" "${REQUEST_METHOD:-GET}" "${PATH_INFO:-/}"
echo "request_id=${X_FN_REQUEST_ID:-}" >&2
cat  # the request body, echoed back
