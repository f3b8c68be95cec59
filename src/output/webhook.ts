/**
 * Batches of findings POSTed to an HTTP(S) endpoint.
 *
 * Body: a JSON array of finding objects, `content-type: application/json` — the shape a
 * generic webhook receiver (a SIEM's HTTP collector, Vector's or Logstash's http input)
 * parses without a special codec.
 *
 * Queue: at most `maxQueue` findings wait (plus the batch in flight). When it is full the
 * NEWEST findings are dropped and counted as `queue_full`: during an outage the findings
 * kept are the first ones of an incident, and what is delivered stays in order.
 *
 * Retry: network errors, timeouts, 5xx and 429 are retried with exponential backoff and
 * jitter (a Retry-After longer than the backoff is honoured, up to `backoff.maxMs`), at
 * most `maxAttempts` attempts per batch; then the batch is dropped as `retries_exhausted`.
 * Any other status (4xx, 3xx: redirects are not followed, so credentials never travel to
 * another host) drops the batch at once as `http_rejected`: sending it again cannot help.
 */
import type { Finding } from "../engine/finding.js";
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  IdleWaiters,
  OutputCounters,
  OutputError,
  describeError,
  encodeFinding,
  sleep,
  type FindingOutput,
  type FlushResult,
  type OutputDropReason,
  type OutputStats,
} from "./output.js";

export interface WebhookBackoff {
  /** Delay before the first retry, before jitter (default 500 ms). */
  initialMs?: number;
  /** Ceiling of any delay, Retry-After included (default 30 s). */
  maxMs?: number;
}

export interface WebhookOutputOptions {
  /** http:// or https://; credentials go in `headers`, not in the URL. */
  url: string;
  /** Defaults to "webhook". */
  name?: string;
  /** Extra request headers, e.g. `{ authorization: "Bearer …" }`. */
  headers?: Record<string, string>;
  /** Findings waiting, beyond the batch in flight (default 10 000). */
  maxQueue?: number;
  /** Findings per request (default 500). */
  maxBatch?: number;
  /** Per request, response body included (default 10 s). */
  timeoutMs?: number;
  /** Attempts per batch, the first included (default 5). */
  maxAttempts?: number;
  backoff?: WebhookBackoff;
  /** Jitter source in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

interface Flight {
  count: number;
  /** Counted as flush_timeout already; its late outcome must not be counted again. */
  abandoned: boolean;
  readonly controller: AbortController;
}

type Outcome = { delivered: true } | { delivered: false; reason: OutputDropReason; error: string };

export class WebhookOutput implements FindingOutput {
  readonly type = "webhook";
  readonly name: string;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly maxQueue: number;
  private readonly maxBatch: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private readonly counters: OutputCounters;
  private readonly idleWaiters = new IdleWaiters();
  /** Encoded findings, oldest first. */
  private queue: string[] = [];
  private flight: Flight | undefined;
  private state: "new" | "open" | "closed" = "new";

  constructor(options: WebhookOutputOptions) {
    this.name = options.name ?? "webhook";
    this.url = options.url;
    // Lower-cased, so a configured "Content-Type" replaces ours instead of joining it.
    const configured = Object.entries(options.headers ?? {}).map(([key, value]) => [key.toLowerCase(), value]);
    this.headers = { "user-agent": "sockeye", ...Object.fromEntries(configured), "content-type": "application/json" };
    this.maxQueue = positiveInteger("maxQueue", options.maxQueue ?? 10_000);
    this.maxBatch = positiveInteger("maxBatch", options.maxBatch ?? 500);
    this.timeoutMs = positiveInteger("timeoutMs", options.timeoutMs ?? 10_000);
    this.maxAttempts = positiveInteger("maxAttempts", options.maxAttempts ?? 5);
    this.initialBackoffMs = options.backoff?.initialMs ?? 500;
    this.maxBackoffMs = options.backoff?.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
    this.counters = new OutputCounters(this.name, this.type);
  }

