#!/usr/bin/env bash
# The VM tier's host side: boot a real kernel under qemu with an initramfs holding node, the
# built sockeye package and the guest suite (test/vm/guest/), and bring the guest's JSON back.
#
#   bash test/vm/run.sh                           Debian's current linux-image-amd64 (fetched, cached)
#   bash test/vm/run.sh --package linux-image-6.12-amd64   the kernel another Debian meta-package names
#   bash test/vm/run.sh --suite bullseye          the kernel linux-image-amd64 names in another Debian suite
#   bash test/vm/run.sh --deb linux-image-X.deb   a Debian kernel package you have
#   bash test/vm/run.sh --kernel /boot/vmlinuz-X  any bzImage (config read from a config-X beside it)
#
# --suite SUITE resolves and fetches --package (default linux-image-amd64) from that Debian suite
# and its -security suite through a private apt configuration (test/vm/.cache/apt/SUITE), so
# the host's apt sources need not carry it and are left as they are.
# Options: --append "ARGS" (extra kernel command line), --timeout SEC (default 480; qemu is
# killed then), --out DIR (default test/vm/.cache/run), --accel tcg|kvm (default tcg: KVM is
# never needed; SOCKEYE_VM_CPU sets -cpu with it), --smp N (default 2).
# Writes DIR/results.json (what the guest observed) and DIR/console.log (the serial console).
# It judges nothing itself: test/vm/vm.test.ts (npm run test:vm) asserts on results.json.
# Every expected failure is one line on stderr and a non-zero exit: 3 when something the tier
# needs is not to be had here (a tool, the kernel package), 1 for any other failure, 2 for
# usage errors. The vitest tier skips on 3 outside CI and fails on anything in CI.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${SOCKEYE_VM_CACHE:-$here/.cache}"

die() { echo "test/vm: $*" >&2; exit 1; }
unavailable() { echo "test/vm: $*" >&2; exit 3; }
usage() { echo "test/vm: $*" >&2; echo "usage: bash test/vm/run.sh [--kernel VMLINUZ | --deb LINUX-IMAGE.deb | [--package META] [--suite SUITE]] [--append ARGS] [--timeout SEC] [--out DIR] [--accel tcg|kvm] [--smp N]" >&2; exit 2; }
note() { echo "test/vm: $*" >&2; }

kernel="" deb="" meta=linux-image-amd64 meta_given="" suite="" append="" timeout_s=480 out="" accel="${SOCKEYE_VM_ACCEL:-tcg}" smp=2
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) [ $# -ge 2 ] || usage "--kernel needs a file"; kernel="$2"; shift 2 ;;
    --deb) [ $# -ge 2 ] || usage "--deb needs a file"; deb="$2"; shift 2 ;;
    --package) [ $# -ge 2 ] || usage "--package needs a meta-package name"; meta="$2"; meta_given=1; shift 2 ;;
    --suite) [ $# -ge 2 ] || usage "--suite needs a Debian suite name"; suite="$2"; shift 2 ;;
    --append) [ $# -ge 2 ] || usage "--append needs an argument"; append="$2"; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage "--timeout needs seconds"; timeout_s="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || usage "--out needs a directory"; out="$2"; shift 2 ;;
    --accel) [ $# -ge 2 ] || usage "--accel needs tcg or kvm"; accel="$2"; shift 2 ;;
    --smp) [ $# -ge 2 ] || usage "--smp needs a number"; smp="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage "unknown argument: $1" ;;
  esac
done
[ $(( ${kernel:+1}+0 + ${deb:+1}+0 + ${meta_given:+1}+0 )) -gt 1 ] && usage "give one of --kernel, --deb, --package"
[ -n "$suite" ] && [ -n "$kernel$deb" ] && usage "--suite goes with --package (or the default package), not --kernel or --deb"
[ -z "$suite" ] || [[ "$suite" =~ ^[a-z]+$ ]] || usage "--suite must be a Debian suite name such as bullseye, got $suite"
[[ "$timeout_s" =~ ^[0-9]+$ ]] || usage "--timeout must be whole seconds, got $timeout_s"
[[ "$smp" =~ ^[1-9][0-9]*$ ]] || usage "--smp must be a positive number, got $smp"
case "$accel" in tcg|kvm) ;; *) usage "--accel must be tcg or kvm, got $accel" ;; esac
out="${out:-$cache/run}"

