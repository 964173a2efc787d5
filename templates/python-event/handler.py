"""A FastFN-style Python function: fastfn calls handler(event) for each request, in one hot process.

event holds method, path, query, headers, body (text; base64 with is_base64 for binary bodies),
params and context (request_id, deadline_ms). Return a dict {status, headers, body}, a dict or list
(sent as JSON), or a str.
"""

import os


def handler(event):
    if event["method"] == "POST":
        if event["is_base64"]:
            return {"status": 200, "headers": {"Content-Type": "application/octet-stream"},
                    "is_base64": True, "body_base64": event["body_base64"]}
        return {"status": 200, "headers": {"Content-Type": "application/octet-stream"},
                "body": event["body"]}
    name = event["query"].get("name", "world")
    return f"hello {name} from pid {os.getpid()}\n"
