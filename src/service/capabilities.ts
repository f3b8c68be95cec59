/**
 * Capabilities whose absence does not stop the sensor but costs it coverage, so a start
 * without them says what is lost instead of missing shells silently (a least-privilege unit
 * or DaemonSet that forgot one).
 */
import { readFileSync } from "node:fs";

/** CAP_SYS_ADMIN: it covers CAP_NET_ADMIN's use here (the kernel takes either to load socket programs). */
const SYS_ADMIN = 21n;

const COVERAGE_CAPABILITIES: { bit: bigint; name: string; loss: string; orBit?: bigint }[] = [
  { bit: 19n, name: "CAP_SYS_PTRACE", loss: "other processes' /proc/<pid>/fd and exe cannot be read: relay shells (RELAY-001) of root and other users are not judged" },
  { bit: 2n, name: "CAP_DAC_READ_SEARCH", loss: "other users' /proc/<pid>/fd cannot be entered: their relay shells (RELAY-001) are not judged" },
  {
    bit: 12n, orBit: SYS_ADMIN, name: "CAP_NET_ADMIN",
    loss: "the kernel refuses the cgroup/sendmsg programs (udp_send): relay shells over UDP sockets that never connect (socat UDP-SENDTO:) are not reported",
  },
];

/** What this process lacks of the capabilities above, from /proc/self/status's CapEff. */
export function missingCoverageCapabilities(status = readFileSync("/proc/self/status", "utf8")): { name: string; loss: string }[] {
  const hex = status.match(/^CapEff:\s*([0-9a-f]+)$/m)?.[1];
  if (hex === undefined) return [];
  const effective = BigInt(`0x${hex}`);
  const has = (bit: bigint) => (effective & (1n << bit)) !== 0n;
  return COVERAGE_CAPABILITIES.filter((c) => !has(c.bit) && (c.orBit === undefined || !has(c.orBit))).map(({ name, loss }) => ({ name, loss }));
}
