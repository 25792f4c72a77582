"""Smoke-test server: answers GET / with this pod's hostname on port 8080.

Its PID goes to /tmp/server.pid so a test can kill exactly this process.
"""

import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pod logs quiet


if __name__ == "__main__":
    with open("/tmp/server.pid", "w") as f:
        f.write(str(os.getpid()))
    ThreadingHTTPServer(("", 8080), Handler).serve_forever()
