'use strict';
// The fastfn stdio loop for hot Node handlers (format http), no npm packages. fastfn writes one
// HTTP/1.1 request at a time to stdin, framed by Content-Length, and reads one response from
// stdout. `serve(handle)` runs that loop; `handle(request)` returns (or resolves to)
// {status, headers, body}, a string/Buffer for a 200, or an object with no `status`/`body` for a
// JSON 200. A header whose value is an array is sent once per item (Set-Cookie). A body that is an
// (async) iterable is sent chunked, each piece as it is produced.
// stdout is the protocol: console.log() is sent to stderr, the function's log.

const kMaxHead = 64 * 1024;

// The one reader of stdin for the life of the process: bytes read ahead of a request stay here.
class StdinReader {
  constructor(stream) {
    this.chunks = [];
    this.size = 0;
    this.ended = false;
    this.wakeup = null;
    stream.on('data', (chunk) => { this.chunks.push(chunk); this.size += chunk.length; this.wake(); });
    stream.on('end', () => { this.ended = true; this.wake(); });
  }

  wake() {
    const wakeup = this.wakeup;
    this.wakeup = null;
    if (wakeup) wakeup();
  }

  // Waits for more bytes; false once stdin has ended.
  async more() {
    if (this.ended) return false;
    await new Promise((resolve) => { this.wakeup = resolve; });
    return true;
  }

  // Everything buffered, as one Buffer (chunks are joined only when looked at).
  peek() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] || Buffer.alloc(0);
  }

  take(n) {
    const all = this.peek();
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return all.subarray(0, n);
  }

  async fill(n) {
    while (this.size < n) {
      if (!(await this.more())) return false;
    }
    return true;
  }
}

function headEnd(bytes) {
  const crlf = bytes.indexOf('\n\r\n');
  const lf = bytes.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return -1;
  if (lf < 0 || (crlf >= 0 && crlf < lf)) return crlf + 3;
  return lf + 2;  // bare \n line endings are accepted too
}

function parseHead(text) {
  const lines = text.split(/\r?\n/).filter((line) => line.length > 0);
  const parts = (lines.shift() || '').split(' ');
  if (parts.length !== 3 || !parts[2].startsWith('HTTP/')) {
    throw new Error(`bad request line ${JSON.stringify(parts.join(' '))}`);
  }
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { method: parts[0], target: parts[1], headers };
}

// The next request, or null when stdin closed between requests.
async function readRequest(reader) {
  let end;
  while ((end = headEnd(reader.peek())) < 0) {
    if (reader.size > kMaxHead) throw new Error('request head too large');
    if (!(await reader.more())) {
      if (reader.size === 0) return null;
      throw new Error('stdin closed inside a request head');
    }
  }
  const request = parseHead(reader.take(end).toString('latin1'));
  const length = request.headers['content-length'] || '0';
  if (!/^\d+$/.test(length)) throw new Error(`bad Content-Length ${JSON.stringify(length)}`);
  if (!(await reader.fill(Number(length)))) throw new Error('stdin closed inside a request body');
  request.body = Buffer.from(reader.take(Number(length)));
  const question = request.target.indexOf('?');
  request.path = question < 0 ? request.target : request.target.slice(0, question);
  request.query = new URLSearchParams(question < 0 ? '' : request.target.slice(question + 1));
  request.requestId = request.headers['x-fn-request-id'] || '';
  return request;
}

function coerce(result) {
  if (typeof result === 'string' || Buffer.isBuffer(result) || result == null) {
    return { status: 200, headers: {}, body: result == null ? '' : result };
  }
  if (!('status' in result) && !('body' in result)) {
    const body = JSON.stringify(result) + '\n';
    return { status: 200, headers: { 'Content-Type': 'application/json' }, body };
  }
  const body = result.body == null ? '' : result.body;
  return { status: result.status || 200, headers: result.headers || {}, body };
}

const kReasons = { 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request',
  404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error' };

const kFramingHeaders = ['content-length', 'transfer-encoding', 'connection'];  // ours to write

function head(response, framing) {
  const lines = [`HTTP/1.1 ${response.status} ${kReasons[response.status] || 'Status'}`];
  const names = Object.keys(response.headers).map((name) => name.toLowerCase());
  if (!names.includes('content-type')) lines.push('Content-Type: text/plain; charset=utf-8');
  for (const [name, value] of Object.entries(response.headers)) {
    if (kFramingHeaders.includes(name.toLowerCase())) continue;
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${item}`);
  }
  lines.push(framing);
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}

async function writeResponse(write, response, method) {
  const body = response.body;
  const bodiless = method === 'HEAD' || response.status === 204 || response.status === 304;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    const data = Buffer.from(body);
    const framed = head(response, `Content-Length: ${data.length}`);
    await write(bodiless ? framed : Buffer.concat([framed, data]));
    return;
  }
  if (bodiless) {
    await write(head(response, 'Content-Length: 0'));
    return;
  }
  await write(head(response, 'Transfer-Encoding: chunked'));
  for await (const piece of body) {
    const data = Buffer.from(piece);
    if (!data.length) continue;  // an empty chunk would end the body
    await write(Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]));
  }
  await write(Buffer.from('0\r\n\r\n'));
}

async function serve(handle) {
  const stdout = process.stdout;
  const rawWrite = stdout.write.bind(stdout);
  const write = (data) => new Promise((resolve, reject) => {
    rawWrite(data, (error) => (error ? reject(error) : resolve()));
  });
  stdout.write = process.stderr.write.bind(process.stderr);  // console.log() goes to the log
  stdout.on('error', () => process.exit(0));  // the watchdog went away
  const reader = new StdinReader(process.stdin);
  for (;;) {
    let request;
    try {
      request = await readRequest(reader);
    } catch (error) {
      console.error(`fastfn: ${error.message}; exiting`);
      process.exit(1);
    }
    if (request === null) process.exit(0);
    let response;
    try {
      response = coerce(await handle(request));
    } catch (error) {  // the handler's bug becomes a 500, the process lives on
      console.error(`handler error: ${error && error.stack ? error.stack : error}`);
      response = { status: 500, headers: {}, body: `handler error: ${error && error.message}\n` };
    }
    try {
      await writeResponse(write, response, request.method);
    } catch (error) {  // a streamed body failed after its head went out: the stream is broken
      console.error(`handler error while responding: ${error && error.message}; exiting`);
      process.exit(1);
    }
  }
}

module.exports = { serve };
