'use strict';
// A hot Node function (fastfn --format http), no npm packages. One process answers many requests:
// fastfn_http.js (beside this file) reads them from stdin and writes the answers to stdout, so
// console.log() goes to the function's log.

const { serve } = require('./fastfn_http');

// The function: greets ?name= on GET, echoes POST bodies.
async function handle(request) {
  if (request.method === 'POST') {
    return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: request.body };
  }
  const name = request.query.get('name') || 'world';
  return `hello ${name} from pid ${process.pid}\n`;
}

module.exports = { serve, handle };

if (require.main === module) serve(handle);
