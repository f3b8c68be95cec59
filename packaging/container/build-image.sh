#!/usr/bin/env bash
# build-image.sh [TAG]: builds sockeye's image (Containerfile beside this script) from this
# checkout's build, with podman and no registry: the root filesystem from rootfs.sh (cached in
# /var/cache/sockeye-image/rootfs-<release>), the artifact from `npm pack`. Prints the tag.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
tag=${1:-localhost/sockeye:$version}
fail() { echo "build-image.sh: $*" >&2; exit 1; }
command -v podman >/dev/null || fail "podman not found (Debian package podman; bash scripts/setup.sh --dev installs it)"
[ -f "$root/build/Release/sockeye.node" ] && [ -f "$root/dist/cli/main.js" ] || fail "build first (npm ci)"

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
rootfs=$(bash "$here/rootfs.sh" "/var/cache/sockeye-image/rootfs-$codename")
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp -a "$rootfs" "$context/rootfs"
rm -f "$context/rootfs/.complete"
tarball=$(cd "$root" && npm pack --ignore-scripts --silent --pack-destination "$context")
mv "$context/$tarball" "$context/sockeye.tgz"
# runc: crun refuses hybrid cgroup hosts; the ulimits stay under a 20000 hard RLIMIT_NOFILE.
podman --runtime runc build --quiet --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  -f "$here/Containerfile" -t "$tag" "$context" >/dev/null
echo "$tag"
