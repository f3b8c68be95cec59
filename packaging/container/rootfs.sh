#!/usr/bin/env bash
# rootfs.sh DIR: a minimal Debian root filesystem in DIR (debootstrap's minbase variant of the
# host's release, from the Debian mirror the host's apt already uses), with what sockeye needs
# at run time (libelf1, zlib1g) and no compiler. Node.js is copied in from the host (the
# `node` on the PATH and its npm), standing in for however a fleet installs Node. Used by the
# image (packaging/container/Containerfile) and by the tests that install the packed artifact
# where no compiler exists. Cached: an existing DIR/.complete is reused as it is.
set -euo pipefail

fail() { echo "rootfs.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || fail "usage: rootfs.sh DIR"
dir=$1
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap)"
[ -f "$dir/.complete" ] && { echo "$dir"; exit 0; }
command -v debootstrap >/dev/null || fail "debootstrap not found (Debian package debootstrap; bash scripts/setup.sh --dev installs it)"

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=${SOCKEYE_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' |
    awk -v suite="$codename" '$2 == suite && $3 == "deb" { print $1; exit }')
  [ -n "$mirror" ] || fail "no Debian archive for '$codename' in apt's sources: set SOCKEYE_DEBIAN_MIRROR to a Debian mirror's URI"
fi

rm -rf "$dir.partial"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase --include=libelf1,zlib1g "$codename" "$dir.partial" "$mirror" >"$dir.partial.log" 2>&1 \
  || fail "debootstrap failed: $(tail -1 "$dir.partial.log")"

node_bin=$(command -v node) || fail "node is not on the PATH"
cp -L "$node_bin" "$dir.partial/usr/bin/node"
npm_dir=$(dirname "$(dirname "$(realpath "$(command -v npm)")")")
mkdir -p "$dir.partial/usr/lib/node_modules"
cp -a "$npm_dir" "$dir.partial/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir.partial/usr/bin/npm"
for tool in cc gcc clang cmake make; do
  [ ! -e "$dir.partial/usr/bin/$tool" ] || fail "the minimal root filesystem has $tool: it is meant to have no compiler"
done
rm -f "$dir.partial.log"
touch "$dir.partial/.complete"
rm -rf "$dir"
mv "$dir.partial" "$dir"
echo "$dir"
