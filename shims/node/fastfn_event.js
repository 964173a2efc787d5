'use strict';
// Runs a FastFN-style Node function, `exports.handler = async (event) => ...`, as a hot fastfn
// process (format http). The gateway starts it as `node fastfn_event.js FILE [NAME]` in the
// function's folder: FILE is loaded once (require, or import() for ES modules), then every request
// on stdin is answered by its export NAME (default `handler`, also looked for on `default`).
//
// The event is FastFN's: id, ts, method, path, raw_path, query ({name: value}, an array for a
// repeated name), headers (lowercase names), body (text; base64 text when the body is not UTF-8,
// then is_base64 is true and body_base64 holds it too), params, client {ip, ua}, context
// {request_id, function_name, deadline_ms, timeout_ms (what is left of the deadline)}. The route
// parameters (a file route's [id], [...slug]) come from the gateway's X-Fn-Params header (a JSON
// object, not passed on in headers); a handler that declares two parameters gets them as the
// second.
//
// What the handler returns (or resolves to) is the response: {status (or statusCode), headers,
// body} with body a string, Buffer, or object/array sent as JSON (is_base64 with body_base64 or
// body for binary); an object without those keys is a JSON 200; a string is a 200 (text/html when
// it starts with "<"), a Buffer an octet-stream 200, null/undefined an empty 200. A throw, or a
// result of another shape, is a 500 whose body says only that: the stack goes to stderr, the
// function's log.

const path = require('path');
const { pathToFileURL } = require('url');
const { serve } = require('./fastfn_http');

const kEnvelopeKeys = ['status', 'statusCode', 'headers', 'body', 'body_base64', 'is_base64',
  'isBase64Encoded'];

class BadResponse extends Error {}

async function loadHandler(file, name) {
  const absolute = path.resolve(file);
  let module;
  try {
    module = require(absolute);
  } catch (error) {
    if (error.code !== 'ERR_REQUIRE_ESM') throw error;
    module = await import(pathToFileURL(absolute).href);
  }
  for (const holder of [module, module && module.default]) {
    if (holder && typeof holder[name] === 'function') return holder[name];
  }
  if (name === 'handler' && module && typeof module.default === 'function') return module.default;
  throw new Error(`${file} exports no function ${name}(event)`);
}

function queryOf(params) {
  const query = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

function paramsOf(headers) {
  const text = headers['x-fn-params'];
  delete headers['x-fn-params'];
  try {
    const params = JSON.parse(text || '{}');
    return params && typeof params === 'object' && !Array.isArray(params) ? params : {};
  } catch (error) {
    return {};
  }
}

function eventOf(request) {
  const headers = { ...request.headers };
  const params = paramsOf(headers);
  const deadlineMs = Number(headers['x-fn-deadline-ms'] || 0);
  const event = {
    id: request.requestId,
    ts: Date.now(),
    method: request.method,
    path: request.path,
    raw_path: request.target,
    query: queryOf(request.query),
    headers,
    params,
    client: { ip: (headers['x-forwarded-for'] || '').split(',')[0].trim(),
      ua: headers['user-agent'] || '' },
    context: {
      request_id: request.requestId,
      function_name: process.env.FN_FUNCTION_NAME || '',
      deadline_ms: deadlineMs,
      timeout_ms: deadlineMs ? Math.max(0, deadlineMs - Date.now()) : 0,
    },
  };
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    event.body = text.decode(request.body);
    event.is_base64 = false;
  } catch {
    event.body = event.body_base64 = request.body.toString('base64');
    event.is_base64 = true;
  }
  return event;
}

function headerLines(headers) {
  if (typeof headers !== 'object' || Array.isArray(headers)) {
    throw new BadResponse(`headers must be an object, got ${typeof headers}`);
  }
  const lines = {};
  for (const [name, value] of Object.entries(headers)) {
    const values = (Array.isArray(value) ? value : [value]).map(String);
    if (/[\r\n\0]/.test(name + values.join(''))) {
      throw new BadResponse(`header ${JSON.stringify(name)} holds a line break`);
    }
    lines[name] = values.length > 1 ? values : values[0];
  }
  return lines;
}

function hasContentType(headers) {
  return Object.keys(headers).some((name) => name.toLowerCase() === 'content-type');
}

function jsonResponse(status, value, headers) {
  if (!hasContentType(headers)) headers['Content-Type'] = 'application/json';
  return { status, headers, body: JSON.stringify(value) + '\n' };
}

function bareResponse(result) {
  if (result === null || result === undefined) return { status: 200, headers: {}, body: '' };
  if (Buffer.isBuffer(result) || result instanceof Uint8Array) {
    return { status: 200, headers: { 'Content-Type': 'application/octet-stream' },
      body: Buffer.from(result) };
  }
  if (typeof result === 'string') {
    const kind = result.trimStart().startsWith('<') ? 'text/html' : 'text/plain';
    return { status: 200, headers: { 'Content-Type': `${kind}; charset=utf-8` }, body: result };
  }
  if (typeof result === 'object') return jsonResponse(200, result, {});
  throw new BadResponse(`the handler returned a ${typeof result}`);
}

function responseOf(result) {
  const envelope = result && typeof result === 'object' && !Array.isArray(result) &&
    !Buffer.isBuffer(result) && kEnvelopeKeys.some((key) => key in result);
  if (!envelope) return bareResponse(result);
  const status = result.status ?? result.statusCode ?? 200;
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new BadResponse(`status must be an integer 100..599, got ${JSON.stringify(status)}`);
  }
  const headers = headerLines(result.headers || {});
  if (result.is_base64 ?? result.isBase64Encoded) {
    const encoded = result.body_base64 ?? result.body ?? '';
    return { status, headers, body: Buffer.from(encoded, 'base64') };
  }
  const body = result.body;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    if (!hasContentType(headers)) headers['Content-Type'] = 'application/octet-stream';
    return { status, headers, body: Buffer.from(body) };
  }
  if (body !== null && typeof body === 'object') return jsonResponse(status, body, headers);
  return { status, headers, body: body === null || body === undefined ? '' : String(body) };
}

function errorResponse(request, what) {
  const reason = { error: `${what}; the function's log has the details`,
    request_id: request.requestId };
  return { status: 500, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(reason) + '\n' };
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 1 || args.length > 2) {
    console.error('usage: fastfn_event.js HANDLER_FILE [FUNCTION_NAME]');
    process.exit(2);
  }
  // What the module prints while it loads goes to the log: stdout is the protocol.
  const protocolWrite = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr);
  let handler;
  try {
    handler = await loadHandler(args[0], args[1] || 'handler');
  } catch (error) {
    console.error(`fastfn_event: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  }
  process.stdout.write = protocolWrite;
  await serve(async (request) => {
    const event = eventOf(request);
    try {
      const result = handler.length > 1 ? handler(event, event.params) : handler(event);
      return responseOf(await result);
    } catch (error) {
      if (error instanceof BadResponse) {
        console.error(`request_id=${request.requestId} bad response: ${error.message}`);
        return errorResponse(request, 'the function returned no valid response');
      }
      const trace = error && error.stack ? error.stack : error;
      console.error(`request_id=${request.requestId} handler threw: ${trace}`);
      return errorResponse(request, 'the function threw an exception');
    }
  });
}

main();
