#!/usr/bin/env bash
# Release packaging, for machines without a Swift toolchain.
#
#   scripts/dist.sh build              the release binary, Swift's runtime linked in (prints its path)
#   scripts/dist.sh install DESTDIR PREFIX
#                                      binary, man page and completions under DESTDIR/PREFIX
#   scripts/dist.sh package [OUTDIR]   dist/stamp-VERSION-linux-ARCH.tar.gz and stamp_VERSION_ARCH.deb
#
# The binary needs only Debian's shared libraries (the .deb's Depends, computed by dpkg-shlibdeps
# from the binary itself). Both files are reproducible: entries sorted, owned by root, mtime
# SOURCE_DATE_EPOCH (default: the last commit's time).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
SCRATCH=${DIST_SCRATCH:-.build-dist}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

build() {
  $SWIFT build -c release --static-swift-stdlib --product stamp --scratch-path "$SCRATCH" >&2
  local bin
  bin="$($SWIFT build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)/stamp"
  if ldd "$bin" | grep -c 'libswift\|libFoundation\|libdispatch' >/dev/null; then
    echo "dist: $bin still loads a Swift runtime library:" >&2; ldd "$bin" | grep 'swift\|Foundation\|dispatch' >&2; exit 1
  fi
  echo "$bin"
}

# install BIN DESTDIR PREFIX: the file tree Debian and `make install` share.
install_tree() {
  local bin=$1 root=$2$3
  install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
    "$root/share/zsh/vendor-completions" "$root/share/fish/vendor_completions.d" "$root/share/doc/stamp"
  install -m 0755 "$bin" "$root/bin/stamp"
  strip --strip-unneeded "$root/bin/stamp"
  python3 scripts/manpage.py "$root/bin/stamp" | gzip -9n > "$root/share/man/man1/stamp.1.gz"
  chmod 0644 "$root/share/man/man1/stamp.1.gz"
  "$root/bin/stamp" --generate-completion-script bash > "$root/share/bash-completion/completions/stamp"
  "$root/bin/stamp" --generate-completion-script zsh > "$root/share/zsh/vendor-completions/_stamp"
  "$root/bin/stamp" --generate-completion-script fish > "$root/share/fish/vendor_completions.d/stamp.fish"
  install -m 0644 README.md "$root/share/doc/stamp/README.md"
  chmod 0644 "$root"/share/*/completions/stamp "$root"/share/zsh/vendor-completions/_stamp "$root"/share/fish/vendor_completions.d/stamp.fish
}

# A tar of a folder with fixed order, owners and times.
fixed_tar() { tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu "$@"; }

package() {
  local out=${1:-dist} bin version arch
  bin=$(build)
  version=$("$bin" --version)
  arch=$(dpkg --print-architecture)
  mkdir -p "$out"
  stage=$(mktemp -d "$out/.stage.XXXXXX")
  trap 'rm -rf "$stage"' EXIT # global: the trap runs after this function returns

  # Tarball: stamp-VERSION/{bin,share}, for `tar -x -C /usr/local --strip-components=1`.
  install_tree "$bin" "$stage/tar" "/stamp-$version"
  fixed_tar -C "$stage/tar" -cf - "stamp-$version" | gzip -9n > "$out/.stamp-$version-linux-$arch.tar.gz.tmp"
  mv "$out/.stamp-$version-linux-$arch.tar.gz.tmp" "$out/stamp-$version-linux-$arch.tar.gz"

  # .deb: the same tree under /usr, Depends from the binary's own NEEDED entries.
  install_tree "$bin" "$stage/deb" /usr
  mkdir -p "$stage/debian" "$stage/deb/DEBIAN"
  printf 'Source: stamp\n\nPackage: stamp\nArchitecture: any\n' > "$stage/debian/control"
  local depends
  depends=$(cd "$stage" && dpkg-shlibdeps -O -e deb/usr/bin/stamp 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  [ -n "$depends" ] || { echo "dist: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
  local size
  size=$(du -sk --apparent-size "$stage/deb/usr" | cut -f1)
  cat > "$stage/deb/DEBIAN/control" <<EOF
Package: stamp
Version: ${version#v}
Architecture: $arch
Maintainer: stamp developers <stamp@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Description: stamp container images with their own identity, without a daemon
 Reads an OCI or Docker image, adds one reproducible layer with the version,
 revision and an enhanced health check, patches labels, annotations and env
 without losing a key, and writes an OCI or docker-archive image or pushes it.
 Verifies any image in CI. No Docker daemon and no Swift toolchain needed.
EOF
  (cd "$stage/deb" && find usr -type f -printf '%P\n' | LC_ALL=C sort | sed 's|^|usr/|' | xargs md5sum > DEBIAN/md5sums)
  find "$stage/deb" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  local deb="stamp_${version#v}_$arch.deb"
  dpkg-deb --root-owner-group -Zxz --build "$stage/deb" "$out/.$deb.tmp" >/dev/null
  mv "$out/.$deb.tmp" "$out/$deb"
  echo "$out/stamp-$version-linux-$arch.tar.gz"
  echo "$out/$deb"
}

case "${1:-}" in
  build) build ;;
  install) install_tree "$(build)" "${2:-}" "${3:-/usr/local}" ;;
  package) package "${2:-dist}" ;;
  *) echo "usage: scripts/dist.sh build | install DESTDIR PREFIX | package [OUTDIR]" >&2; exit 64 ;;
esac
