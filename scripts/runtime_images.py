#!/usr/bin/env python3
"""Base images for the runtime tests (Tests/StampCoreTests/RuntimeTests.swift).

Builds, once, and keeps in the test cache ($STAMP_TEST_CACHE, else ~/.cache/stamp-test):

- node.tar: a `docker save` archive (Docker format, as anything-llm is published) of two layers:
  a Debian bookworm root file system made by mmdebstrap (node, curl, user `app` uid 1000), and an
  app layer whose /app, /app/server and /app/server/storage belong to 1000:1000 with mode 0775;
  a tiny node server answers /api/ping and serves /app/server/public. USER app, a Healthcheck.
- busybox.tar: the same app shape on a base that has only /bin/busybox (Debian's
  busybox-static) and /bin/sh linking to it: no wget, no curl, no node; busybox httpd serves.
- multi.tar: an oci-archive holding a Docker manifest list of node.tar's image for the host
  platform and the same layers labelled for a second platform.

Prints one JSON object naming the three files. Exit 77 when the root file system cannot be made
(no mmdebstrap, or no Debian mirror reachable), so the tests skip with that reason.
"""
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile

FORMAT = "3"  # change to rebuild the cached images
EPOCH = 1700000000

SERVER_JS = r"""
const http = require('http'), fs = require('fs'), path = require('path');
const root = '/app/server/public';
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };
http.createServer((req, res) => {
  const url = decodeURIComponent(req.url.split('?')[0]);
  if (url === '/api/ping') { res.writeHead(200, { 'content-type': 'application/json' }); return res.end('{"online":true}'); }
  const file = path.normalize(path.join(root, url === '/' ? 'index.html' : url));
  if (!file.startsWith(root + '/')) { res.writeHead(403); return res.end(); }
  fs.readFile(file, (err, body) => {
    if (err) { res.writeHead(404); return res.end('not found'); }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(body);
  });
}).listen(Number(process.env.SERVER_PORT || 3001), '127.0.0.1');
"""

INDEX_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>runtime app</title>
<link rel="stylesheet" href="/index.css"></head>
<body><h1>runtime app</h1><script type="module" src="/index.js"></script></body></html>
"""


def cache_dir():
    d = os.environ.get("STAMP_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stamp-test")
    d = os.path.join(d, "runtime")
    os.makedirs(d, exist_ok=True)
    return d


def arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def other_arch():
    return "arm64" if arch() != "arm64" else "amd64"


def apt_sources():
    for p in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        if os.path.isfile(p) and os.path.getsize(p) > 0:
            return p
    return None


def rootfs(cache):
    out = os.path.join(cache, "bookworm-node-rootfs.tar")
    if os.path.exists(out):
        return out
    if shutil.which("mmdebstrap") is None:
        print("mmdebstrap is not installed", file=sys.stderr)
        sys.exit(77)
    tmp = out + ".part.tar"
    cmd = ["mmdebstrap", "--format=tar", "--variant=minbase", "--include=nodejs,curl", "--mode=root", "--quiet",
           "--customize-hook=chroot \"$1\" useradd --uid 1000 --user-group --home-dir /app --no-create-home app",
           "bookworm", tmp]
    src = apt_sources()
    if src:
        cmd.append(src)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print("mmdebstrap failed: " + r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "mmdebstrap failed", file=sys.stderr)
        if os.path.exists(tmp):
            os.unlink(tmp)
        sys.exit(77)
    os.rename(tmp, out)
    return out


def busybox_binary(cache):
    out = os.path.join(cache, "busybox-static")
    if os.path.exists(out):
        return out
    work = tempfile.mkdtemp(dir=cache)
    try:
        r = subprocess.run(["apt-get", "download", "busybox-static"], cwd=work, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        debs = [f for f in os.listdir(work) if f.endswith(".deb")]
        if r.returncode != 0 or not debs:
            print("apt-get download busybox-static failed: " + r.stderr.strip(), file=sys.stderr)
            sys.exit(77)
        subprocess.run(["dpkg-deb", "-x", debs[0], "x"], cwd=work, check=True)
        shutil.copyfile(os.path.join(work, "x", "bin", "busybox"), out + ".part")
        os.chmod(out + ".part", 0o755)
        os.rename(out + ".part", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def info(name, kind, mode, uid=0, gid=0, size=0, link=""):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.uid, t.gid, t.size, t.linkname, t.mtime = kind, mode, uid, gid, size, link, EPOCH
    t.uname = t.gname = ""
    return t


def layer(entries):
    """An uncompressed tar of (name, kind, mode, uid, gid, bytes-or-linkname) entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, mode, uid, gid, data in entries:
            if kind == tarfile.REGTYPE:
                tf.addfile(info(name, kind, mode, uid, gid, len(data)), io.BytesIO(data))
            elif kind == tarfile.SYMTYPE:
                tf.addfile(info(name, kind, mode, uid, gid, link=data))
            else:
                tf.addfile(info(name, kind, mode, uid, gid))
    return buf.getvalue()