  /** Checks the URL and headers; the server itself may come up later (retries cover it). */
  async open(): Promise<void> {
    let url: URL;
    try {
      url = new URL(this.url);
    } catch {
      // The URL is not echoed: its query string may hold a token.
      throw new OutputError(this.name, "url is not a valid URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new OutputError(this.name, `url must be http:// or https://, not ${url.protocol}//`);
    if (url.username !== "" || url.password !== "")
      throw new OutputError(this.name, "url must not carry credentials; send them in an authorization header");
    try {
      new Headers(this.headers);
    } catch (error) {
      throw new OutputError(this.name, `bad header: ${describeError(error)}`);
    }
    this.state = "open";
  }

  write(findings: readonly Finding[]): void {
    if (this.state !== "open") {
      this.counters.drop("closed", findings.length);
      return;
    }
    for (const finding of findings) {
      if (this.queue.length >= this.maxQueue) {
        this.counters.drop("queue_full", 1);
        continue;
      }
      const json = encodeFinding(finding, this.counters);
      if (json !== undefined) this.queue.push(json);
    }
    void this.pump();
  }

  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    if (await this.idleWaiters.wait(() => this.idle(), timeoutMs)) return { complete: true, abandoned: 0 };
    const abandoned = this.depth();
    this.queue = [];
    if (this.flight !== undefined) {
      this.flight.abandoned = true;
      this.flight.controller.abort();
    }
    this.counters.drop("flush_timeout", abandoned);
    return { complete: false, abandoned };
  }

  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<FlushResult> {
    const result = await this.flush(timeoutMs);
    this.state = "closed";
    return result;
  }

  stats(): OutputStats {
    return this.counters.snapshot(this.depth());
  }

  private depth(): number {
    return this.queue.length + (this.flight !== undefined && !this.flight.abandoned ? this.flight.count : 0);
  }

  private idle(): boolean {
    return this.queue.length === 0 && (this.flight === undefined || this.flight.abandoned);
  }

  private async pump(): Promise<void> {
    if (this.flight !== undefined) return;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      const flight: Flight = { count: batch.length, abandoned: false, controller: new AbortController() };
      this.flight = flight;
      const outcome = await this.deliver(`[${batch.join(",")}]`, flight);
      if (!flight.abandoned) {
        if (outcome.delivered) this.counters.written += batch.length;
        else this.counters.drop(outcome.reason, batch.length, outcome.error);
      }
      this.flight = undefined;
    }
    this.idleWaiters.wake();
  }

  private async deliver(body: string, flight: Flight): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      let error: string;
      let retryAfterMs: number | undefined;
      try {
        const response = await fetch(this.url, {
          method: "POST",
          headers: this.headers,
          body,
          redirect: "manual",
          signal: AbortSignal.any([flight.controller.signal, AbortSignal.timeout(this.timeoutMs)]),
        });
        // Read to the end so the keep-alive connection can carry the next batch.
        await response.arrayBuffer();
        if (response.status >= 200 && response.status < 300) return { delivered: true };
        error = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
        if (response.status !== 429 && response.status < 500) return { delivered: false, reason: "http_rejected", error };
        retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      } catch (failure) {
        error = describeError(failure);
      }
      if (flight.abandoned) return { delivered: false, reason: "flush_timeout", error };
      if (attempt >= this.maxAttempts) return { delivered: false, reason: "retries_exhausted", error };
      this.counters.retries++;
      this.counters.lastError = error;
      await sleep(this.backoffMs(attempt, retryAfterMs), flight.controller.signal);
    }
  }

  /** Exponential, with "equal jitter": half the delay fixed, half random, so retries spread. */
  private backoffMs(attempt: number, retryAfterMs: number | undefined): number {
    const exponential = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (attempt - 1));
    const jittered = exponential / 2 + this.random() * (exponential / 2);
    return Math.min(this.maxBackoffMs, Math.max(jittered, retryAfterMs ?? 0));
  }
}

/** Retry-After as delay-seconds or an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function positiveInteger(option: string, value: number): number {
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${option} must be a positive integer, got ${value}`);
  return value;
}