# --- prerequisites: say exactly which is missing and what installs it ------------------------
need() { command -v "$1" >/dev/null 2>&1 || unavailable "$1 not found (Debian package $2; bash scripts/setup.sh --dev installs it)"; }
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need gzip gzip
need gcc gcc
need timeout coreutils
busybox_bin="$(command -v busybox || true)"
[ -n "$busybox_bin" ] || unavailable "busybox not found (Debian package busybox-static; bash scripts/setup.sh --dev installs it)"
# The initramfs has no libc for busybox: it must be the static build.
if ldd "$busybox_bin" >/dev/null 2>&1; then unavailable "$busybox_bin is dynamically linked: install busybox-static"; fi
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || unavailable "no static libc for the guest helper (Debian package libc6-dev)"
# The node that built the addon (npm's): the guest runs the same binary at /usr/bin/node.
node_bin="$(command -v node || true)"
[ -n "$node_bin" ] || unavailable "node not found on PATH"
node_bin="$(readlink -f "$node_bin")"
for bin in "$node_bin" /bin/bash /usr/bin/setsid /usr/bin/nohup /usr/bin/ncat /usr/bin/socat /usr/bin/mkfifo /bin/nc.traditional /usr/bin/cat; do
  [ -x "$bin" ] || unavailable "$bin is missing (the guest suite runs it)"
done
[ -f "$root/build/Release/sockeye.node" ] || die "build/Release/sockeye.node is missing: run 'npm run build' first"
[ -f "$root/dist/index.js" ] || die "dist/index.js is missing: run 'npm run build' first"

mkdir -p "$cache" "$out"
rm -f "$out/results.json" "$out/console.log"

# --- the kernel -------------------------------------------------------------------------------
config=""
extract_deb() { # $1 = .deb; sets kernel and config from its boot/
  local d="$cache/kernels/$(basename "$1" .deb)"
  if [ ! -d "$d/boot" ]; then
    command -v dpkg-deb >/dev/null || unavailable "dpkg-deb not found (needed to unpack $1)"
    rm -rf "$d.tmp" && mkdir -p "$d.tmp"
    dpkg-deb -x "$1" "$d.tmp" || die "dpkg-deb -x failed on $1"
    rm -rf "$d" && mv "$d.tmp" "$d"
  fi
  kernel="$(ls "$d"/boot/vmlinuz-* 2>/dev/null | head -1)"
  [ -n "$kernel" ] || die "$1 holds no boot/vmlinuz-*: is it a linux-image package?"
  config="$(ls "$d"/boot/config-* 2>/dev/null | head -1 || true)"
}

if [ -n "$kernel" ]; then
  [ -f "$kernel" ] || die "kernel image not found: $kernel"
  guess="$(dirname "$kernel")/$(basename "$kernel" | sed 's/^vmlinuz/config/')"
  [ "$guess" != "$kernel" ] && [ -f "$guess" ] && config="$guess"
elif [ -n "$deb" ]; then
  [ -f "$deb" ] || die "kernel package not found: $deb"
  extract_deb "$deb"