def app_entries(server):
    D, F = tarfile.DIRTYPE, tarfile.REGTYPE
    out = [
        ("app", D, 0o775, 1000, 1000, None),
        ("app/server", D, 0o775, 1000, 1000, None),
        ("app/server/public", D, 0o755, 1000, 1000, None),
        ("app/server/public/index.html", F, 0o644, 1000, 1000, INDEX_HTML),
        ("app/server/public/index.css", F, 0o644, 1000, 1000, b"h1 { color: #234; }\n"),
        ("app/server/public/index.js", F, 0o644, 1000, 1000,
         b"fetch('/api/ping').then(r => r.json()).then(j => document.title = 'online ' + j.online);\n"),
        ("app/server/storage", D, 0o775, 1000, 1000, None),
    ]
    if server:
        out.append(("app/server/index.js", F, 0o644, 1000, 1000, SERVER_JS.encode()))
    else:
        out += [("app/server/public/api", D, 0o755, 1000, 1000, None),
                ("app/server/public/api/ping", F, 0o644, 1000, 1000, b'{"online":true}')]
    return out


def config(diff_ids, arch_, user, cmd, healthcheck, path):
    return {
        "architecture": arch_, "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {
            "User": user, "WorkingDir": "/app", "Cmd": cmd,
            "Env": ["PATH=" + path, "NODE_ENV=production"],
            "ExposedPorts": {"3001/tcp": {}},
            "Healthcheck": {"Test": ["CMD-SHELL", healthcheck], "Interval": 30 * 10**9, "Timeout": 5 * 10**9, "Retries": 3},
            "Labels": {"org.example.base": "runtime-test"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "runtime_images.py: layer %d" % i} for i in range(len(diff_ids))],
    }


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def add_bytes(tf, name, data):
    tf.addfile(info(name, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))


def docker_save(out, tag, layers, cfg):
    """`layers`: (path of an uncompressed layer tar, its sha256 hex). Legacy `docker save` shape."""
    cbytes = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    chex = sha(cbytes)
    manifest = [{"Config": chex + ".json", "RepoTags": [tag], "Layers": [h + "/layer.tar" for _, h in layers]}]
    tmp = out + ".part"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        for p, h in layers:
            tf.addfile(info(h, tarfile.DIRTYPE, 0o755))
            t = info(h + "/layer.tar", tarfile.REGTYPE, 0o644, size=os.path.getsize(p))
            with open(p, "rb") as f:
                tf.addfile(t, f)
        add_bytes(tf, chex + ".json", cbytes)
        add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
    os.rename(tmp, out)


