#!/usr/bin/env python3
"""A registry that misbehaves, for stamp's tests. Prints its port, then serves until killed.

  endless   a manifest GET answers 200 and sends bytes forever
  drip      a manifest GET answers 200 and sends one byte every two seconds
"""
import http.server, sys, time

mode = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(1 << 40))
        self.end_headers()
        try:
            if mode == "endless":
                chunk = b" " * 65536
                while True:
                    self.wfile.write(chunk)
            else:
                self.wfile.write(b"{")
                while True:
                    time.sleep(2)
                    self.wfile.write(b" ")
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_HEAD = do_GET


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
