/**
 * Batches of findings POSTed to an HTTP(S) endpoint.
 *
 * Body: a JSON array of finding objects, `content-type: application/json` — the shape a
 * generic webhook receiver (a SIEM's HTTP collector, Vector's or Logstash's http input)
 * parses without a special codec.
 *
 * Queue: LineOutput's, bounded by findings: at most `maxQueue` wait (plus the batch in
 * flight), at most `maxBatch` to a request. When it is full a finding is dropped and counted
 * as `queue_full` by rank (line-output.ts): the lowest severity first, the newest among
 * equals, never one of an incident already taken while another can go; during an outage the
 * findings kept are the first ones of an incident, and what is delivered stays in order.
 *
 * Retry: network errors, timeouts, 5xx and 429 are retried with exponential backoff and
 * jitter (a Retry-After longer than the backoff is honoured, up to `backoff.maxMs`), at
 * most `maxAttempts` attempts per batch; then the batch is dropped as `retries_exhausted`.
 * Any other status (4xx, 3xx: redirects are not followed, so credentials never travel to
 * another host) drops the batch at once as `http_rejected`: sending it again cannot help.
 *
 * With a spool (SpooledWebhookOutput below) the queue is on disk instead: every finding is
 * spooled before write() returns and leaves the spool only on a 2xx, so an outage or a
 * restart costs a delay, not findings, up to the spool's bounds.
 *
 * Response: only the status counts. At most MAX_RESPONSE_BODY_BYTES of the body are read
 * (and discarded), within the request's `timeoutMs`; a longer or slower body has its
 * connection dropped, so a hostile or broken server costs neither memory nor time.
 */
import type { Finding } from "../engine/finding.js";
import { LineOutput, type LineProgress, type QueuedLine } from "./line-output.js";
import { EXIT_BAD_INPUT, EXIT_REFUSED, OptionError, SockeyeError } from "../errors.js";
import { OutputError, describeError, encodeFinding, sleep, type OutputDropReason } from "./output.js";
import { SpooledOutput, type SpooledFinding } from "./spooled-output.js";
import type { SpoolOptions } from "./spool.js";

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

/** Enough for any receiver's acknowledgement; reading to the end lets keep-alive reuse the connection. */
const MAX_RESPONSE_BODY_BYTES = 64 * 1024;

/** An HTTP token (RFC 9110, 5.6.2). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What fetch() sends as a header value: tab, visible ASCII and the bytes 0x80-0xFF. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A batch's fate; "abandoned" when a flush gave up on it (and counted it) first. */
type Outcome = "delivered" | "abandoned" | { reason: Extract<OutputDropReason, "http_rejected" | "retries_exhausted">; error: string };

/** One attempt's answer: a 2xx, or why not (a status, or no response at all). */
type Attempt = { ok: true } | { ok: false; status?: number; error: string; retryAfterMs?: number };

/** The HTTP side both webhook outputs share: the checked URL and headers, one POST at a time. */
class WebhookClient {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number;

  constructor(options: Pick<WebhookOutputOptions, "url" | "headers" | "timeoutMs">) {
    this.url = options.url;
    // Lower-cased, so a configured "Content-Type" replaces ours instead of joining it.
    const configured = Object.entries(options.headers ?? {}).map(([key, value]) => [key.toLowerCase(), value] as const);
    this.headers = { "user-agent": "sockeye", ...Object.fromEntries(configured), "content-type": "application/json" };
    this.timeoutMs = positiveInteger("timeoutMs", options.timeoutMs ?? 10_000);
  }

