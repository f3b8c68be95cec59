#!/usr/bin/env bash
# Kernel-side cost of sockeye's programs, as the kernel accounts it: with
# kernel.bpf_stats_enabled=1, each program's run_time_ns / run_cnt while a workload runs.
# Usage (root): bash bench/prog-cost.sh [CHECKOUT] [EXECS] [SYSCALLS]
#   CHECKOUT  a built sockeye checkout (default: this one), so two builds can be compared
#   EXECS     fork+exec of /bin/true to run (default 3000); 300 more are shells with a
#             pipe, so exec records read pipes as well as files on stdio
#             and 1000 TCP plus 1000 UDP connects on fds past stdio
#   SYSCALLS  rounds of the syscalls the dup and connect programs watch (default 20000), most
#             of them the common case that never leaves the kernel: dup2 onto fd 5, dup onto a
#             high fd, fcntl(F_GETFD) (which returns 0, a stdio fd), fcntl(F_DUPFD) past stdio,
#             a UDP connect on a high fd; and one matching dup2 onto fd 1 every 20 rounds;
#             and a tenth as many credential rounds (as root): a setuid to the uid it has
#             (no record), a setresuid to 65534 and back, a setregid to 65534 and back,
#             and a forked child's setsid (the cred_change programs, bpf/process.bpf.c);
#             and a UDP send storm for udp_send (cgroup/sendmsg4|6, bpf/relay.bpf.c): SYSCALLS
#             sendto calls spread over 100 unconnected sockets (a record at each one's first
#             send, then one map lookup each), SYSCALLS/10 fresh sockets sending once (a record
#             each), and SYSCALLS sendto calls on a connected socket (left at the state check)
# PROG_COST_UDP_ONLY=1 runs the UDP send storm alone (its programs' figures then cover nothing else).
# PROG_COST_ENFORCE=1 loads the enforcing programs too (bpf/enforce.bpf.c, with this host's
# interpreters), as `sockeye run --enforce` does.
# PROG_COST_SKIP='candidate;candidate' starts the sensor with those candidates skipped (e.g.
# the task_access variants of older kernels, to measure them here).
# Prints one JSON line: runs and ns per run of each program that ran.
set -euo pipefail
checkout=$(cd "${1:-$(dirname "$0")/..}" && pwd)
execs=${2:-3000}
syscalls=${3:-20000}
[ "$(id -u)" -eq 0 ] || { echo "bench/prog-cost.sh: run as root (it loads BPF programs)" >&2; exit 1; }

previous=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
sensor_pid=""
cleanup() {
  [ -z "$sensor_pid" ] || kill "$sensor_pid" 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$previous"
}
trap cleanup EXIT

# A sensor that only loads and drains: the cost measured is the programs', not a consumer's.
node --input-type=module -e "
  const sockeye = await import('$checkout/dist/index.js');
  // openSensorSync since the curated API; openSensor (async) in checkouts before it.
  const open = sockeye.openSensorSync ?? sockeye.openSensor;
  const skip = (process.env.PROG_COST_SKIP ?? '').split(';').filter(Boolean);
  const options = skip.length ? { skipCandidates: skip } : {};
  if (process.env.PROG_COST_ENFORCE === '1') {
    const { findKernelInterpreters } = await import('$checkout/dist/enforce/interpreters.js');
    const found = findKernelInterpreters();
    Object.assign(options, { enforce: true, enforceNames: found.names, enforceExes: found.exes });
  }
  const s = await open(options);
  s.subscribe(() => {});
  console.log('ready');
  process.on('SIGTERM', () => { s.close(); process.exit(0); });
  setInterval(() => {}, 1000);
" > /tmp/prog-cost.ready &
sensor_pid=$!
for _ in $(seq 100); do grep -q ready /tmp/prog-cost.ready 2>/dev/null && break; sleep 0.1; done

ids() { bpftool -j prog show | node -e "
  const progs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const held = new Set(process.argv.slice(1).map(Number));
  console.log(JSON.stringify(progs.filter((p) => held.has(p.id))));" $(for fd in /proc/"$sensor_pid"/fd/*; do
    [ "$(readlink "$fd")" = "anon_inode:bpf-prog" ] && sed -n 's/^prog_id:\s*//p' "/proc/$sensor_pid/fdinfo/${fd##*/}"; done); }
before=$(ids)
udp_storm() {
python3 -c "
import socket
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(('127.0.0.1', 0)); dest = sink.getsockname()
sink6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); sink6.bind(('::1', 0)); dest6 = sink6.getsockname()[:2]
held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(90)] + [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(10)]
for i in range($syscalls):
    s = held[i % len(held)]
    s.sendto(b'x', dest6 if s.family == socket.AF_INET6 else dest)
for i in range($syscalls // 10):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'x', dest); u.close()
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(dest)
for i in range($syscalls): c.sendto(b'x', dest)
"
}
if [ "${PROG_COST_UDP_ONLY:-0}" = 1 ]; then
  udp_storm
else
for _ in $(seq "$execs"); do /bin/true; done
for _ in $(seq 300); do sh -c 'echo x | grep -q x'; done
# Connects on fds past stdio, TCP (what the relay capability records) and UDP (what it skips
# in the kernel), against a loopback listener.
python3 -c '
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(512); port = srv.getsockname()[1]
for i in range(1000):
    c = socket.create_connection(("127.0.0.1", port)); a, _ = srv.accept(); a.close(); c.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(("127.0.0.1", 53)); u.close()
'
python3 -c "
import fcntl, os, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect(('127.0.0.1', 9))  # UDP: connect only sets the peer, nothing is sent
keep = os.dup(1)
for i in range($syscalls):
    os.dup2(u.fileno(), 5)
    os.close(os.dup(u.fileno()))
    fcntl.fcntl(u.fileno(), fcntl.F_GETFD)
    os.close(fcntl.fcntl(u.fileno(), fcntl.F_DUPFD, 0))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.connect(('127.0.0.1', 9))
    c.close()
    if i % 20 == 0:
        os.dup2(u.fileno(), 1)
        os.dup2(keep, 1)
" >/dev/null
python3 -c "
import os
for i in range($syscalls // 10):
    os.setuid(0)
    os.setresuid(0, 65534, 0); os.setresuid(0, 0, 0)
    os.setregid(0, 65534); os.setregid(0, 0)
    pid = os.fork()
    if pid == 0:
        os.setsid(); os._exit(0)
    os.waitpid(pid, 0)
"
udp_storm
fi
after=$(ids)
node -e "
  const [b, a] = [JSON.parse(process.argv[1]), JSON.parse(process.argv[2])];
  const out = {};
  for (const p of a) {
    const q = b.find((x) => x.id === p.id) ?? { run_time_ns: 0, run_cnt: 0 };
    const runs = (p.run_cnt ?? 0) - (q.run_cnt ?? 0);
    if (runs > 0 && (p.name.startsWith('handle_') || p.name.startsWith('enforce_')))
      out[p.name] = { runs, ns_per_run: Math.round(((p.run_time_ns ?? 0) - (q.run_time_ns ?? 0)) / runs) };
  }
  console.log(JSON.stringify(out));" "$before" "$after"