def oci_multi(out, tag, layers, configs):
    """An oci-archive whose index.json names a Docker manifest list of one manifest per config."""
    blobs = {}
    manifests = []
    for cfg in configs:
        cbytes = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
        blobs[sha(cbytes)] = cbytes
        m = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + sha(cbytes), "size": len(cbytes)},
             "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "digest": "sha256:" + h, "size": os.path.getsize(p)}
                        for p, h in layers]}
        mbytes = json.dumps(m, separators=(",", ":")).encode()
        blobs[sha(mbytes)] = mbytes
        manifests.append({"mediaType": m["mediaType"], "digest": "sha256:" + sha(mbytes), "size": len(mbytes),
                          "platform": {"architecture": cfg["architecture"], "os": "linux"}})
    lst = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": manifests}
    lbytes = json.dumps(lst, separators=(",", ":")).encode()
    blobs[sha(lbytes)] = lbytes
    index = {"schemaVersion": 2, "manifests": [{"mediaType": lst["mediaType"], "digest": "sha256:" + sha(lbytes), "size": len(lbytes),
                                                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    tmp = out + ".part"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tf, "index.json", json.dumps(index).encode())
        for p, h in layers:
            t = info("blobs/sha256/" + h, tarfile.REGTYPE, 0o644, size=os.path.getsize(p))
            with open(p, "rb") as f:
                tf.addfile(t, f)
        for h, b in blobs.items():
            add_bytes(tf, "blobs/sha256/" + h, b)
    os.rename(tmp, out)


def main():
    cache = cache_dir()
    base = os.path.join(cache, "images-" + FORMAT)
    os.makedirs(base, exist_ok=True)
    out = {k: os.path.join(base, k + ".tar") for k in ("node", "busybox", "multi")}
    if all(os.path.exists(p) for p in out.values()):
        print(json.dumps(out))
        return
    fs = rootfs(cache)
    bb = busybox_binary(cache)
    fs_hex = file_sha(fs)
    app_path = os.path.join(base, "app-layer.tar")
    with open(app_path, "wb") as f:
        f.write(layer(app_entries(server=True)))
    app_hex = file_sha(app_path)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    node_layers = [(fs, fs_hex), (app_path, app_hex)]
    node_cfg = lambda a: config(["sha256:" + fs_hex, "sha256:" + app_hex], a, "app", ["node", "/app/server/index.js"],
                                "curl -fsS http://127.0.0.1:${SERVER_PORT:-3001}/api/ping || exit 1", path)
    docker_save(out["node"], "stamp-runtime/node:base", node_layers, node_cfg(arch()))
    oci_multi(out["multi"], "stamp-runtime/multi:base", node_layers, [node_cfg(arch()), node_cfg(other_arch())])

    with open(bb, "rb") as f:
        bb_bytes = f.read()
    bb_path = os.path.join(base, "busybox-layer.tar")
    with open(bb_path, "wb") as f:
        f.write(layer([("bin", tarfile.DIRTYPE, 0o755, 0, 0, None),
                       ("bin/busybox", tarfile.REGTYPE, 0o755, 0, 0, bb_bytes),
                       ("bin/sh", tarfile.SYMTYPE, 0o777, 0, 0, "busybox"),
                       ("tmp", tarfile.DIRTYPE, 0o1777, 0, 0, None)]))
    bapp_path = os.path.join(base, "busybox-app-layer.tar")
    with open(bapp_path, "wb") as f:
        f.write(layer(app_entries(server=False)))
    bb_layers = [(bb_path, file_sha(bb_path)), (bapp_path, file_sha(bapp_path))]
    docker_save(out["busybox"], "stamp-runtime/busybox:base", bb_layers,
                config(["sha256:" + h for _, h in bb_layers], arch(), "1000:1000",
                       ["/bin/sh", "-c", "exec busybox httpd -f -p 127.0.0.1:${SERVER_PORT:-3001} -h /app/server/public"],
                       "busybox wget -q -O /dev/null http://127.0.0.1:${SERVER_PORT:-3001}/api/ping || exit 1", "/bin"))
    for p in (app_path, bb_path, bapp_path):
        os.unlink(p)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
