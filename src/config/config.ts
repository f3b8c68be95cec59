/**
 * The daemon's configuration: a TOML file (config/sockeye.example.toml documents every key)
 * and command-line flags on top of it; flags win. Validated with zod, strictly: an unknown
 * key or a bad value is a ConfigError whose message is one line naming the key.
 */
import { parse as parseToml, TomlError } from "smol-toml";
import { z } from "zod";
import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";
import { FileReadError, readRegularText } from "../service/regular-file.js";
import { sensorConfigSchema } from "../sensor/options.js";
import { SYSLOG_FACILITIES, SYSLOG_PROTOCOLS, type SyslogFacility } from "../output/syslog.js";
import { enforceConfigSchema } from "../enforce/config.js";
import { DEFAULT_TRC101_PROFILE, TRC101_PROFILES } from "../rules/trc-101-stdio-over-socket.js";

export class ConfigError extends SockeyeError {
  constructor(message: string) {
    super(message, "SOCKEYE_CONFIG", EXIT_BAD_INPUT);
  }
}

/** Header names that carry a credential: Authorization and its kin, API keys, tokens, cookies. */
const CREDENTIAL_HEADER = /^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|secret|password/i;

/**
 * True when a webhook would carry a credential header in clear over a network. Loopback is
 * exempt: its traffic never leaves the host, and reading it takes the privileges that could
 * read the config anyway.
 */
function sendsCredentialsInClear(url: string, headers: Record<string, string> | undefined): boolean {
  if (!url.startsWith("http://") || headers === undefined) return false;
  if (!Object.keys(headers).some((name) => CREDENTIAL_HEADER.test(name))) return false;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return !(host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host));
}

/** What in a config is a secret: a reader of the file could act with it. */
function secretKeys(input: ConfigInput): string[] {
  // Read before validation: the file's shape is not checked yet.
  const headers: unknown = input.output?.webhook?.headers;
  return typeof headers === "object" && headers !== null && Object.keys(headers).length > 0 ? ["output.webhook.headers"] : [];
}

const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):\d{1,5}$/, 'must be "host:port", e.g. "127.0.0.1:9469"')
  .refine((value) => Number(value.slice(value.lastIndexOf(":") + 1)) <= 65535, "the port must be from 0 to 65535");

const allowEntry = z
  .object({
    label: z.string().min(1),
    executable: z.string().min(1).optional(),
    name: z.string().min(1).optional(),
    parent_name: z.string().min(1).optional(),
  })
  .strict()
  .refine((e) => e.executable !== undefined || e.name !== undefined || e.parent_name !== undefined, {
    message: "needs at least one of executable, name, parent_name",
  });

