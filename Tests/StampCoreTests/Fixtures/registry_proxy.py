#!/usr/bin/env python3
"""A loopback proxy in front of a registry, for stamp's tests.

Prints its port on the first line of stdout, then serves until killed. Modes:
  --fail N        answer the first N registry requests with 503 (Retry-After: 0)
  --reset N       close the connection without an answer on the next N blob requests
  --corrupt       flip one byte of every blob body sent to the client
  --bearer U:P    require Bearer tokens; /token issues them for Basic U:P (GET)
  --refresh T     /token also issues them for an OAuth2 refresh_token T (POST form)
  --log FILE      append one line per request (method, path, auth scheme)
  --tls CERT:KEY  serve HTTPS (the Bearer realm stays http://, as a hostile or careless registry's)
"""
import argparse, base64, http.client, http.server, json, secrets, select, socket, sys, threading, urllib.parse

p = argparse.ArgumentParser()
p.add_argument("upstream")
p.add_argument("--fail", type=int, default=0)
p.add_argument("--reset", type=int, default=0)
p.add_argument("--corrupt", action="store_true")
p.add_argument("--bearer")
p.add_argument("--refresh")
p.add_argument("--log")
p.add_argument("--tls")
args = p.parse_args()
up = urllib.parse.urlparse(args.upstream)
lock = threading.Lock()
state = {"fail": args.fail, "reset": args.reset}
tokens = set()


def log(line):
    if args.log:
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")


def take(key):
    with lock:
        if state[key] > 0:
            state[key] -= 1
            return True
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def token(self):
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            log("TOKEN POST grant=%s service=%s scope=%s" % (form.get("grant_type", [""])[0], form.get("service", [""])[0],
                                                             ",".join(form.get("scope", []))))
            if not args.refresh or form.get("refresh_token", [""])[0] != args.refresh:
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            t = secrets.token_hex(16)
            with lock:
                tokens.add(t)
            return self.reply(200, json.dumps({"access_token": t, "expires_in": 300}).encode(), [("Content-Type", "application/json")])
        want = "Basic " + base64.b64encode(args.bearer.encode()).decode()
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        log("TOKEN service=%s scope=%s auth=%s" % (q.get("service", [""])[0], ",".join(q.get("scope", [])),
                                                   "basic" if self.headers.get("Authorization") else "none"))
        if self.headers.get("Authorization") != want:
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
        t = secrets.token_hex(16)
        with lock:
            tokens.add(t)
        self.reply(200, json.dumps({"token": t, "expires_in": 300}).encode(), [("Content-Type", "application/json")])

    def handle_any(self):
        path = self.path
        if args.bearer and path.startswith("/token"):
            return self.token()
        auth = self.headers.get("Authorization", "")
        log("%s %s %s" % (self.command, urllib.parse.urlparse(path).path, auth.split(" ")[0] or "-"))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        if "/blobs/sha256:" in path and self.command == "GET" and take("reset"):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.close()
            return
        if path.startswith("/v2/") and take("fail"):
            return self.reply(503, b'{"errors":[{"code":"UNAVAILABLE"}]}', [("Retry-After", "0")])
        if args.bearer:
            ok = auth.startswith("Bearer ") and auth[7:] in tokens
            if not ok:
                host = self.headers.get("Host")
                challenge = 'Bearer realm="http://%s/token",service="stamp-test"' % host
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", challenge)])
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "transfer-encoding", "content-length")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, path, body=body if body or self.command in ("PUT", "POST", "PATCH") else None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if args.corrupt and self.command == "GET" and "/blobs/sha256:" in path and r.status == 200 and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        out = []
        for k, v in r.getheaders():
            if k.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            if k.lower() == "location" and v.startswith(args.upstream):
                v = v[len(args.upstream):]
            out.append((k, v))
        self.reply(r.status, data, out)
        conn.close()

    def read_chunked(self):
        out = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def do_CONNECT(self):
        """A forward proxy's tunnel (HTTPS_PROXY): bytes both ways, logged by target."""
        log("CONNECT %s %s" % (self.path, "auth" if self.headers.get("Proxy-Authorization") else "-"))
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=60)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 60)
                if not ready:
                    break
                for r in ready:
                    data = r.recv(1 << 16)
                    if not data:
                        raise EOFError
                    (upstream if r is self.connection else self.connection).sendall(data)
        except (EOFError, OSError):
            pass
        upstream.close()
        self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if args.tls:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = args.tls.split(":")
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
