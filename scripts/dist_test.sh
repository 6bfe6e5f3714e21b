#!/usr/bin/env bash
# make dist-test: the .deb on a machine with no Swift anywhere.
#
# A minimal Debian 12 root file system (mmdebstrap --variant=apt, cached outside the clone) is
# unpacked into a temporary folder; the .deb is installed there with `apt-get install ./stamp.deb`
# (apt resolves its Depends from the Debian mirror this machine uses), and stamp's main jobs run
# in a chroot: sample, build, verify, assets hash and assets verify. The image built there must be
# byte-identical to the one the host's build makes from the same inputs (STAMP_BIN), and
# `make install` must lay out the same files under DESTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=${1:?usage: scripts/dist_test.sh STAMP.deb}
HOST_STAMP=${STAMP_BIN:-}
CACHE=${STAMP_TEST_CACHE:-$HOME/.cache/stamp-test}/dist
EPOCH=1743811200
mkdir -p "$CACHE"
fail() { echo "dist-test: FAIL: $*" >&2; exit 1; }
step() { echo "dist-test: $*" >&2; }
# has PATTERN: stdin matches. Reads all of stdin first: `producer | grep -q` under pipefail fails
# when grep quits at the first match and the producer dies of SIGPIPE (it did, on a long man page).
has() { local text; text=$(cat); grep -q -- "$1" <<<"$text"; }

base="$CACHE/bookworm-apt.tar"
if [ ! -f "$base" ]; then
  step "making a minimal Debian 12 root file system with mmdebstrap (once, into $CACHE)"
  src=""
  for p in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$p" ]; then src=$p; break; fi
  done
  SOURCE_DATE_EPOCH=$EPOCH mmdebstrap --quiet --mode=root --variant=apt --format=tar bookworm "$base.part" ${src:+"$src"}
  mv "$base.part" "$base"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/stamp-dist-test.XXXXXX")
