"""Small images for stamp's tests, written the way `docker save` writes them.

    layer([(name, kind, data), ...])      an uncompressed tar (data: bytes, or a link target)
    docker_archive(out, layers, config)   manifest.json + config + layers; the config's
                                          rootfs.diff_ids are filled in (gzip layers inflated)
"""
import gzip, hashlib, io, json, tarfile

D, F, L, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def layer(entries, mode=0o755, pax=None, owners=None):
    """`entries`: (name, kind, data) with data the bytes of a file or the target of a link;
    `pax`: name -> pax records for that entry; `owners`: name -> (mode, uid) (gid = uid)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data in entries:
            t = tarfile.TarInfo(name)
            t.type, t.mode, t.mtime = kind, mode, 1700000000
            t.pax_headers = (pax or {}).get(name, {})
            if owners and name in owners:
                t.mode, t.uid = owners[name]
                t.gid = t.uid
            if kind in (L, H):
                t.linkname, data = data, None
            if data is not None:
                t.size = len(data)
            tf.addfile(t, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def docker_archive(out, layers, config, tag="t/x:1"):
    """Writes `layers` (tar or gzip bytes) and `config` (a dict) as a docker-archive."""
    ids = []
    for l in layers:
        raw = gzip.decompress(l) if l[:2] == b"\x1f\x8b" else l
        ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    config = dict(config)
    config.setdefault("architecture", "amd64")
    config.setdefault("os", "linux")
    config["rootfs"] = {"type": "layers", "diff_ids": ids}
    with tarfile.open(out, "w") as o:
        def put(name, data):
            t = tarfile.TarInfo(name)
            t.size = len(data)
            o.addfile(t, io.BytesIO(data))
        names = []
        for i, l in enumerate(layers):
            names.append("l%d.tar" % i)
            put(names[-1], l)
        put("config.json", json.dumps(config).encode())
        put("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode())
