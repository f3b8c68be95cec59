# Debian packages by purpose, sourced by setup.sh (and read by test/unit/setup to check what a
# monitored host keeps). A monitored host keeps only `runtime`; `build` is installed for the
# build and removed again unless setup runs with --dev; `test` and `vm` come with --dev only.

# The addon links libbpf statically and libelf and zlib dynamically; systemd-notify (systemd)
# sends the unit's READY=1 and is present wherever the unit is used.
runtime_packages=(libelf1 zlib1g)

# libbpf is built from its pinned source (native/libbpf.pin): libelf-dev, zlib1g-dev, make and
# pkg-config build it, debian-archive-keyring checks its source's index; clang and bpftool build
# the CO-RE BPF object and its skeleton; cmake and g++ the addon.
build_packages=(clang llvm libelf-dev zlib1g-dev bpftool cmake make g++ pkg-config
                debian-archive-keyring)

# The kernel tier's real reverse shells use these interpreters and tools (gawk's /inet/tcp,
# openssl s_client, telnet pairs and busybox nc -e among the relays); its benign corpus an
# OpenSSH server on loopback, inetd-style services and everyday network tools; the unit tier
# starts its own NATS JetStream server and rsyslogd (with its TLS driver) on loopback. The
# services are installed, never started or left enabled (setup.sh disables them).
test_packages=(python3 util-linux iproute2 bash perl php-cli ruby netcat-traditional gawk openssl
               telnet openssh-server openssh-client socat ncat systemd tmux curl wget git
               nats-server rsyslog rsyslog-gnutls)
# The image and DaemonSet tests build a minimal Debian root filesystem (debootstrap) and run it
# with podman (runc: crun refuses this hybrid-cgroup host); the docker test starts its own dockerd.
test_packages+=(podman runc debootstrap docker.io)

# The VM tier (test/vm): qemu boots Debian's kernel with an initramfs of busybox-static, cpio
# packs it, gcc -static with libc6-dev builds the guest's syscall helper; setsid (util-linux)
# and nohup (coreutils) are copied into the guest. npm run bench builds its C load generator
# and C consumer with the same gcc (bench/Makefile).
vm_packages=(qemu-system-x86 busybox-static cpio gzip gcc libc6-dev coreutils)
