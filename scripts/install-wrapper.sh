#!/usr/bin/env bash
# install-wrapper.sh CHECKOUT [DEST]: puts `sockeye` on the PATH (DEST, default
# /usr/local/bin/sockeye) as a script that execs node on CHECKOUT/dist/cli/main.js, so a signal
# sent to the pid you started reaches the daemon itself (`npx sockeye` runs it under `npm exec`,
# which does not pass SIGTERM on).
#
# The wrapper is run by root, so whoever can write the checkout or any folder above it could
# make root run their code: it refuses a checkout (or node) that is not root's all the way
# down, and writes every path into the script quoted by printf %q.
set -euo pipefail

refuse() { echo "install-wrapper: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || refuse "usage: install-wrapper.sh CHECKOUT [DEST]"
checkout=$(realpath -e -- "$1") || refuse "no such checkout: $1"
dest=${2:-/usr/local/bin/sockeye}
node_bin=$(command -v node) || refuse "node is not on the PATH"
node_bin=$(realpath -e -- "$node_bin")

# Each folder from / down to PATH must be root's and not writable by group or others; a
# sticky folder (/tmp) is fine above a child root owns, since others cannot rename that child.
check_chain() {
  local path=$1 what=$2 prefix="" part owner mode
  IFS=/ read -r -a parts <<< "${path#/}"
  for part in "" "${parts[@]}"; do
    prefix="${prefix%/}/$part"
    owner=$(stat -c %u -- "$prefix") mode=$(stat -c %a -- "$prefix")
    [ "$owner" = 0 ] || refuse "$what: $prefix is owned by uid $owner, not root; a root-run sockeye must not run code another user can change (chown -R root: it, or clone it into a root-owned folder such as /opt/sockeye)"
    if (( 8#$mode & 8#022 )) && ! { (( 8#$mode & 8#1000 )) && [ "$prefix" != "$path" ]; }; then
      refuse "$what: $prefix is writable by group or others (mode $mode); run chmod go-w on it"
    fi
  done
}
check_chain "$checkout" "checkout"
check_chain "$node_bin" "node"

# Inside the checkout: any file or folder that is not root's, or that group or others can write.
offender=$(find "$checkout" ! -type l \( ! -uid 0 -o -perm /022 \) -print -quit)
[ -z "$offender" ] || refuse "checkout: $offender is not root's or is writable by group or others; run chown -R root: $(printf %q "$checkout") && chmod -R go-w $(printf %q "$checkout")"

[ -f "$checkout/dist/cli/main.js" ] || refuse "$checkout/dist/cli/main.js is missing: build first (npm ci)"

tmp=$(mktemp "$(dirname -- "$dest")/.sockeye.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
{
  echo '#!/bin/bash'
  echo '# Written by scripts/install-wrapper.sh: runs the sockeye checkout below as node itself.'
  printf 'exec %q %q "$@"\n' "$node_bin" "$checkout/dist/cli/main.js"
} > "$tmp"
chmod 755 "$tmp"
mv -f -- "$tmp" "$dest"
trap - EXIT
echo "setup: sockeye is $dest (this checkout: $checkout)" >&2