root="$work/root"
cleanup() {
  for m in proc dev; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$root"
tar -xf "$base" -C "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

step "apt-get install ./$(basename "$DEB") in a root file system without Swift"
[ -z "$(in_root sh -c 'command -v swift; ls -d /usr/lib/swift /opt/swift 2>/dev/null' || true)" ] || fail "the root file system has Swift"
cp "$DEB" "$root/tmp/stamp.deb"
in_root apt-get update -qq >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/stamp.deb >/dev/null \
  || fail "apt-get install of the .deb"
in_root sh -c 'ldd /usr/bin/stamp' | has 'not found\|libswift' && fail "stamp loads a library that is not there: $(in_root ldd /usr/bin/stamp | grep 'not found\|libswift')"
for f in /usr/share/man/man1/stamp.1.gz /usr/share/bash-completion/completions/stamp \
         /usr/share/zsh/vendor-completions/_stamp /usr/share/fish/vendor_completions.d/stamp.fish; do
  [ -s "$root$f" ] || fail "the package does not install $f"
done
zcat "$root/usr/share/man/man1/stamp.1.gz" | has '^\.SS "stamp build"' || fail "the man page has no section for stamp build"

step "stamp version, sample, build, verify, assets hash, assets verify in the chroot"
in_root stamp version --json | has '"libdeflate"' || fail "stamp version --json"
in_root stamp sample --output /tmp/base.tar >/dev/null || fail "stamp sample"
build_args=(build --base oci-archive:/tmp/base.tar:1.16.0 --version v2.1-dist --revision 0123456789abcdef0123456789abcdef01234567
            --created 2025-04-05T00:00:00Z --output oci-archive:/tmp/out.tar --tag v2.1-dist)
in_root stamp "${build_args[@]}" >/dev/null || fail "stamp build"
in_root stamp verify /tmp/out.tar >/dev/null || fail "stamp verify"
mkdir -p "$root/tmp/site/assets"
printf '<link rel="stylesheet" href="assets/app.css"><script src="assets/app.js"></script>\n' > "$root/tmp/site/index.html"
printf 'body{background:url(logo.png)}\n' > "$root/tmp/site/assets/app.css"
printf 'console.log(1)\n' > "$root/tmp/site/assets/app.js"
printf 'PNG' > "$root/tmp/site/assets/logo.png"
in_root stamp assets hash /tmp/site --output /tmp/site-out >/dev/null || fail "stamp assets hash"
in_root stamp assets verify /tmp/site-out >/dev/null || fail "stamp assets verify"
compgen -G "$root/tmp/site-out/assets/app.*[0-9a-f].css" >/dev/null || fail "assets hash renamed nothing: $(ls "$root/tmp/site-out/assets")"

if [ -n "$HOST_STAMP" ]; then
  step "the packaged stamp and this machine's build make the same bytes"
  host="$work/host"; mkdir -p "$host"
  cp "$root/tmp/base.tar" "$host/base.tar"
  STAMP_PROGRESS=quiet "$HOST_STAMP" build --base "oci-archive:$host/base.tar:1.16.0" --version v2.1-dist \
    --revision 0123456789abcdef0123456789abcdef01234567 --created 2025-04-05T00:00:00Z \
    --output "oci-archive:$host/out.tar" --tag v2.1-dist >/dev/null
  cmp -s "$host/out.tar" "$root/tmp/out.tar" || fail "the packaged stamp's image differs from the host build's"
fi

step "make install lays out the package's files under DESTDIR/PREFIX"
dest="$work/destdir"
make -s install DESTDIR="$dest" PREFIX=/opt/stamp > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "make install"; }
(cd "$dest/opt/stamp" && find . -type f | LC_ALL=C sort) > "$work/installed"
(dpkg-deb -c "$DEB" | awk '{print $6}' | grep -v '/$' | sed 's|^\./usr|.|' | LC_ALL=C sort) > "$work/packaged"
diff -u "$work/packaged" "$work/installed" >&2 || fail "make install and the .deb install different files"
"$dest/opt/stamp/bin/stamp" --version >/dev/null || fail "the installed binary does not run"

step "make image: stamp's own image, built and verified by the packaged stamp"
image=$(scripts/image.sh "$DEB" "$work/stamp-image.tar") || fail "scripts/image.sh"
entrypoint=$(skopeo inspect --config "oci-archive:$image" | jq -c .config.Entrypoint)
[ "$entrypoint" = '["/usr/bin/stamp"]' ] || fail "the image's entrypoint is $entrypoint"
version=$(skopeo inspect "oci-archive:$image" | jq -r '.Labels["org.opencontainers.image.version"]')
[ "$version" = "$(dpkg-deb -f "$DEB" Version)" ] || fail "the image is stamped $version"
STAMP_PROGRESS=quiet "${HOST_STAMP:-$root/usr/bin/stamp}" verify "$image" >/dev/null || fail "stamp verify of the image"
if command -v podman >/dev/null; then
  pm=(podman --root "${STAMP_TEST_CACHE:-$HOME/.cache/stamp-test}/runtime/podman" --runroot /tmp/stamp-test-podman-run
      --runtime runc --cgroup-manager cgroupfs)
  loaded=$("${pm[@]}" load -q -i "$image" 2>"$work/podman.err" | awk '{print $NF}' | tail -n 1) \
    || fail "podman load of the image: $(tail -n 3 "$work/podman.err")"
  out=$("${pm[@]}" run --rm --network none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$loaded" version --json 2>"$work/podman.err") \
    || fail "podman run of the image: $(tail -n 3 "$work/podman.err")"
  "${pm[@]}" rmi -f "$loaded" >/dev/null 2>&1 || true
  echo "$out" | has '"libdeflate"' || fail "the image's stamp version --json: $out"
else
  step "podman is not installed: the image is not run"
fi
step "ok"
