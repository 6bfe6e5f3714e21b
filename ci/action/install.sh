#!/usr/bin/env bash
# The Action's install step: the .deb of the release the action is pinned to, from that
# repository's releases on the same server (STAMP_INSTALL=auto skips it when stamp is on PATH).
set -euo pipefail
# The text for a workflow command's message: %, CR and LF escaped as the runner unescapes them, so
# an input cannot end the message and start a command of its own.
command_text() { local t=${1//%/%25}; t=${t//$'\r'/%0D}; printf '%s' "${t//$'\n'/%0A}"; }
case "${STAMP_INSTALL:-auto}" in
  false) exit 0 ;;
  auto) if command -v stamp >/dev/null; then echo "stamp: using $(command -v stamp) ($(stamp --version))"; exit 0; fi ;;
  true) ;;
  *) echo "::error::install must be auto, true or false, not $(command_text "$STAMP_INSTALL")"; exit 2 ;;
esac
ref=${STAMP_ACTION_REF:?the action ref is unknown: pin the action to a release tag, or install stamp before it}
arch=$(dpkg --print-architecture)
deb="stamp_${ref#v}_${arch}.deb"
url="${GITHUB_SERVER_URL:?}/${STAMP_ACTION_REPOSITORY:?}/releases/download/${ref}/${deb}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "stamp: installing $url"
curl -fsSL --retry 3 -o "$tmp/$deb" "$url"
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get install -y -qq "$tmp/$deb" >/dev/null
stamp --version
