#!/usr/bin/env bash
# Makes sure CACHE_DIR holds the pinned libbpf source tarball and prints its path. The addon,
# the BPF object's headers and the bench's C consumer are all built from it (native/libbpf.cmake).
#
# The tarball is Debian's orig tarball of the upstream release, fetched with apt's own source
# mechanism (apt checks it against the signed Sources index) under a private configuration
# kept in CACHE_DIR/apt: its own sources list with the one deb-src line, its own lists and
# cache, so the host's /etc/apt and /var/lib/apt are left as they are. The mirror is the one
# the host's apt already uses for Debian. Then it is checked against the pin (native/libbpf.pin).
#
# Usage: scripts/fetch-libbpf.sh CACHE_DIR   (root or not; needs apt and Debian's keyring)
set -euo pipefail

# LIBBPF_VERSION, LIBBPF_ORIG_SHA256, LIBBPF_SOURCE_SUITE
. "$(dirname "$0")/../native/libbpf.pin"
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

cache=${1:?usage: scripts/fetch-libbpf.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
tarball=$cache/libbpf_${LIBBPF_VERSION}.orig.tar.gz

matches_pin() { echo "$LIBBPF_ORIG_SHA256  $1" | sha256sum --check --status; }
fail() { echo "fetch-libbpf: $*" >&2; exit 1; }

# Two builds at once (setup, then cmake) must not fetch into the same place together.
exec 9>"$cache/.lock"
flock 9

if [ -f "$tarball" ] && matches_pin "$tarball"; then
  echo "$tarball"
  exit 0
fi

[ -r "$DEBIAN_KEYRING" ] || fail "$DEBIAN_KEYRING is missing: install debian-archive-keyring"
mirror=${SOCKEYE_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  mirror=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' |
    awk -v suite="$codename" '$2 == suite && $3 == "deb" { print $1; exit }')
  [ -n "$mirror" ] || fail "no Debian archive for '$codename' in apt's sources: set SOCKEYE_DEBIAN_MIRROR to a Debian mirror's URI"
fi

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$apt_dir/download"
echo "deb-src [signed-by=$DEBIAN_KEYRING] $mirror $LIBBPF_SOURCE_SUITE main" >"$apt_dir/sources.list"
apt_private=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Acquire::Languages=none"
  # As root apt downloads as the _apt user, who cannot write into this checkout; the files
  # are checked against the signed index and the pin either way.
  -o "APT::Sandbox::User=$(id -un)"
)
echo "fetch-libbpf: libbpf $LIBBPF_VERSION source from $LIBBPF_SOURCE_SUITE (private apt state in $apt_dir)" >&2
apt-get -qq "${apt_private[@]}" update
# Any Debian revision of the release carries the same orig tarball; the pin decides.
revision=$(apt-cache "${apt_private[@]}" showsrc libbpf |
  awk -v v="$LIBBPF_VERSION" '$1 == "Version:" && index($2, v "-") == 1 { print $2; exit }')
[ -n "$revision" ] || fail "$LIBBPF_SOURCE_SUITE has no libbpf $LIBBPF_VERSION source package"
(cd "$apt_dir/download" && apt-get -qq "${apt_private[@]}" source --download-only --tar-only "libbpf=$revision" >&2)

fetched=$apt_dir/download/libbpf_${LIBBPF_VERSION}.orig.tar.gz
[ -f "$fetched" ] || fail "apt-get source did not leave $fetched"
matches_pin "$fetched" || fail "$fetched does not match the pinned sha256 $LIBBPF_ORIG_SHA256"
mv "$fetched" "$tarball"
# The private lists are only needed for a fetch, which the cached tarball now spares.
rm -rf "$apt_dir"
echo "$tarball"
