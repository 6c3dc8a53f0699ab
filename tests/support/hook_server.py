#!/usr/bin/env python3
"""A real webhook receiver for the daemon tests: an HTTP(S) server on 127.0.0.1 that answers
the first FAIL_FIRST POSTs with 503 and the rest with 204, and appends every request it got
(status it answered, path, headers, body) as one JSON line to OUT. Prints its port on stdout.

    hook_server.py OUT FAIL_FIRST [CERT KEY]"""
import http.server
import json
import ssl
import sys
import threading

out, fail_first = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
seen = 0


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            seen += 1
            code = 503 if seen <= fail_first else 204
            with open(out, "a") as f:
                f.write(json.dumps({"status": code, "path": self.path,
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": body.decode()}) + "\n")
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
