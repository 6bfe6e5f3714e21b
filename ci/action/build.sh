#!/usr/bin/env bash
# The Action's build step: `stamp build` with the inputs, which writes digest, tags, version and
# metadata to $GITHUB_OUTPUT itself (revision from GITHUB_SHA, source from GITHUB_SERVER_URL and
# GITHUB_REPOSITORY).
#
# Inputs arrive as environment variables, never as text spliced into the script, and each becomes
# one argument: nothing here globs, and nothing re-splits a value. `tags` splits on commas,
# spaces and newlines (a tag has none of them). `args` is one argument per line; a line
# `--name value` is the option and its value (the value whole, spaces kept, one pair of
# surrounding quotes removed). The command line is logged with each argument shell-quoted, and
# while stamp runs the runner's command processing is stopped (::stop-commands:: with a random
# token), so no input (a newline and `::set-output`, or a `##[...]` anywhere in a line) that stamp
# or this script prints can act as a workflow command.
set -euo pipefail
set -f # no globbing, whatever an input holds

args=(build --progress plain)
[ -n "${STAMP_CONFIG:-}" ] && args+=(--config "$STAMP_CONFIG")
[ -n "${STAMP_BASE:-}" ] && args+=(--base "$STAMP_BASE")
[ -n "${STAMP_VERSION:-}" ] && args+=(--version "$STAMP_VERSION")
[ -n "${STAMP_OUTPUT:-}" ] && args+=(--output "$STAMP_OUTPUT")

IFS=$', \t\r\n' read -r -d '' -a tags <<< "${STAMP_TAGS:-}" || true
for tag in "${tags[@]}"; do args+=(--tag "$tag"); done

# The text for a workflow command's message: %, CR and LF escaped as the runner unescapes them.
command_text() { local t=${1//%/%25}; t=${t//$'\r'/%0D}; printf '%s' "${t//$'\n'/%0A}"; }

lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line=${line%$'\r'}
  line=${line#"${line%%[![:space:]]*}"}
  line=${line%"${line##*[![:space:]]}"}
  [ -z "$line" ] && continue
  name=${line%%[[:space:]]*}
  if [ "$name" != "$line" ] && [[ $name == -* ]] && [[ $name != *=* ]]; then
    value=${line#"$name"}
    value=${value#"${value%%[![:space:]]*}"}
    if [[ $value == -* ]]; then
      echo "::error::args line $lineno holds two options ($(command_text "$name"), $(command_text "${value%%[[:space:]]*}")): give one per line" >&2
      exit 2
    fi
    if [ ${#value} -ge 2 ] && { [[ $value == \"*\" ]] || [[ $value == \'*\' ]]; }; then value=${value:1:${#value}-2}; fi
    args+=("$name" "$value")
  else
    args+=("$line")
  fi
done <<< "${STAMP_ARGS:-}"

token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "::stop-commands::$token"
trap 'echo "::$token::"' EXIT
printf 'stamp'
printf ' %q' "${args[@]}"
printf '\n'
stamp "${args[@]}"
