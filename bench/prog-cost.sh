#!/usr/bin/env bash
# Kernel-side cost of sockeye's programs, as the kernel accounts it: with
# kernel.bpf_stats_enabled=1, each program's run_time_ns / run_cnt while a workload runs.
# Usage (root): bash bench/prog-cost.sh [CHECKOUT] [EXECS]
#   CHECKOUT  a built sockeye checkout (default: this one), so two builds can be compared
#   EXECS     fork+exec of /bin/true to run (default 3000); 300 more are shells with a
#             pipe, so exec records read pipes as well as files on stdio
#             and 1000 TCP plus 1000 UDP connects on fds past stdio
# Prints one JSON line: ns per run of handle_exec, handle_fork, handle_exit, and of the two
# programs on sys_exit_connect (connect's fallback and relay's outbound record).
set -euo pipefail
checkout=$(cd "${1:-$(dirname "$0")/..}" && pwd)
execs=${2:-3000}
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
  const { openSensor } = await import('$checkout/dist/index.js');
  const s = await openSensor();
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
after=$(ids)
node -e "
  const [b, a] = [JSON.parse(process.argv[1]), JSON.parse(process.argv[2])];
  const out = {};
  for (const p of a) {
    const q = b.find((x) => x.id === p.id) ?? { run_time_ns: 0, run_cnt: 0 };
    const runs = (p.run_cnt ?? 0) - (q.run_cnt ?? 0);
    if (runs > 0 && /^handle_(exec|fork|exit|connect_exit|outbound)/.test(p.name))
      out[p.name] = { runs, ns_per_run: Math.round(((p.run_time_ns ?? 0) - (q.run_time_ns ?? 0)) / runs) };
  }
  console.log(JSON.stringify(out));" "$before" "$after"
