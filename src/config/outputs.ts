/**
 * The outputs a configuration asks for, as one OutputSet: stdout (JSON lines, or the pretty
 * format on a terminal), a rotating file, a webhook, syslog, and the events themselves on
 * stdout when asked. Nothing is opened here; the pipeline opens the set, so an output that
 * cannot work fails the start (or a reload), never later.
 */
import type { Config } from "./config.js";
import type { FindingOutput } from "../output/output.js";
import { OutputSet } from "../output/output-set.js";
import { JsonLinesOutput } from "../output/json-lines.js";
import { PrettyOutput } from "../output/pretty.js";
import { FileOutput } from "../output/file.js";
import { join } from "node:path";
import { SpooledWebhookOutput, WebhookOutput } from "../output/webhook.js";
import { DEFAULT_SPOOL_DIR, type SpoolOptions } from "../output/spool.js";
import { SyslogOutput } from "../output/syslog.js";
import { NatsOutput } from "../output/nats.js";
import { warn } from "../service/log.js";
import { EventLineOutput, taggedEventLine, type EventOutput } from "../output/event-lines.js";

/** The keys that are set: the outputs' own defaults stand for the rest. */
function defined<T extends Record<string, unknown>>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export function buildOutputs(config: Config, stdout: NodeJS.WriteStream = process.stdout): OutputSet {
  const { output } = config;
  const outputs: FindingOutput[] = [];
  const stdoutFormat = output.stdout === "auto" ? (stdout.isTTY ? "pretty" : "json") : output.stdout;
  if (stdoutFormat === "json") outputs.push(new JsonLinesOutput({ stream: stdout, name: "stdout" }));
  if (stdoutFormat === "pretty") outputs.push(new PrettyOutput({ stream: stdout, name: "stdout" }));
  if (output.file !== undefined) {
    const f = output.file;
    outputs.push(new FileOutput({ path: f.path, ...defined({ maxBytes: f.max_bytes, keep: f.keep }) }));
  }
  if (output.webhook !== undefined) {
    const w = output.webhook;
    // With a spool the backlog waits on disk, retried until the spool's bounds: max_queue and
    // max_attempts are the memory queue's bounds and do not apply.
    outputs.push(
      output.spool !== undefined
        ? new SpooledWebhookOutput({ url: w.url, ...defined({ headers: w.headers, maxBatch: w.max_batch, timeoutMs: w.timeout_ms }), spool: spoolOptions(output.spool, "webhook") })
        : new WebhookOutput({
            url: w.url,
            ...defined({ headers: w.headers, maxQueue: w.max_queue, maxBatch: w.max_batch, timeoutMs: w.timeout_ms, maxAttempts: w.max_attempts }),
          }),
    );
  }
  if (output.syslog !== undefined) {
    const s = output.syslog;
    const tls = defined({ caFile: s.tls_ca_file, certFile: s.tls_cert_file, keyFile: s.tls_key_file, serverName: s.tls_server_name });
    outputs.push(
      new SyslogOutput({
        host: s.host,
        protocol: s.protocol,
        facility: s.facility,
        ...defined({ port: s.port }),
        ...(Object.keys(tls).length > 0 ? { tls } : {}),
      }),
    );
  }
  if (output.nats !== undefined) outputs.push(natsOutput(output.nats, output.spool));
  const eventOutputs: EventOutput[] = [];
  if (output.events) eventOutputs.push(new EventLineOutput({ name: "events", stream: stdout, format: taggedEventLine }));
  // Credentials in command lines never leave the host unless the config says they may.
  return new OutputSet(outputs, eventOutputs, { redactSecrets: output.redact_secrets });
}

function natsOutput(nats: NonNullable<Config["output"]["nats"]>, spool: Config["output"]["spool"]): NatsOutput {
  const tls = defined({ caFile: nats.tls_ca_file, certFile: nats.tls_cert_file, keyFile: nats.tls_key_file });
  return new NatsOutput({
    servers: nats.servers,
    stream: nats.stream,
    subjectPrefix: nats.subject_prefix,
    createStream: nats.create_stream,
    ackTimeoutMs: nats.ack_timeout_ms,
    ...defined({ hostId: nats.host_id, credsFile: nats.creds_file }),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    spool: spoolOptions(spool, "nats"),
    onWarning: (message) => warn(message),
  });
}

/**
 * Each durable output has a spool of its own, a subfolder of the configured one named after
 * it: a spool has one reader, and one output's acknowledgement must not remove a finding
 * another output has not delivered yet.
 */
function spoolOptions(spool: Config["output"]["spool"], output: string): SpoolOptions & { dir: string } {
  return {
    ...defined({
      maxBytes: spool?.max_bytes,
      maxAgeMs: spool?.max_age_s !== undefined ? spool.max_age_s * 1000 : undefined,
      fsyncIntervalMs: spool?.fsync_interval_ms,
    }),
    dir: join(spool?.dir ?? DEFAULT_SPOOL_DIR, output),
    onTrouble: (problem) => warn(problem),
  };
}
