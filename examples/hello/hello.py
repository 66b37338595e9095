#!/usr/bin/env python3
"""hello.py - the demo's backend: a tiny HTTP/1.1 service (keep-alive) that
answers every GET or HEAD with one line of JSON saying which instance
answered, on which host, when, for which path, and the client address the
proxy passed on in X-Forwarded-For.

    python3 examples/hello/hello.py PORT [NAME]     # listens on 127.0.0.1:PORT
"""
import datetime, json, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive: the proxy pools its connections
    wbufsize = -1                       # head and body in one write (no Nagle stall);
                                        # the base class flushes after each request

    def version_string(self):           # the Server header
        return "hello/1"

    def answer(self, with_body):
        body = json.dumps({
            "service": "hello",
            "instance": self.server.name,
            "host": socket.gethostname(),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "path": self.path,
            "client": self.headers.get("X-Forwarded-For", self.client_address[0]),
        }).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)

    def log_message(self, fmt, *args):   # quiet: the proxy counts requests
        pass


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[1].strip())
    port = int(sys.argv[1])
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", port), Hello)
    server.name = sys.argv[2] if len(sys.argv) == 3 else f"hello-{port}"
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
