/**
 * The daemon's configuration: the shipped example is valid and equals the defaults, flags
 * win over the file, and every bad key or value is one line naming it.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileOutput } from "../../../src/output/file.js";
import { WebhookOutput } from "../../../src/output/webhook.js";
import { ConfigError, readConfigFile, resolveConfig, validateConfig } from "../../../src/config/config.js";

const EXAMPLE = new URL("../../../config/sockeye.example.toml", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "sockeye-config-"));
const file = (name: string, text: string, mode = 0o644) => {
  const path = join(dir, name);
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
};

describe("config", () => {
  it("the documented example is valid and says exactly the defaults", () => {
    expect(resolveConfig(EXAMPLE, {})).toEqual(validateConfig({}, "defaults"));
    expect(validateConfig({}, "defaults")).toEqual({
      sensor: { stdio_fd_max: 2, skip_programs: [], reader_realtime: true, event_loop_realtime: true, compat_syscalls: false },
      rules: { paths: [], lenient: false, shipped_elastic: true, fold: true, profile: "precise", command_relay: false, trc101_allow: [], relay_agents: [] },
      output: { stdout: "auto", events: false, heartbeat_interval_s: 60, redact_secrets: true },
      enforce: { mode: "off", rules: {}, allow: [], budget: { kills_per_uid: 10, kills_per_tree: 5, window_s: 60 } },
      metrics: { stats_interval_s: 60 },
    });
  });

  it("flags win over the file, key by key", () => {
    const path = file("layer.toml", '[sensor]\nstdio_fd_max = 5\nskip_programs = ["lsm/socket_connect"]\n[output.file]\npath = "/var/log/x"\nkeep = 2\n');
    const config = resolveConfig(path, { sensor: { stdio_fd_max: 1 }, output: { file: { path: "/tmp/y" } } });
    expect(config.sensor).toEqual({ stdio_fd_max: 1, skip_programs: ["lsm/socket_connect"], reader_realtime: true, event_loop_realtime: true, compat_syscalls: false });
    expect(config.output.file).toEqual({ path: "/tmp/y", keep: 2 });
  });

  it("every commented-out section of the example is valid too once uncommented", () => {
    const text = readFileSync(EXAMPLE, "utf8");
    // Only lines that are TOML (a [table] or a key = value), not the prose around them.
    const uncommented = text.replace(/^# (?=\[|[a-z_]+ = )/gm, "");
    expect(uncommented).not.toBe(text);
    const config = resolveConfig(file("uncommented.toml", uncommented, 0o600), {});
    expect(config.output.file).toEqual({ path: "/var/log/sockeye/findings.jsonl", max_bytes: 104857600, keep: 5 });
    expect(config.output.webhook).toMatchObject({ url: "https://siem.example.internal/ingest", max_queue: 10000, timeout_ms: 10000, max_attempts: 5 });
    expect(config.output.syslog).toEqual({
      host: "127.0.0.1",
      protocol: "tls",
      port: 6514,
      facility: "authpriv",
      tls_ca_file: "/etc/sockeye/syslog-ca.pem",
      tls_cert_file: "/etc/sockeye/syslog-cert.pem",
      tls_key_file: "/etc/sockeye/syslog-key.pem",
      tls_server_name: "syslog.example.internal",
    });
    expect(config.rules.trc101_allow).toEqual([{ label: "my-tcp-service", executable: "/usr/local/sbin/my-tcp-service" }]);
    expect(config.sensor).toMatchObject({ detection_ring_bytes: 524288, process_ring_bytes: 1048576 });
    expect(config.metrics.prometheus_listen).toBe("127.0.0.1:9469");
  });

  it("the example's output defaults are the outputs' own", () => {
    const file = new FileOutput({ path: "/tmp/x" });
    const webhook = new WebhookOutput({ url: "http://127.0.0.1:1/" });
    expect([(file as unknown as { maxBytes: number }).maxBytes, (file as unknown as { keep: number }).keep]).toEqual([104857600, 5]);
    expect([(webhook as unknown as { timeoutMs: number }).timeoutMs, (webhook as unknown as { maxAttempts: number }).maxAttempts]).toEqual([10000, 5]);
  });

  const bad: [string, string, RegExp][] = [
    ["unknown top-level key", "[sensors]\n", /: unknown key sensors$/],
    ["unknown nested key", "[output.webhook]\nurl = \"http://127.0.0.1:1/\"\nretries = 3\n", /: unknown key output\.webhook\.retries$/],
    ["wrong type", "[sensor]\nstdio_fd_max = \"two\"\n", /: sensor\.stdio_fd_max: Expected number, received string$/],
    ["out of range", "[sensor]\nstdio_fd_max = 4096\n", /: sensor\.stdio_fd_max: Number must be less than or equal to 1023$/],
    ["reader_realtime not a boolean", "[sensor]\nreader_realtime = \"yes\"\n", /: sensor\.reader_realtime: Expected boolean, received string$/],
    ["ring not a power of two", "[sensor]\nprocess_ring_bytes = 5000\n", /: sensor\.process_ring_bytes: must be a power of two from 4096 to 2147483648$/],
    ["ring past 32 bits", "[sensor]\ndetection_ring_bytes = 4294967296\n", /: sensor\.detection_ring_bytes: must be a power of two from 4096 to 2147483648$/],
    ["bad stdout format", "[output]\nstdout = \"xml\"\n", /: output\.stdout: Invalid enum value/],
    ["webhook not http", "[output.webhook]\nurl = \"ftp://127.0.0.1/x\"\n", /: output\.webhook\.url: must be an http:\/\/ or https:\/\/ URL$/],
    ["syslog tls file without tls", "[output.syslog]\nprotocol = \"tcp\"\ntls_ca_file = \"/x.pem\"\n", /: output\.syslog: the tls_\* keys need protocol = "tls"$/],
    ["syslog certificate without its key", "[output.syslog]\nprotocol = \"tls\"\ntls_cert_file = \"/x.pem\"\n", /: output\.syslog: tls_cert_file and tls_key_file go together$/],
    ["syslog protocol", "[output.syslog]\nprotocol = \"relp\"\n", /: output\.syslog\.protocol: Invalid enum value/],
    ["listen address", "[metrics]\nprometheus_listen = \"9469\"\n", /: metrics\.prometheus_listen: must be "host:port"/],
    ["listen port", "[metrics]\nprometheus_listen = \"127.0.0.1:99999\"\n", /: metrics\.prometheus_listen: the port must be from 0 to 65535$/],
    ["stats interval not whole seconds", "[metrics]\nstats_interval_s = 0.001\n", /: metrics\.stats_interval_s: Expected integer, received float$/],
    ["stats interval past a day", "[metrics]\nstats_interval_s = 3000000\n", /: metrics\.stats_interval_s: Number must be less than or equal to 86400$/],
    ["allow entry that matches nothing", "[[rules.trc101_allow]]\nlabel = \"x\"\n", /: rules\.trc101_allow\.0: needs at least one of executable, name, parent_name$/],
    ["TOML syntax", "[sensor\n", /^config .*syntax\.toml:1: TOML syntax error: /],
  ];
  it.each(bad)("%s: one line naming the key", (_what, text, message) => {
    const name = _what === "TOML syntax" ? "syntax.toml" : "bad.toml";
    const path = file(name, text);
    let thrown: unknown;
    try {
      resolveConfig(path, {});
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const message_ = (thrown as Error).message;
    expect(message_).toMatch(message);
    expect(message_).toContain(path);
    expect(message_).not.toContain("\n");
  });

  it("a missing file says so", () => {
    expect(() => readConfigFile(join(dir, "nope.toml"))).toThrow(`config ${join(dir, "nope.toml")}: cannot read: ENOENT`);
  });

  it("a bad flag value is reported against the flags", () => {
    expect(() => resolveConfig(undefined, { metrics: { prometheus_listen: "nowhere" } })).toThrow(/^flags: metrics\.prometheus_listen: /);
  });
});

describe("config: secrets", () => {
  const withHeaders = (url: string, extra = "") => `[output.webhook]\nurl = "${url}"\nheaders = { Authorization = "Bearer t0ken" }\n${extra}`;

  it("a config holding webhook headers must not be readable by group or others", () => {
    const path = file("headers-0644.toml", withHeaders("https://siem.example.internal/x"), 0o644);
    expect(() => readConfigFile(path)).toThrow(new ConfigError(`config ${path}: holds output.webhook.headers and is readable by group or others (mode 0644): run chmod 600 ${path}`));
    const ok = file("headers-0600.toml", withHeaders("https://siem.example.internal/x"), 0o600);
    expect(resolveConfig(ok, {}).output.webhook?.headers).toEqual({ Authorization: "Bearer t0ken" });
  });

  it("a config without secrets may be world-readable, but never writable by group or others", () => {
    expect(resolveConfig(file("plain-0644.toml", "[sensor]\nstdio_fd_max = 3\n", 0o644), {}).sensor.stdio_fd_max).toBe(3);
    const path = file("plain-0664.toml", "[sensor]\nstdio_fd_max = 3\n", 0o664);
    expect(() => readConfigFile(path)).toThrow(new ConfigError(`config ${path}: writable by group or others (mode 0664): run chmod go-w ${path}`));
  });

  it.each([
    ["http://siem.example.internal/x", "Authorization", false],
    ["http://10.1.2.3:8080/x", "X-Api-Key", false],
    ["http://siem.example.internal/x", "Cookie", false],
    ["http://127.0.0.1:8080/x", "Authorization", true],
    ["http://[::1]:8080/x", "Authorization", true],
    ["http://localhost/x", "Authorization", true],
    ["https://siem.example.internal/x", "Authorization", true],
    ["http://siem.example.internal/x", "X-Tenant", true],
  ])("webhook %s with a %s header: accepted %s", (url, header, accepted) => {
    const input = { output: { webhook: { url, headers: { [header]: "v" } } } };
    if (accepted) expect(validateConfig(input, "flags").output.webhook?.url).toBe(url);
    else expect(() => validateConfig(input, "flags")).toThrow(/^flags: output\.webhook: sending credential headers over http:\/\/ to a host that is not loopback exposes them on the network: use an https:\/\/ URL, or set allow_plaintext_credentials = true if that path is trusted$/);
  });

  it("allow_plaintext_credentials lets a trusted http:// path carry them", () => {
    const input = { output: { webhook: { url: "http://siem.example.internal/x", headers: { Authorization: "v" }, allow_plaintext_credentials: true } } };
    expect(validateConfig(input, "flags").output.webhook?.allow_plaintext_credentials).toBe(true);
  });
});

describe("config: secrets in findings", () => {
  it("outputs built from the config deliver findings with credentials cut out, unless redact_secrets is false", async () => {
    const { buildOutputs } = await import("../../../src/config/outputs.js");
    const finding = { rule: { id: "TRC-101", severity: "high" }, process: { entity_id: "e1", args: ["mysql", "--password=hunter2"] } } as unknown as import("../../../src/engine/finding.js").Finding;
    for (const [redact, expected] of [[true, "--password=[REDACTED]"], [false, "--password=hunter2"]] as const) {
      const lines: string[] = [];
      const { PassThrough } = await import("node:stream");
      const pass = new PassThrough();
      pass.on("data", (d: Buffer) => lines.push(d.toString()));
      const stream = pass as unknown as NodeJS.WriteStream;
      const set = buildOutputs(validateConfig({ output: { stdout: "json", redact_secrets: redact } }, "flags"), stream);
      await set.open();
      set.write([finding]);
      await set.close();
      expect(lines.join("")).toContain(expected);
    }
  });
});