/** A program allowed to relay shells by design (RELAY-001): a remote-access or job agent. */
const relayAgentEntry = z
  .object({
    executable: z.string().regex(/^\//, "must be an absolute path, e.g. /usr/bin/runner-agent"),
    unit: z.string().min(1).optional(),
    reason: z.string().min(1),
  })
  .strict();

export const configSchema = z
  .object({
    sensor: sensorConfigSchema.default({}),
    rules: z
      .object({
        paths: z.array(z.string().min(1)).default([]),
        lenient: z.boolean().default(false),
        shipped_elastic: z.boolean().default(true),
        fold: z.boolean().default(true),
        /** TRC-101: "precise" reports when a shell runs on the socket; "tracee" every trigger, as Tracee does. */
        profile: z.enum(TRC101_PROFILES).default(DEFAULT_TRC101_PROFILE),
        /** RELAY-002, the command relay: off by default (build and management agents have its shape). */
        command_relay: z.boolean().default(false),
        /** Added to TRC-101's default allowlist of inetd-style services. */
        trc101_allow: z.array(allowEntry).default([]),
        /** Programs RELAY-001 lets hold a shell's connection (agents that run interactive shells for a remote by design). */
        relay_agents: z.array(relayAgentEntry).default([]),
      })
      .strict()
      .default({}),
    output: z
      .object({
        /** auto: json when stdout is not a terminal, pretty when it is. none: nothing on stdout. */
        stdout: z.enum(["auto", "json", "pretty", "none"]).default("auto"),
        /** Also write every decoded kernel event to stdout (JSON lines), as the output named "events". */
        events: z.boolean().default(false),
        /** Seconds between heartbeat records on the durable outputs (file, spooled webhook, NATS); 0 turns them off. */
        heartbeat_interval_s: z.number().int().min(0).max(86_400).default(60),
        /** Cut credentials (passwords, tokens, authorization headers, URL passwords) out of findings' command lines. */
        redact_secrets: z.boolean().default(true),
        file: z
          .object({
            path: z.string().min(1),
            // Defaults live in the output itself (FileOutput): one place, documented in the example.
            max_bytes: z.number().int().min(4096).optional(),
            keep: z.number().int().min(0).max(100).optional(),
          })
          .strict()
          .optional(),
        webhook: z
          .object({
            url: z.string().url().refine((u) => /^https?:\/\//.test(u), "must be an http:// or https:// URL"),
            // Defaults live in WebhookOutput: one place, documented in the example.
            headers: z.record(z.string()).optional(),
            max_queue: z.number().int().min(1).max(10_000_000).optional(),
            max_batch: z.number().int().min(1).max(100_000).optional(),
            timeout_ms: z.number().int().min(100).max(600_000).optional(),
            max_attempts: z.number().int().min(1).max(100).optional(),
            /** Send credential headers over plain http:// to a host that is not loopback. */
            allow_plaintext_credentials: z.boolean().default(false),
          })
          .strict()
          .refine((w) => w.allow_plaintext_credentials || !sendsCredentialsInClear(w.url, w.headers), {
            message:
              "sending credential headers over http:// to a host that is not loopback exposes them on the network: use an https:// URL, or set allow_plaintext_credentials = true if that path is trusted",
          })
          .optional(),
        /** RFC 5424 over UDP, TCP (RFC 6587) or TLS (RFC 5425); node has no unix datagram sockets for /dev/log. */
        syslog: z
          .object({
            host: z.string().ip().default("127.0.0.1"),
            protocol: z.enum(SYSLOG_PROTOCOLS).default("udp"),
            // Default in SyslogOutput: 514, or 6514 for tls.
            port: z.number().int().min(1).max(65535).optional(),
            facility: z.enum(Object.keys(SYSLOG_FACILITIES) as [SyslogFacility, ...SyslogFacility[]]).default("authpriv"),
            tls_ca_file: z.string().min(1).optional(),
            tls_cert_file: z.string().min(1).optional(),
            tls_key_file: z.string().min(1).optional(),
            /** The name the server's certificate must carry, when it has no IP address entry for host. */
            tls_server_name: z.string().min(1).optional(),
          })
          .strict()
          .refine((s) => s.protocol === "tls" || [s.tls_ca_file, s.tls_cert_file, s.tls_key_file, s.tls_server_name].every((v) => v === undefined), {
            message: 'the tls_* keys need protocol = "tls"',
          })
          .refine((s) => (s.tls_cert_file === undefined) === (s.tls_key_file === undefined), {
            message: "tls_cert_file and tls_key_file go together",
          })
          .optional(),
        /** NATS JetStream, through the spool: at-least-once, exactly-once inside the stream's duplicate window. */
        nats: z
          .object({
            servers: z.array(z.string().regex(/^(nats|tls):\/\/[^\s]+$/, 'must be a "nats://host:port" or "tls://host:port" URL')).min(1).default(["nats://127.0.0.1:4222"]),
            stream: z.string().regex(/^[A-Za-z0-9_-]+$/).default("SOCKEYE_FINDINGS"),
            subject_prefix: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/).default("sockeye.findings"),
            /** The subject's last token; default: the host name with dots made "_". */
            host_id: z.string().min(1).optional(),
            create_stream: z.boolean().default(true),
            creds_file: z.string().min(1).optional(),
            tls_ca_file: z.string().min(1).optional(),
            tls_cert_file: z.string().min(1).optional(),
            tls_key_file: z.string().min(1).optional(),
            ack_timeout_ms: z.number().int().min(100).max(600_000).default(5_000),
          })
          .strict()
          .optional(),
        /** Where durable outputs (nats) keep findings until the receiver acknowledges them. */
        spool: z
          .object({
            // Defaults live in Spool: one place, documented in the example.
            dir: z.string().min(1).optional(),
            max_bytes: z.number().int().min(65_536).optional(),
            max_age_s: z.number().int().min(1).max(90 * 86_400).optional(),
            fsync_interval_ms: z.number().int().min(0).max(60_000).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    /** Enforcement (docs/enforcement.md): off, dry-run or on, per rule too. */
    enforce: enforceConfigSchema.default({}),
    metrics: z
      .object({
        /** Seconds between stats lines on stderr; 0 turns them off. */
        stats_interval_s: z.number().int().min(0).max(86_400).default(60),
        /** "host:port" for a Prometheus /metrics endpoint; absent: no endpoint. */
        prometheus_listen: listenAddress.optional(),
        /** A file (mode 0600) holding the bearer token /metrics requires; absent: no token. */
        prometheus_token_file: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
/** What a config file may hold before defaults are applied. */
export type ConfigInput = z.input<typeof configSchema>;

function describeIssue(issue: z.ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? `${issue.path.join(".")}.` : "";
    return `unknown key ${issue.keys.map((k) => `${where}${k}`).join(", ")}`;
  }
  return `${issue.path.join(".") || "(top level)"}: ${issue.message}`;
}

/** Validates an object (a parsed file, or built from flags); `origin` prefixes the message. */
export function validateConfig(input: unknown, origin: string): Config {
  const checked = configSchema.safeParse(input);
  if (!checked.success) throw new ConfigError(`${origin}: ${describeIssue(checked.error.issues[0]!)}`);
  return checked.data;
}

/** The example, every key documented, is 6 KiB; past this the path is surely not a config file. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** Reads and parses a TOML config file into its raw (not yet defaulted) form. */
export function readConfigFile(path: string): ConfigInput {
  let read: ReturnType<typeof readRegularText>;
  try {
    read = readRegularText(path, MAX_CONFIG_FILE_BYTES);
  } catch (error) {
    throw error instanceof FileReadError ? new ConfigError(`config ${error.message}`) : error;
  }
  const mode = (read.stats.mode & 0o777).toString(8).padStart(4, "0");
  // The daemon runs as root: whoever can write its config chooses what it reports and where.
  if (read.stats.mode & 0o022) {
    throw new ConfigError(`config ${path}: writable by group or others (mode ${mode}): run chmod go-w ${path}`);
  }
  let input: ConfigInput;
  try {
    input = parseToml(read.text);
  } catch (error) {
    const line = error instanceof TomlError ? `:${error.line}` : "";
    const first = (error as Error).message.split("\n")[0];
    throw new ConfigError(`config ${path}${line}: TOML syntax error: ${first}`);
  }
  const secrets = secretKeys(input);
  if (secrets.length > 0 && read.stats.mode & 0o044) {
    throw new ConfigError(`config ${path}: holds ${secrets.join(", ")} and is readable by group or others (mode ${mode}): run chmod 600 ${path}`);
  }
  return input;
}


/** Recursively lays `over` onto `base`: objects merge, anything else (arrays too) replaces. */
function layer(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    const bothObjects = [current, value].every((v) => typeof v === "object" && v !== null && !Array.isArray(v));
    out[key] = bothObjects ? layer(current as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return out;
}

/**
 * The effective configuration: the file (if any), then the flags laid over it, validated
 * once. A bad value is reported against the file when the file gave it, else the flags.
 */
export function resolveConfig(path: string | undefined, flags: ConfigInput): Config {
  const file = path !== undefined ? readConfigFile(path) : {};
  if (path !== undefined) validateConfig(file, `config ${path}`);
  return validateConfig(layer(file, flags), path !== undefined ? "config (with flags)" : "flags");
}
