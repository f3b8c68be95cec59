// Types of bench/daemon.mjs for the TypeScript that imports it (test/kernel/harness.ts).
import type { ChildProcess } from "node:child_process";

export const CLI: string;

/** The daemon's `stopped` line: the fields tests and benches read. */
export interface StoppedLine {
  signal: string;
  kernel: Record<string, { lost: number; errors: number }>;
  eventLoopLagMs: { p50: number; p99: number; max: number };
  workersReplaced?: number;
  engine: { eventsByKind: Record<string, number> };
  [field: string]: unknown;
}

export interface Daemon {
  child: ChildProcess;
  /** Resolves once the daemon logged "sensor ready"; rejects when it exits before. */
  ready: Promise<void>;
  stdout(): string;
  stderr(): string;
  /** Every stdout line parsed as JSON (a `--format json` finding), with its arrival time. */
  findings<F = unknown>(): { receivedMs: number; finding: F }[];
  /** Resolves when stderr has a line matching `pattern` (after `from` characters). */
  waitFor(pattern: RegExp, from?: number, timeoutMs?: number): Promise<void>;
  /** SIGTERM, then the exit code; killed when it does not stop within 15 s. */
  stop(): Promise<number | null>;
  stopped(): StoppedLine | undefined;
}

export function startDaemon(args?: string[], env?: NodeJS.ProcessEnv): Daemon;
export function stoppedLine(stderr: string): StoppedLine | undefined;
export function peakRssMb(pid: number): number;
