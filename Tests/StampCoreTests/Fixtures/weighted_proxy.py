"""A small gateway for the tests of `stamp canary`, on 127.0.0.1: requests with the canary
header go to the canary upstream, the others are split by weight (exactly WEIGHT of every 100,
spread evenly), as a mesh's weighted route does on average.

  weighted_proxy.py --stable URL --canary URL --weight N --port-file F
                    [--header NAME=VALUE] [--ignore-header] [--html] [--bearer TOKEN]

--ignore-header: the header is not routed (a broken route). --html: every answer is an HTML
page, as an app's catch-all frontend route answers a path it does not serve. --bearer: only
requests with `Authorization: Bearer TOKEN` pass, 401 otherwise (an auth gateway in front of
Prometheus, which has no bearer auth of its own)."""
import argparse
import http.server
import threading
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("--stable", required=True)
p.add_argument("--canary", required=True)
p.add_argument("--weight", type=int, required=True)
p.add_argument("--header", default="x-canary-flag=enabled")
p.add_argument("--ignore-header", action="store_true")
p.add_argument("--html", action="store_true")
p.add_argument("--bearer")
p.add_argument("--port-file", required=True)
a = p.parse_args()
name, value = a.header.split("=", 1)
lock = threading.Lock()
count = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if a.bearer is not None and self.headers.get("Authorization") != "Bearer " + a.bearer:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if a.html:
            body = b"<!doctype html><html><body><div id=root></div></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not a.ignore_header and self.headers.get(name) == value:
            upstream = a.canary
        else:
            with lock:
                n = count[0]
                count[0] += 1
            to_canary = (n + 1) * a.weight // 100 > n * a.weight // 100
            upstream = a.canary if to_canary else a.stable
        with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
            body = r.read()
            self.send_response(r.status)
            self.send_header("Content-Type", r.headers.get("Content-Type", "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os

os.rename(a.port_file + ".tmp", a.port_file)
server.serve_forever()
