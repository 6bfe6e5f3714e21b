#!/usr/bin/env bash
# scripts/same_bytes.sh OLD NEW: do two stamp binaries write the same bytes? For refactors that
# must change no output (issue 16): each binary makes the same outputs from the same inputs
# (the multi-platform sample, as an oci-archive, an OCI layout and a docker-save tar; the
# bench's base when `make bench` has generated it; with and without --hash-assets; zstd; the
# Dockerfile and build context; `assets hash` of a frontend), and the SHA-256 of every file
# of every output is compared. Exit 0 when all are equal, 1 naming each that differs.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/same_bytes.sh OLD-STAMP NEW-STAMP" >&2; exit 64; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
BENCH=${BENCH_DIR:-/tmp/stamp-bench}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1743811200 STAMP_PROGRESS=quiet

# outputs STAMP DIR: every output in DIR; the inputs are made by the old binary once, so both
# read the same bytes.
outputs() {
  local s=$1 d=$2 base=$WORK/in/sample.tar front=$WORK/in/front
  mkdir -p "$d"
  "$s" build -q --base "oci-archive:$base" --version v1.2.3 --revision abc123 --output "$d/plain.tar" --no-cache
  "$s" build -q --base "oci-archive:$base" --version v1.2.3 --revision abc123 --output "$d/front.tar" --assets "$front" --hash-assets --no-cache
  "$s" build -q --base "oci-archive:$base" --version v1.2.3 --revision abc123 --output "oci:$d/layout:v1" --compression zstd --no-cache
  "$s" build -q --base "oci-archive:$base" --version v1.2.3 --revision abc123 --output "docker-archive:$d/docker.tar" --tag app:v1 --platform linux/amd64 --no-cache
  "$s" dockerfile --base "oci-archive:$base" --version v1.2.3 --revision abc123 --assets "$front" --output "$d/context" >/dev/null
  "$s" assets hash "$front" --output "$d/hashed" >/dev/null
  if [ -f "$BENCH/base.tar" ] && [ -d "$BENCH/frontend" ]; then
    "$s" build -q --base "oci-archive:$BENCH/base.tar:1.16.0" --version v1 --revision r --assets "$BENCH/frontend" --output "$d/bench.tar" --no-cache
    "$s" build -q --base "oci-archive:$BENCH/base.tar:1.16.0" --version v1 --revision r --assets "$BENCH/frontend" --hash-assets --output "$d/bench-hashed.tar" --no-cache
  fi
}

mkdir -p "$WORK/in"
"$OLD" sample --output "$WORK/in/sample.tar"
"$NEW" sample --output "$WORK/in/sample-new.tar"
# A frontend with references to rewrite: the sample's, taken out of its app layer by stamp.
mkdir -p "$WORK/in/front/assets"
printf '<!doctype html><link rel="stylesheet" href="/assets/index.css"><script type="module" src="/assets/index.js"></script>\n' > "$WORK/in/front/index.html"
printf 'body{background:url(./logo.svg)}\n' > "$WORK/in/front/assets/index.css"
printf 'import("./chunk.js");const u=new URL("logo.svg",import.meta.url);\n' > "$WORK/in/front/assets/index.js"
printf 'export const x=1;\n' > "$WORK/in/front/assets/chunk.js"
printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' > "$WORK/in/front/assets/logo.svg"

outputs "$OLD" "$WORK/old"
outputs "$NEW" "$WORK/new"
cp "$WORK/in/sample-new.tar" "$WORK/new/sample.tar"
cp "$WORK/in/sample.tar" "$WORK/old/sample.tar"

sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
if diff <(sums "$WORK/old") <(sums "$WORK/new") > "$WORK/diff"; then
  echo "same bytes: $(sums "$WORK/new" | wc -l) files of $(ls "$WORK/new" | wc -l) outputs"
else
  echo "outputs differ:" >&2
  grep '^[<>]' "$WORK/diff" | awk '{print $1, $3}' >&2
  exit 1
fi