  /** Checks the URL and headers; the server itself may come up later. */
  check(name: string): void {
    let url: URL;
    try {
      url = new URL(this.url);
    } catch {
      // The URL is not echoed: its query string may hold a token.
      throw new OutputError(name, "url is not a valid URL", EXIT_BAD_INPUT);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new OutputError(name, `url must be http:// or https://, not ${url.protocol}//`, EXIT_BAD_INPUT);
    if (url.username !== "" || url.password !== "")
      throw new OutputError(name, "url must not carry credentials; send them in an authorization header", EXIT_BAD_INPUT);
    for (const [header, value] of Object.entries(this.headers)) {
      if (!HEADER_NAME.test(header)) throw new OutputError(name, `header ${JSON.stringify(header)}: not a valid header name`, EXIT_BAD_INPUT);
      // Named, not echoed: the value may be a token.
      if (!HEADER_VALUE.test(value)) {
        throw new OutputError(
          name,
          `header ${header}: its value has a character HTTP cannot carry (a newline or other control character, or one past U+00FF)`,
          EXIT_BAD_INPUT,
        );
      }
    }
  }

  async post(body: string, signal: AbortSignal): Promise<Attempt> {
    try {
      const response = await fetch(this.url, {
        method: "POST",
        headers: this.headers,
        body,
        redirect: "manual",
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      await discardBody(response);
      if (response.status >= 200 && response.status < 300) return { ok: true };
      const error = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
      return { ok: false, status: response.status, error, retryAfterMs: parseRetryAfter(response.headers.get("retry-after")) };
    } catch (failure) {
      // AbortSignal.timeout's DOMException reads "23 The operation was aborted due to timeout".
      return { ok: false, error: (failure as Error).name === "TimeoutError" ? `no response within ${this.timeoutMs} ms` : describeError(failure) };
    }
  }
}

/** The line queue's lines are encoded findings; a chunk of them is one request's batch. */
export class WebhookOutput extends LineOutput {
  private readonly client: WebhookClient;
  private readonly maxAttempts: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;

  constructor(options: WebhookOutputOptions) {
    super("webhook", options.name ?? "webhook", {
      maxLines: positiveInteger("maxQueue", options.maxQueue ?? 10_000),
      maxChunk: positiveInteger("maxBatch", options.maxBatch ?? 500),
      // Bounded by findings, not bytes: the queue's bound is the option users set.
      maxBufferedBytes: Number.POSITIVE_INFINITY,
    });
    this.client = new WebhookClient(options);
    this.maxAttempts = positiveInteger("maxAttempts", options.maxAttempts ?? 5);
    this.initialBackoffMs = options.backoff?.initialMs ?? 500;
    this.maxBackoffMs = options.backoff?.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  get timeoutMs(): number {
    return this.client.timeoutMs;
  }

  /** Checks the URL and headers; the server itself may come up later (retries cover it). */
  protected acquire(): void {
    this.client.check(this.name);
  }

  /** Nothing of its own to release: connections belong to fetch()'s global pool. */
  protected release(): void {}

  protected formatLine(finding: Finding): string | undefined {
    return encodeFinding(finding, this.counters);
  }

  protected async deliver(lines: readonly QueuedLine[], progress: LineProgress, signal: AbortSignal): Promise<void> {
    const outcome = await this.post(`[${lines.map((line) => line.text).join(",")}]`, signal);
    if (outcome === "delivered") progress.delivered(lines.length);
    else if (outcome !== "abandoned") progress.failed(lines.length, outcome.error, outcome.reason);
  }

  /** One batch, retried as the header comment says; `signal` aborts when a flush gives up. */
  private async post(body: string, signal: AbortSignal): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      const answer = await this.client.post(body, signal);
      if (answer.ok) return "delivered";
      const { status, error } = answer;
      if (status !== undefined && status !== 429 && status < 500) return { reason: "http_rejected", error };
      if (signal.aborted) return "abandoned";
      if (attempt >= this.maxAttempts) return { reason: "retries_exhausted", error };
      this.counters.retries++;
      this.counters.lastError = error;
      await sleep(this.backoffMs(attempt, answer.retryAfterMs), signal);
    }
  }

  /** Exponential, with "equal jitter": half the delay fixed, half random, so retries spread. */
  private backoffMs(attempt: number, retryAfterMs: number | undefined): number {
    const exponential = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (attempt - 1));
    const jittered = exponential / 2 + this.random() * (exponential / 2);
    return Math.min(this.maxBackoffMs, Math.max(jittered, retryAfterMs ?? 0));
  }
}

/**
 * Statuses that refuse the batch itself (its syntax, size, type or content): sending the
 * same bytes again cannot help, and retrying would hold up everything behind them.
 */
const BATCH_REFUSED = new Set([400, 413, 415, 422]);

export interface SpooledWebhookOutputOptions extends Omit<WebhookOutputOptions, "maxQueue" | "maxAttempts" | "backoff" | "random"> {
  spool: SpoolOptions & { dir: string };
}

/**
 * The webhook through the on-disk spool: at-least-once. A batch leaves the spool only on a
 * 2xx. Network errors, timeouts, 5xx, 429, and also 3xx, 401, 403, 404 (a receiver or a
 * credential being fixed) are retried with the spool's backoff until the spool's maximum
 * age, so the backlog waits on disk meanwhile; only a status that refuses the batch itself
 * (400, 413, 415, 422) drops it, counted as http_rejected. A batch whose 2xx was lost is sent
 * again: receivers deduplicate on each finding's event.id.
 */
export class SpooledWebhookOutput extends SpooledOutput {
  private readonly client: WebhookClient;

  constructor(options: SpooledWebhookOutputOptions) {
    super("webhook", options.name ?? "webhook", options.spool, positiveInteger("maxBatch", options.maxBatch ?? 500));
    this.client = new WebhookClient(options);
  }

  protected connect(): Promise<void> {
    this.client.check(this.name);
    return Promise.resolve();
  }

  protected async send(findings: readonly SpooledFinding[], signal: AbortSignal): Promise<number> {
    const body = Buffer.concat([Buffer.from("["), ...findings.flatMap((finding, index) => (index === 0 ? [finding.json] : [COMMA, finding.json])), Buffer.from("]")]);
    const answer = await this.client.post(body.toString(), signal);
    if (answer.ok) return findings.length;
    if (answer.status !== undefined && BATCH_REFUSED.has(answer.status)) {
      this.refused("http_rejected", findings.length, answer.error);
      return findings.length;
    }
    throw new SockeyeError(answer.error, "SOCKEYE_OUTPUT_DELIVERY", EXIT_REFUSED);
  }

  protected disconnect(): Promise<void> {
    return Promise.resolve();
  }
}

const COMMA = Buffer.from(",");

/**
 * Reads a response body to its end, so the keep-alive connection can carry the next batch,
 * unless it runs past MAX_RESPONSE_BODY_BYTES or the request's deadline aborts it: then the
 * connection is dropped instead. Never throws: the status already said what became of the batch.
 */
async function discardBody(response: Response): Promise<void> {
  if (response.body === null) return;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      bytes += value.byteLength;
      if (bytes > MAX_RESPONSE_BODY_BYTES) return await reader.cancel();
    }
  } catch {
    // Aborted at the deadline: undici has closed the connection already.
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
  if (!(Number.isInteger(value) && value > 0)) throw new OptionError(`${option} must be a positive integer, got ${value}`);
  return value;
}
