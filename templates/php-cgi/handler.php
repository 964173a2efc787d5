<?php
// A PHP function, run by php-cgi once per request (format cgi, as PHP runs under any web server):
// $_GET, $_POST, $_SERVER and php://input hold the request; header() and http_response_code()
// shape the response; what it echoes is the body. error_log() goes to the function's log.
$name = $_GET['name'] ?? 'world';
header('Content-Type: text/plain; charset=utf-8');
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    echo file_get_contents('php://input');
    return;
}
echo "hello {$name} from PHP " . PHP_MAJOR_VERSION . " (" . $_SERVER['REQUEST_METHOD'] . ")\n";
