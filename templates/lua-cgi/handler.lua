-- A Lua function (lua5.4, one process per request, format cgi): the request arrives as RFC 3875
-- variables (REQUEST_METHOD, QUERY_STRING, PATH_INFO, HTTP_*) with the body on stdin, and stdout
-- is the response body (exit 0: 200, otherwise 500). stderr is the function's log.
local query = os.getenv("QUERY_STRING") or ""
local name = query:match("^name=([^&]*)") or query:match("&name=([^&]*)") or "world"
local method = os.getenv("REQUEST_METHOD") or "GET"
io.write(string.format("hello %s from %s %s\n", name, _VERSION, method))
io.write(io.read("a") or "")  -- the request body, echoed back
