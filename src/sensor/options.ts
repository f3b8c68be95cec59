/**
 * The sensor's options, defined once. `openSensorSync()` and `probe()` validate with
 * `sensorOptionsSchema` and hand the result to the addon unchanged (native/sensor.cc reads
 * these names); the config file's [sensor] table (`sensorConfigSchema`) is the same fields
 * under their TOML names, with the daemon's defaults. A new option is one field here, one
 * line in native/sensor.cc, and a config name if the daemon should expose it.
 */
import { z } from "zod";

/**
 * Which fds are stdio, for the kernel's connect and dup filter and for TRC-101 alike: 0 to
 * this. The default is the seed's (docs/design.md §3): fds 0, 1 and 2.
 */
export const DEFAULT_STDIO_FD_MAX = 2;
/** The kernel side keeps stdio fds in a 1024-bit set. */
export const STDIO_FD_MAX_LIMIT = 1023;

export function isStdioFd(fd: number, stdioFdMax: number): boolean {
  return fd >= 0 && fd <= stdioFdMax;
}

/**
 * The addon stores a ring's size as a 32-bit unsigned value (bpf_map__set_max_entries), so
 * the largest power of two it can take is 2^31. Checked as numbers: JavaScript's bitwise
 * operators work on 32 bits, and would see 2^32 as 0 and 2^32 + 4096 as 4096.
 */
export const MAX_RING_BYTES = 2 ** 31;
const MIN_RING_BYTES = 4096;

function isRingSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= MIN_RING_BYTES && n <= MAX_RING_BYTES && Number.isInteger(Math.log2(n));
}

const ringBytes = z.number().refine(isRingSize, `must be a power of two from ${MIN_RING_BYTES} to ${MAX_RING_BYTES}`);

// Each option is documented on SensorOptions below.
const fields = {
  stdioFdMax: z.number().int().min(0).max(STDIO_FD_MAX_LIMIT),
  connectAllFds: z.boolean(),
  acceptRecords: z.boolean(),
  detectionRingBytes: ringBytes,
  processRingBytes: ringBytes,
  relayRingBytes: ringBytes,
  wakeupIntervalUs: z.number().int().min(0).max(100_000),
  readerRealtime: z.boolean(),
  eventLoopRealtime: z.boolean(),
  compatSyscalls: z.boolean(),
  skipCandidates: z.array(z.string().min(1)),
  iteratorQueueLimit: z.number().int().min(1),
  enforce: z.boolean(),
  enforceNames: z.array(z.string().min(1).max(15)).max(128),
  enforceExes: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])).max(256),
  enforceAllowed: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])).max(256),
};

export const sensorOptionsSchema = z.object(fields).partial().strict();

/**
 * What openSensorSync() and probe() take, checked at run time by the schema above; a type
 * test (test/unit/api.test.ts) fails when the two differ.
 */
