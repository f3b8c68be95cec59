/**
 * ECS process.thread.capabilities.effective / .permitted: the capability sets the kernel
 * record carries (exec, credential change), as the arrays of names Elastic Defend sends
 * ("CAP_SYS_PTRACE", ...), which rules match with `: "CAP_SET?ID"`. Built only when a rule
 * reads the field (a Deferred value), from a small cache: almost every set is root's full one
 * or an empty one.
 */
import { Deferred } from "../../eql/compile.js";
import type { CapabilitySets } from "../../sensor/events.js";

/** Capability n's name, by n (linux/capability.h, CAP_CHOWN = 0 to CAP_CHECKPOINT_RESTORE = 40, the last since 5.9). */
export const CAPABILITY_NAMES: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
  "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
  "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

const NAMES_CACHE_MAX = 64;
const namesCache = new Map<string, readonly string[]>();

/**
 * The names of the capabilities in `set` (16 hex digits, bit n = capability n), in number
 * order. A bit past the table (a capability newer than CAP_CHECKPOINT_RESTORE) has no name
 * sockeye knows, so it is left out rather than named by guess.
 */
export function capabilityNames(set: string): readonly string[] {
  let names = namesCache.get(set);
  if (names !== undefined) return names;
  const high = Number.parseInt(set.slice(0, 8), 16);
  const low = Number.parseInt(set.slice(8), 16);
  const found: string[] = [];
  for (let n = 0; n < CAPABILITY_NAMES.length; n++) {
    const word = n < 32 ? low : high;
    if (((word >>> (n & 31)) & 1) === 1) found.push(CAPABILITY_NAMES[n]!);
  }
  names = Object.freeze(found);
  if (namesCache.size >= NAMES_CACHE_MAX) namesCache.clear();
  namesCache.set(set, names);
  return names;
}

/**
 * process.thread of a document whose record carried `caps`: { capabilities: { effective,
 * permitted } }, each set's names. An empty set is left out, as Elasticsearch indexes an empty
 * array: no value, so `== null` holds on it and `: "CAP_*"` does not.
 */
export function ecsThreadCapabilities(caps: CapabilitySets): Deferred {
  return new Deferred(() => {
    const capabilities: Record<string, readonly string[]> = {};
    const effective = capabilityNames(caps.effective);
    const permitted = capabilityNames(caps.permitted);
    if (effective.length > 0) capabilities["effective"] = effective;
    if (permitted.length > 0) capabilities["permitted"] = permitted;
    return { capabilities };
  });
}

/** The field paths above, for the catalog (EXEC_ECS_FIELDS, CHANGE_ECS_FIELDS). */
export const CAPABILITY_FIELDS = ["process.thread.capabilities.effective", "process.thread.capabilities.permitted"];
