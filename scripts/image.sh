#!/usr/bin/env bash
# make image: stamp as a container image, built by stamp.
#
#   scripts/image.sh STAMP.deb [OUT.tar]
#
# A minimal Debian 12 root file system with the .deb installed (mmdebstrap, from the apt
# archive this machine uses; apt resolves the .deb's Depends), made into a one-layer base whose
# entrypoint is /usr/bin/stamp, then stamped by the packaged stamp itself (`stamp build
# --profile generic`: version, revision, created, labels; no health check, stamp is no server)
# into an oci-archive, and checked by `stamp verify`. Reproducible: SOURCE_DATE_EPOCH (default:
# the last commit's time) fixes every mtime and the created times.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=${1:?usage: scripts/image.sh STAMP.deb [OUT.tar]}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
VERSION=$(dpkg-deb -f "$DEB" Version)
ARCH=$(dpkg-deb -f "$DEB" Architecture)
OUT=${2:-dist/stamp-image-$VERSION-$ARCH.tar}
work=$(mktemp -d "${TMPDIR:-/tmp}/stamp-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

src=""
for p in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [ -s "$p" ]; then src=$p; break; fi
done
cp "$DEB" "$work/stamp.deb"
echo "image: root file system (mmdebstrap bookworm, minbase + stamp.deb)" >&2
# shellcheck disable=SC2016 # $1 is mmdebstrap's, expanded by the hook's shell
mmdebstrap --quiet --mode=root --variant=minbase --format=tar \
  --customize-hook="copy-in $work/stamp.deb /tmp" \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/stamp.deb >/dev/null' \
  --customize-hook='rm -rf "$1"/tmp/stamp.deb "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  bookworm "$work/rootfs.tar" ${src:+"$src"}

echo "image: base layout (one layer, entrypoint /usr/bin/stamp)" >&2
python3 - "$work" "$ARCH" "$SOURCE_DATE_EPOCH" <<'PY'
import gzip, hashlib, json, os, sys
work, arch, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
blobs = os.path.join(work, "layout", "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d, len(data)
raw = open(os.path.join(work, "rootfs.tar"), "rb").read()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
layer, layer_size = put(gzip.compress(raw, compresslevel=6, mtime=0))
created = __import__("datetime").datetime.fromtimestamp(epoch, __import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
config = json.dumps({
    "architecture": arch, "os": "linux", "created": created,
    "config": {"Entrypoint": ["/usr/bin/stamp"], "Cmd": ["--help"], "WorkingDir": "/work",
               "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "STAMP_PROGRESS=plain"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": created, "created_by": "mmdebstrap bookworm minbase + stamp.deb"}],
}, sort_keys=True, separators=(",", ":")).encode()
cd, cs = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}]},
    sort_keys=True, separators=(",", ":")).encode()
md, ms = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
    "platform": {"architecture": arch, "os": "linux"}, "annotations": {"org.opencontainers.image.ref.name": "base"}}]},
    open(os.path.join(work, "layout", "index.json"), "w"))
open(os.path.join(work, "layout", "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

# The packaged stamp stamps its own image (the one inside the root file system just made).
mkdir -p "$work/root" "$(dirname "$OUT")"
tar -xf "$work/rootfs.tar" -C "$work/root" ./usr/bin/stamp 2>/dev/null || tar -xf "$work/rootfs.tar" -C "$work/root" usr/bin/stamp
STAMP="$work/root/usr/bin/stamp"
revision=$(git rev-parse HEAD 2>/dev/null || true)
echo "image: stamp build (the packaged stamp $("$STAMP" --version))" >&2
STAMP_PROGRESS=quiet "$STAMP" build --base "oci:$work/layout:base" --profile generic --version "$VERSION" ${revision:+--revision "$revision"} \
  --version-file /usr/share/stamp/version.txt --version-json /usr/share/stamp/version.json --no-healthcheck \
  --label org.opencontainers.image.title=stamp --format oci \
  --output "oci-archive:$OUT" --tag "stamp:$VERSION" --no-cache >/dev/null
STAMP_PROGRESS=quiet "$STAMP" verify "$OUT" >&2
echo "$OUT"
