/**
 * Loads sockeye.node through `bindings` (build/Release, or wherever else a build put it), the
 * one place that does. A load failure becomes a SensorError that says what to do, instead of
 * bindings' list of tried paths or a bare dlopen message.
 */
import bindings from "bindings";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { SensorError } from "./errors.js";
import type { SensorOptions } from "./options.js";

export interface NativeCandidate {
  capability: string;
  program: string;
  live: boolean;
  reason: string;
}

export interface NativeFeatures {
  kernelRelease: string;
  btf: boolean;
  lsmList: string;
  bpfLsm: boolean;
  lockdown: string;
  tracefsPath: string;
  capBpf: boolean;
  capPerfmon: boolean;
  capSysAdmin: boolean;
  actions: string[];
  /**
   * Whether the kernel runs ia32 syscalls (int $0x80, 32-bit binaries), found by trying one
   * in a child process: some builds of one kernel config refuse them at run time.
   */
  ia32Syscalls: "taken" | "refused" | "unknown" | "not-x86";
  /**
   * BPF helpers the programs prefer where the kernel has them (the task_access capability
   * says which variant runs): "unknown" when the probe itself failed (no privileges).
   */
  helpers: Record<"bpf_get_current_task_btf" | "bpf_task_pt_regs", "yes" | "no" | "unknown">;
}

/**
 * The addon reads the validated options by their own names (native/sensor.cc), and the shell
 * names whose exec wakes the reader (src/sensor/shells.ts), which are not a user's option.
 */
export type NativeOptions = Omit<SensorOptions, "iteratorQueueLimit"> & { wakeupShells?: readonly string[] };

export interface SensorScheduling {
  /** "SCHED_RR 1", "normal" or "normal (SCHED_RR refused: …)". */
  reader: string;
  /** "normal" (not managed), "SCHED_RR 1 while calm", "normal: busy (N times so far)", "normal (SCHED_RR refused: …)". */
  eventLoop: string;
}

export interface NativeSensor {
  start(): void;
  close(): void;
  /** Flat: per hook (layout.ts HOOKS order) emitted, lost, errors. */
  counters(): number[];
  /** Flat: per ring (layout.ts RINGS order) the drops per reason (DROP_REASONS order). */
  ringDrops(): number[];
  /** [exec denied, exec killed, dup killed, signal failed] by the enforcing programs. */
  enforceActions(): number[];
  report(): NativeCandidate[];
  /** Per attached BPF program, what the attach check found: problem "" while attached. */
  checkAttached(): { program: string; problem: string }[];
  features(): NativeFeatures | null;
  ref(): void;
  unref(): void;
  /** Records dropped because the queue to JS was full once close had begun. */
  droppedAtClose(): number;
  /** How the reader and event loop threads run; null before start(). */
  scheduling(): SensorScheduling | null;
}

export interface NativeProbe {
  features: NativeFeatures;
  candidates: NativeCandidate[];
  error: { code: string; errno: number; message: string } | null;
}

type Layout = Record<string, Record<string, number>>;

export interface NativeBinding {
  Sensor: new (options: NativeOptions, onBatch: (batch: ArrayBuffer, records: number, waitedMs: number) => void) => NativeSensor;
  probe(options: NativeOptions): NativeProbe;
  setErrorClass(cls: typeof SensorError): void;
  layout: Layout;
  /** The BPF object's .rodata variables (from its BTF) and those the loader writes before each load. */
  kernelSettings(): { rodata: string[]; written: string[] };
  /** SIGKILL through a pidfd, only while `pid` is the process started at `startTicks` (USER_HZ). */
  killVerified(pid: number, startTicks: number): string;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

let cached: NativeBinding | undefined;

/** moduleRoot: the package folder whose build bindings searches (this package's by default). */
export function loadBinding(moduleRoot = packageRoot): NativeBinding {
  if (cached && moduleRoot === packageRoot) return cached;
  let binding: NativeBinding;
  try {
    binding = bindings({ bindings: "sockeye.node", module_root: moduleRoot }) as NativeBinding;
  } catch (err) {
    // bindings attaches the paths it tried when it found no file at all.
    if ((err as { tries?: unknown }).tries) {
      const path = join(moduleRoot, "build", "Release", "sockeye.node");
      throw new SensorError(
        `the native addon is not built (${path} is missing): run 'npm run build' in ${moduleRoot} (a fresh machine needs 'bash scripts/setup.sh' as root first)`,
        "NO_BINDING",
      );
    }
    const why = (err as Error).message.split("\n")[0];
    throw new SensorError(
      `the native addon in ${moduleRoot} failed to load (${why}): rebuild it with 'npm run build' for this Node (${process.version})`,
      "BINDING_LOAD_FAILED",
    );
  }
  binding.setErrorClass(SensorError);
  if (moduleRoot === packageRoot) cached = binding;
  return binding;
}
