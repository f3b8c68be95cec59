/**
 * What the daemon knows about itself at one instant: the input of the Prometheus endpoint
 * and of the periodic stats line. The daemon assembles it from pipeline.stats() (engine and
 * output totals) and sensor.counters(); nothing here reads a kernel.
 */
import type { EngineStats } from "../engine/engine.js";
import type { HookCounters } from "../sensor/sensor.js";
import type { OutputStats } from "../output/output.js";

export interface StatsSnapshot {
  /** When it was taken (Date.now()); rates are computed between two snapshots. */
  timeMs: number;
  engine: EngineStats;
  /** Sensor.counters(): records emitted, lost (ring full) and helper errors, per hook. */
  kernel: Readonly<Record<string, HookCounters>>;
  outputs: readonly OutputStats[];
  /** Pipeline.stats().backlogEvents: events waiting for their slice of the event loop. */
  backlogEvents?: number;
  /** The daemon's own health as a process; absent outside `sockeye run`. */
  daemon?: DaemonProcessStats;
}

export interface DaemonProcessStats {
  /** How long batches of events waited for the event loop since the daemon was ready (each stamped when the reader queued it): p50, p99 and max, in ms; zeros before the first. */
  eventLoopLagMs: { p50: number; p99: number; max: number };
  /** Host-look workers replaced because a look hung past its bound (a file on a hung mount) or the worker failed (out of its heap limit). */
  workersReplaced: number;
}