else
  # The package the meta-package points at today, e.g. linux-image-amd64 -> linux-image-6.1.0-56-amd64.
  [[ "$meta" =~ ^linux-image-[a-z0-9.+-]+$ ]] || usage "--package must name a linux-image-* package, got $meta"
  apt_opts=()
  if [ -n "$suite" ]; then
    # Another suite: apt's own resolution and signature checks, on a private configuration
    # (its sources, lists and cache under $cache/apt/$suite), from the mirrors the host's apt
    # already uses for Debian and its security archive.
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || unavailable "$keyring is missing (Debian package debian-archive-keyring): needed for --suite"
    uri_of() { apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' 2>/dev/null |
      awk -v want="$1" '$3 == "deb" && ($2 == want || (want == "security" && $2 ~ /-security$/)) { print $1; exit }'; }
    host_suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    mirror="${SOCKEYE_DEBIAN_MIRROR:-$(uri_of "$host_suite")}"
    security="${SOCKEYE_DEBIAN_SECURITY_MIRROR:-$(uri_of security)}"
    [ -n "$mirror" ] || unavailable "no Debian archive in apt's sources to fetch $suite from: set SOCKEYE_DEBIAN_MIRROR to a Debian mirror's URI"
    apt_dir="$cache/apt/$suite"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d"
    {
      echo "deb [signed-by=$keyring] $mirror $suite main"
      [ -z "$security" ] || echo "deb [signed-by=$keyring] $security $suite-security main"
    } >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Acquire::Languages=none"
      -o "APT::Sandbox::User=$(id -un)")
  fi
  pkg_of() { apt-cache "${apt_opts[@]}" depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
  pkg="$(pkg_of || true)"
  # Private lists from an earlier run may name a package the suite has since replaced: they
  # are refreshed whenever the package they name is not cached yet.
  if [ -n "$suite" ] && { [ -z "$pkg" ] || ! ls "$cache/debs/${pkg}_"*.deb >/dev/null 2>&1; }; then
    apt-get -qq "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 || note "apt-get update for $suite failed: $(grep -E '^(E|Err|W):' "$apt_dir/update.log" | head -1)"
    pkg="$(pkg_of || true)"
  elif [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true; pkg="$(pkg_of || true)"
  fi
  mkdir -p "$cache/debs"
  # Which package the meta-package named when it was last resolved: several kernels share the
  # cache, and without a package index this is how the right one is found again.
  named="$cache/debs/${suite:+$suite-}$meta.name"
  if [ -n "$pkg" ]; then
    echo "$pkg" >"$named"
  elif [ -s "$named" ]; then
    pkg="$(cat "$named")"
    note "no package index; $meta named $pkg when last resolved"
  else
    unavailable "cannot name the kernel package of $meta: 'apt-cache depends $meta' names none (run apt-get update as root, with the suite that carries it in apt's sources), and it was never resolved here"
  fi
  debfile="$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)"
  if [ -z "$debfile" ]; then
    note "fetching Debian's kernel package $pkg"
    (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg" >"$cache/debs/download.log" 2>&1) \
      || unavailable "apt-get download $pkg failed: $(grep -E '^(E|Err):' "$cache/debs/download.log" | head -1)"
    debfile="$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)"
    [ -n "$debfile" ] || die "apt-get download $pkg left no .deb in $cache/debs"
  fi
  extract_deb "$debfile"
fi

# The BPF LSM runs only when it is built in and on the active LSM list. Debian's kernels list
# it by default (CONFIG_LSM ends in ",bpf"); for a kernel built with it but not listed, add
# it on the command line, and say so.
if [ -n "$config" ]; then
  grep -q '^CONFIG_BPF_LSM=y' "$config" || note "$(basename "$config"): CONFIG_BPF_LSM is not set: expect the connect hook to fall back"
  lsm_default="$(sed -n 's/^CONFIG_LSM="\(.*\)"$/\1/p' "$config")"
  if grep -q '^CONFIG_BPF_LSM=y' "$config" && [ -n "$lsm_default" ] && [[ ",$lsm_default," != *",bpf,"* ]] && [[ " $append " != *" lsm="* ]]; then
    append="${append:+$append }lsm=$lsm_default,bpf"
    note "bpf is not in this kernel's default LSM list: booting with lsm=$lsm_default,bpf"
  fi
else
  note "no kernel config found beside $kernel: booting without checking CONFIG_BPF_LSM (pass --append lsm=...,bpf if it is not on by default)"
fi

# --- the guest's static helpers ---------------------------------------------------------------
# sockhelper: the socket cases; ia32-syscalls: the kernel tier's int $0x80 helper, shared.
build_static() { # $1 = source, $2 = output
  if [ ! -x "$2" ] || [ "$1" -nt "$2" ]; then
    gcc -static -O2 -Wall -o "$2.tmp" "$1" 2>"$cache/gcc.log" \
      || die "gcc -static failed on $1: $(head -1 "$cache/gcc.log")"
    mv "$2.tmp" "$2"
  fi
}
helper="$cache/sockhelper"
build_static "$here/guest/sockhelper.c" "$helper"
ia32_helper="$cache/ia32-syscalls"
build_static "$here/../kernel/helpers/ia32-syscalls.c" "$ia32_helper"

# --- the initramfs ----------------------------------------------------------------------------
stage="$cache/initramfs"
rm -rf "$stage" && mkdir -p "$stage"

# Copies a file to the same path in the image, and every library ldd lists for it, the dynamic
# loader included, each at the path ldd names (that path is what the loader will look up).
copy_with_libs() { # $1 = file, $2 = path in the image (default: same as $1)
  local src="$1" dst="${2:-$1}" lib
  mkdir -p "$stage$(dirname "$dst")"
  cp -L "$src" "$stage$dst"
  while read -r lib; do
    [ -n "$lib" ] && [ ! -e "$stage$lib" ] || continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done < <(ldd "$src" 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\/[^ ]+ \(/ {print $1}')
}

mkdir -p "$stage/bin" "$stage/usr/local/bin" "$stage/etc" "$stage/root"
cp "$busybox_bin" "$stage/bin/busybox"
copy_with_libs "$node_bin" /usr/bin/node
copy_with_libs /bin/bash
copy_with_libs /usr/bin/setsid   # util-linux: the exec event then names the file "setsid"
copy_with_libs /usr/bin/nohup    # coreutils
# The relay shells (RELAY-001): ncat -e, socat's pty and the mkfifo chain's mkfifo and nc.
copy_with_libs /usr/bin/ncat
copy_with_libs /usr/bin/socat
copy_with_libs /usr/bin/mkfifo
copy_with_libs /bin/nc.traditional
# SHELL-001's read loop (`cat <&5 | while read ...`): coreutils cat, as on a Debian host;
# busybox's cat copies a socket with sendfile and holds the first line back (the loop hangs).
copy_with_libs /usr/bin/cat
cp "$helper" "$stage/usr/local/bin/sockhelper"
cp "$ia32_helper" "$stage/usr/local/bin/ia32-syscalls"
cp "$here/guest/init" "$stage/init" && chmod 755 "$stage/init"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"

# The package as npm would install it: package.json, dist/, rules/, the addon, and the runtime
# dependencies (npm's own list of the non-dev tree, so a new dependency comes along by itself).
pkgdir="$stage/sockeye"
mkdir -p "$pkgdir/build/Release" "$pkgdir/node_modules"
cp "$root/package.json" "$pkgdir/"
cp -r "$root/dist" "$root/rules" "$pkgdir/"
copy_with_libs "$root/build/Release/sockeye.node" /sockeye/build/Release/sockeye.node
deps="$(cd "$root" && npm ls --omit=dev --all --parseable 2>/dev/null | grep '/node_modules/' || true)"
[ -n "$deps" ] || die "npm ls found no runtime dependencies in $root/node_modules: run npm install first"
while read -r dep; do
  rel="${dep#"$root"/}"
  mkdir -p "$pkgdir/$(dirname "$rel")"
  cp -r "$dep" "$pkgdir/$rel"
done <<<"$deps"
cp "$here/guest/entry.mjs" "$pkgdir/vm-entry.mjs"

initrd="$cache/initrd.cpio.gz"
# -R 0:0: files in the guest belong to root whoever builds the image; gzip -1: the guest
# decompresses it under TCG, where a smaller, slower-to-make archive buys little.
(cd "$stage" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 >"$initrd.tmp") \
  || die "building the initramfs failed"
mv "$initrd.tmp" "$initrd"

# --- boot -------------------------------------------------------------------------------------
# KVM is an option, never a need: on the CI machine kind a KVM guest hangs after the BIOS
# and -cpu host fails on MSR 0x10a (docs/design.md §1), so TCG is the default everywhere.
accel_args=(-accel tcg)
[ "$accel" = kvm ] && accel_args=(-accel kvm${SOCKEYE_VM_CPU:+ -cpu $SOCKEYE_VM_CPU})
cmdline="console=ttyS0 quiet panic=-1${append:+ $append}"
note "booting $(basename "$kernel") under qemu ($accel, $smp CPUs), initramfs $(( $(stat -c %s "$initrd") / 1048576 )) MiB, timeout ${timeout_s}s"
for attempt in 1 2; do
  start=$(date +%s.%N)
  set +e
  # stdin from /dev/null: -nographic would otherwise put a terminal into raw mode, and CI has none.
  # --foreground: timeout kills qemu alone, not its own process group (which is this script's:
  # bash would die with it, or print a "Killed" notice beside the one-line failure below).
  timeout --foreground -s KILL "$timeout_s" qemu-system-x86_64 "${accel_args[@]}" -smp "$smp" -m 2048 -nographic -no-reboot \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline" </dev/null >"$out/console.log" 2>&1
  status=$?
  set -e
  elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
  # A kernel that panicked before /init ran says nothing about sockeye: under TCG, Debian's 6.12
  # once oopsed at boot (int3 in sched_clock_cpu while patching its own text, 1 boot in ~20).
  # It is booted once more, and the first console kept; a second panic fails as any other boot.
  if [ "$attempt" -eq 1 ] && ! grep -q "sockeye-vm: init at" "$out/console.log" && grep -q "Kernel panic" "$out/console.log"; then
    mv "$out/console.log" "$out/console.first-boot.log"
    note "the kernel panicked before /init ran (see $out/console.first-boot.log): booting it once more"
    continue
  fi
  break
done

tr -d '\r' <"$out/console.log" \
  | sed -n '/^===SOCKEYE-VM-RESULTS-BEGIN===$/,/^===SOCKEYE-VM-RESULTS-END===$/p' \
  | sed '1d;$d' >"$out/results.json.tmp"
if [ ! -s "$out/results.json.tmp" ]; then
  rm -f "$out/results.json.tmp"
  # Terminal escapes (SeaBIOS clears the screen) would make the reason unreadable.
  last="$(tr -d '\r' <"$out/console.log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b.//g' | grep -v '^[[:space:]]*$' | tail -1 | cut -c1-200)"
  [ "$status" -eq 137 ] && die "qemu killed after ${timeout_s}s with no results from the guest (last console line: ${last:-none}; see $out/console.log)"
  die "no results from the guest (qemu exit $status after ${elapsed}s; last console line: ${last:-none}; see $out/console.log)"
fi
mv "$out/results.json.tmp" "$out/results.json"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const live = (r.programs || []).filter((p) => p.live).map((p) => `${p.capability}=${p.program}`).join(" ");
  console.error(`test/vm: kernel ${r.kernel}: suite started at guest uptime ${r.uptimeAtEntry}s, ran ${(r.durationMs / 1000).toFixed(1)}s; qemu total ${process.argv[2]}s`);
  console.error(`test/vm: live programs: ${live || "none"}${r.error ? `; guest error: ${r.error.message}` : ""}`);
' "$out/results.json" "$elapsed" || die "the guest's results are not valid JSON (see $out/console.log)"
echo "$out/results.json"
