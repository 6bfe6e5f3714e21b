"""A reverse proxy on 127.0.0.1 that forwards to UPSTREAM only requests carrying
`Authorization: Bearer TOKEN` (as an auth gateway in front of Prometheus does); 401 otherwise.

  bearer_proxy.py UPSTREAM TOKEN --port-file F"""
import argparse
import http.server
import os
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("upstream")
p.add_argument("token")
p.add_argument("--port-file", required=True)
a = p.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer " + a.token:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with urllib.request.urlopen(a.upstream + self.path, timeout=10) as r:
            body = r.read()
            self.send_response(r.status)
            self.send_header("Content-Type", r.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(a.port_file + ".tmp", a.port_file)
server.serve_forever()
