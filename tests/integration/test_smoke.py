"""The proxy forwards a request to a real backend and counts it."""
from harness import *


def test_forward_and_count():
    with echo_backend() as be, cutover({"shop": {"targets": [f"127.0.0.1:{be.server_address[1]}"]}}) as c:
        status, headers, body = http_get(c.port, "/hello")
        eq(status, 200, "status")
        check(b'"target": "/hello"' in body, f"backend did not see /hello: {body!r}")
        eq(c.metric("cutover_requests_total", service="shop", status="2xx"), 1.0, "requests_total")
        eq(c.terminate(), 0, "exit status after SIGTERM")