export interface SensorOptions {
  /** Highest fd that counts as stdio for connect and dup filtering (default 2). */
  stdioFdMax?: number;
  /** Report connects on every fd, not only stdio ones (more volume; default false). */
  connectAllFds?: boolean;
  /**
   * Report every inet socket accept()/accept4() returns as an `accept` event (default false):
   * Elastic Defend's connection_accepted, which a busy server makes by the thousand a second.
   * `sockeye run` turns it on only when a loaded rule reads accepted connections.
   */
  acceptRecords?: boolean;
  /** Ring for connect and socket_dup records, bytes, power of two (default 512 KiB). */
  detectionRingBytes?: number;
  /** Ring for exec, fork and exit records, bytes, power of two (default 1 MiB). */
  processRingBytes?: number;
  /** Ring for outbound TCP connects past stdio (the relay rule's context), bytes, power of two (default 128 KiB). */
  relayRingBytes?: number;
  /**
   * At most one reader wakeup per ring per CPU in this many µs (default 250): under a stream
   * of events, records between wakeups are read by polling, at most about this late. An
   * isolated event (a real detection) still wakes the reader at once. 0 = wake on every record.
   */
  wakeupIntervalUs?: number;
  /**
   * Run the thread that drains the ring buffers under SCHED_RR at priority 1 (default true),
   * so that a host whose CPUs are all busy (or an attacker flooding it) cannot keep it from
   * reading in time. Its work is bounded and it sleeps between reads. Where real-time
   * scheduling is refused (e.g. a cgroup without an RT budget) it runs normally:
   * scheduling() says which.
   */
  readerRealtime?: boolean;
  /**
   * Run the calling thread, the event loop where rules run and findings are written, under
   * SCHED_RR 1 while it uses under a fifth of a CPU, and normally as soon as it uses over half
   * (checked every 250 ms by the reader thread; real time again after 5 s calm). Detection
   * latency then stays low on a busy host without a flood ever making the event loop a
   * real-time CPU hog. Default false: the event loop is the application's; `sockeye run` turns
   * it on. Restored to normal scheduling at close.
   */
  eventLoopRealtime?: boolean;
  /**
   * Also watch ia32 syscalls: 32-bit binaries and 64-bit ones using int $0x80, which syscall
   * tracepoints skip (an attacker's way past dup detection, and past connect where connect
   * runs on its tracepoint fallback). Costs one more program on every syscall of the host
   * (about 90 ns each on the bench machine). Default false; x86-64 only.
   */
  compatSyscalls?: boolean;
  /** Candidate programs not to try, e.g. ["lsm/socket_connect"] to force a fallback. */
  skipCandidates?: string[];
  /** Events a `for await` loop may fall behind by before new ones are dropped and counted (JavaScript only). */
  iteratorQueueLimit?: number;
  /**
   * Load the enforcing programs (docs/enforcement.md): an interpreter whose stdin and stdout
   * or stderr are connected inet sockets is denied its exec (BPF LSM) or killed (SIGKILL at
   * exec, or at the dup that completes the shape). Default false; the sensor refuses to open
   * when no enforcing program loads.
   */
  enforce?: boolean;
  /** With enforce: the interpreters' names (comm, at most 15 bytes). */
  enforceNames?: string[];
  /** With enforce: the interpreters' executables as [kernel dev_t (MAJOR << 20 | MINOR), inode]. */
  enforceExes?: [number, number][];
  /** With enforce: executables never stopped in the kernel (the allowlist), as enforceExes. */
  enforceAllowed?: [number, number][];
}

/** What probe() needs: which candidates to try. */
export type ProbeOptions = Pick<SensorOptions, "skipCandidates" | "compatSyscalls" | "enforce">;

/** Validated options, or the one-line problem with the first bad one. */
export function parseSensorOptions(options: unknown): { ok: true; options: SensorOptions } | { ok: false; problem: string } {
  const checked = sensorOptionsSchema.safeParse(options);
  if (checked.success) return { ok: true, options: checked.data };
  const issue = checked.error.issues[0]!;
  if (issue.code === "unrecognized_keys") return { ok: false, problem: `unknown sensor option ${issue.keys.join(", ")}` };
  return { ok: false, problem: `sensor option ${issue.path.join(".")}: ${issue.message}` };
}

/** The TOML name of each option the config file's [sensor] table sets. */
const CONFIG_NAMES = {
  stdio_fd_max: "stdioFdMax",
  skip_programs: "skipCandidates",
  detection_ring_bytes: "detectionRingBytes",
  process_ring_bytes: "processRingBytes",
  relay_ring_bytes: "relayRingBytes",
  reader_realtime: "readerRealtime",
  event_loop_realtime: "eventLoopRealtime",
  compat_syscalls: "compatSyscalls",
} as const satisfies Record<string, keyof typeof fields>;

/** The config file's [sensor] table: the options above, under their TOML names, with the daemon's defaults. */
export const sensorConfigSchema = z
  .object({
    stdio_fd_max: fields.stdioFdMax.default(DEFAULT_STDIO_FD_MAX),
    skip_programs: fields.skipCandidates.default([]),
    detection_ring_bytes: fields.detectionRingBytes.optional(),
    process_ring_bytes: fields.processRingBytes.optional(),
    relay_ring_bytes: fields.relayRingBytes.optional(),
    reader_realtime: fields.readerRealtime.default(true),
    event_loop_realtime: fields.eventLoopRealtime.default(true),
    compat_syscalls: fields.compatSyscalls.default(false),
  } satisfies Record<keyof typeof CONFIG_NAMES, z.ZodTypeAny>)
  .strict();
export type SensorConfig = z.infer<typeof sensorConfigSchema>;

/** The options a validated [sensor] table stands for. */
export function sensorOptionsFromConfig(config: SensorConfig): SensorOptions {
  const options: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(config)) {
    if (value !== undefined) options[CONFIG_NAMES[name as keyof typeof CONFIG_NAMES]] = value;
  }
  return options;
}
