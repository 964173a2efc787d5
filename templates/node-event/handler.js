'use strict';
// A FastFN-style Node function: fastfn calls handler(event) for each request, in one hot process.
// event holds method, path, query, headers, body (text; base64 with is_base64 for binary bodies),
// params and context (request_id, deadline_ms). Return (or resolve to) {status, headers, body}, an
// object or array (sent as JSON), or a string.

exports.handler = async (event) => {
  if (event.method === 'POST') {
    const headers = { 'Content-Type': 'application/octet-stream' };
    if (event.is_base64) return { status: 200, headers, is_base64: true, body_base64: event.body_base64 };
    return { status: 200, headers, body: event.body };
  }
  const name = event.query.name || 'world';
  return `hello ${name} from pid ${process.pid}\n`;
};
