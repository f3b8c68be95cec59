#!/usr/bin/env bash
# Everything a fresh Debian 12 machine lacks to build and run sockeye, as root: the Debian
# packages of the BPF toolchain, the pinned libbpf source (scripts/fetch-libbpf.sh, through
# apt), then the npm dependencies and the build (npm ci runs `prepare`, which builds libbpf,
# the BPF object, the addon and the TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh: run as root (it installs Debian packages): sudo bash scripts/setup.sh" >&2
  exit 1
fi

# libbpf itself is built from its pinned source (native/libbpf.pin): libelf-dev, zlib1g-dev,
# make and pkg-config build it, debian-archive-keyring checks its source's index.
packages=(clang llvm libelf-dev zlib1g-dev bpftool cmake make g++ pkg-config debian-archive-keyring
          python3 util-linux iproute2)
# The kernel tier's real reverse shells use these interpreters and tools (gawk's /inet/tcp,
# openssl s_client, telnet pairs and busybox nc -e among the relays).
packages+=(bash perl php-cli ruby netcat-traditional gawk openssl telnet)
# The kernel tier's benign corpus: an OpenSSH server on loopback and its clients, inetd-style
# services and everyday network tools, which must not raise a finding.
packages+=(openssh-server openssh-client socat ncat systemd tmux curl wget git)
# The VM tier (test/vm): qemu boots Debian's kernel with an initramfs of busybox-static, cpio
# packs it, gcc -static with libc6-dev builds the guest's syscall helper; setsid (util-linux)
# and nohup (coreutils) are copied into the guest. npm run bench builds its C load generator
# and C consumer with the same gcc (bench/Makefile).
packages+=(qemu-system-x86 busybox-static cpio gzip gcc libc6-dev coreutils)
# Fleet delivery: the unit tier starts its own NATS JetStream server and rsyslogd (with its
# TLS driver) on loopback, each with its own config in a temporary folder.
packages+=(nats-server rsyslog rsyslog-gnutls)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  # Packages are installed, never started: openssh-server, nats-server and rsyslog would
  # otherwise start their daemons where no policy-rc.d says no (the tests start their own,
  # on loopback).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The build fetches it too when it is missing; here a failure to fetch shows as what it is.
bash scripts/fetch-libbpf.sh .cache/libbpf >/dev/null

# `npm ci`: exactly the lock file's versions, and it refuses a lock that is out of step with
# package.json instead of rewriting it (the lock lists every platform's optional packages).
npm ci --no-audit --no-fund

# `sockeye` on the PATH for this checkout. The wrapper execs node in its own place, so a signal
# sent to the pid you started reaches the daemon itself (`npx sockeye` runs it under `npm exec`,
# which does not pass SIGTERM on and leaves the daemon running, reparented to init).
node_bin=$(command -v node)
wrapper=$(mktemp /usr/local/bin/.sockeye.XXXXXX)
cat > "$wrapper" <<WRAPPER
#!/bin/sh
# Written by $(pwd)/scripts/setup.sh
exec "$node_bin" "$(pwd)/dist/cli/main.js" "\$@"
WRAPPER
chmod 755 "$wrapper"
mv -f "$wrapper" /usr/local/bin/sockeye
echo "setup: sockeye is /usr/local/bin/sockeye (this checkout: $(pwd))" >&2
