/**
 * Several outputs at once: every batch of findings goes to each finding output, every batch
 * of events to each event output. Opening is all or nothing, so a daemon never runs with
 * part of the outputs its configuration asked for.
 */
import type { Finding } from "../engine/finding.js";
import type { SensorEvent } from "../sensor/events.js";
import type { EventOutput } from "./event-lines.js";
import { DEFAULT_FLUSH_TIMEOUT_MS, type FindingOutput, type FlushResult, type OutputStats, type StateRecord } from "./output.js";
import { redactSecrets } from "./redact.js";

export interface OutputSetOptions {
  /** Cut credentials out of findings' command lines before any output gets them (redact.ts). */
  redactSecrets?: boolean;
}
import { OptionError } from "../errors.js";

export class OutputSet {
  readonly outputs: readonly FindingOutput[];
  readonly eventOutputs: readonly EventOutput[];
  private readonly all: readonly (FindingOutput | EventOutput)[];
  private readonly redact: boolean;
  /** Secrets cut out of findings so far. */
  redacted = 0;

  constructor(outputs: readonly FindingOutput[], eventOutputs: readonly EventOutput[] = [], options: OutputSetOptions = {}) {
    this.redact = options.redactSecrets ?? false;
    const names = new Set<string>();
    for (const output of [...outputs, ...eventOutputs]) {
      // Names label metrics and stats: two outputs with one name would merge their counts.
      if (names.has(output.name)) throw new OptionError(`two outputs share the name ${JSON.stringify(output.name)}: give each its own name`);
      names.add(output.name);
    }
    this.outputs = [...outputs];
    this.eventOutputs = [...eventOutputs];
    this.all = [...outputs, ...eventOutputs];
  }

  /** Every output's name, finding outputs first. */
  get names(): string[] {
    return this.all.map((output) => output.name);
  }

  /**
   * Opens every output, in order; on the first failure closes those already open and
   * rejects with that output's error (an OutputError naming it).
   */
  async open(): Promise<void> {
    const opened: (FindingOutput | EventOutput)[] = [];
    for (const output of this.all) {
      try {
        await output.open();
      } catch (error) {
        await Promise.all(opened.map((done) => done.close(0)));
        throw error;
      }
      opened.push(output);
    }
  }

  write(findings: readonly Finding[]): void {
    if (findings.length === 0) return;
    // Once per batch, whatever the number of outputs.
    const delivered = this.redact ? findings.map((f) => this.redactOne(f)) : findings;
    for (const output of this.outputs) output.write(delivered);
  }

  private redactOne(finding: Finding): Finding {
    const r = redactSecrets(finding);
    this.redacted += r.count;
    return r.value;
  }

  /** To the durable outputs only (those with writeState). */
  writeState(record: StateRecord): void {
    for (const output of this.outputs) output.writeState?.(record);
  }

  writeEvents(events: readonly SensorEvent[]): void {
    for (const output of this.eventOutputs) output.write(events);
  }

  /** Flushes all in parallel, under one deadline; results by output name. */
  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<Record<string, FlushResult>> {
    return this.each((output) => output.flush(timeoutMs));
  }

  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<Record<string, FlushResult>> {
    return this.each((output) => output.close(timeoutMs));
  }

  stats(): OutputStats[] {
    return this.all.map((output) => output.stats());
  }

  private async each(action: (output: FindingOutput | EventOutput) => Promise<FlushResult>): Promise<Record<string, FlushResult>> {
    const results = await Promise.all(this.all.map(action));
    return Object.fromEntries(this.all.map((output, index) => [output.name, results[index]!]));
  }
}
