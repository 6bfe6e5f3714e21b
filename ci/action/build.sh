#!/usr/bin/env bash
# The Action's build step: `stamp build` with the inputs, which writes digest, tags, version and
# metadata to $GITHUB_OUTPUT itself (revision from GITHUB_SHA, source from GITHUB_SERVER_URL and
# GITHUB_REPOSITORY).
set -euo pipefail
args=(build --progress plain)
[ -n "${STAMP_CONFIG:-}" ] && args+=(--config "$STAMP_CONFIG")
[ -n "${STAMP_BASE:-}" ] && args+=(--base "$STAMP_BASE")
[ -n "${STAMP_VERSION:-}" ] && args+=(--version "$STAMP_VERSION")
[ -n "${STAMP_OUTPUT:-}" ] && args+=(--output "$STAMP_OUTPUT")
while IFS= read -r tag; do
  tag=$(echo "$tag" | tr -d '[:space:]')
  [ -n "$tag" ] && args+=(--tag "$tag")
done < <(printf '%s\n' "${STAMP_TAGS:-}" | tr ',' '\n')
read -r -a extra <<< "${STAMP_ARGS:-}"
args+=("${extra[@]}")
echo "stamp ${args[*]}"
stamp "${args[@]}"
