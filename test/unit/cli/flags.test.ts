/**
 * Flags over the config file, and the outputs a configuration builds: what `sockeye run`
 * does with its command line before anything is opened.
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { resolveConfig, validateConfig } from "../../../src/config/config.js";
import { configFromFlags, decimalInteger } from "../../../src/cli/flags.js";
import { buildOutputs } from "../../../src/config/outputs.js";
import { SpooledWebhookOutput, WebhookOutput } from "../../../src/output/webhook.js";

describe("configFromFlags", () => {
  it("maps each flag to its key and leaves out what was not given", () => {
    expect(configFromFlags({}, () => false)).toEqual({});
    expect(
      configFromFlags(
        { stdioFdMax: 4, skip: ["lsm/socket_connect"], rules: ["/r"], lenientRules: true, fold: false, events: true, format: "pretty", outputFile: "/f", webhook: "http://127.0.0.1:1/", prometheus: "127.0.0.1:0", statsInterval: 5 },
        (name) => name === "fold",
      ),
    ).toEqual({
      sensor: { stdio_fd_max: 4, skip_programs: ["lsm/socket_connect"] },
      rules: { paths: ["/r"], lenient: true, fold: false },
      output: { events: true, stdout: "pretty", file: { path: "/f" }, webhook: { url: "http://127.0.0.1:1/" } },
      metrics: { prometheus_listen: "127.0.0.1:0", stats_interval_s: 5 },
    });
  });

  it("commander's default fold=true is not a flag: the file's fold stays", () => {
    expect(configFromFlags({ fold: true }, () => false)).toEqual({});
  });
});

describe("decimalInteger", () => {
  const parse = decimalInteger("--n", 0, 1023);

  it("takes decimal digits within the range", () => {
    expect([parse("0"), parse("7"), parse("1023")]).toEqual([0, 7, 1023]);
  });

  // Number() reads "" and " " as 0, "0x10" as 16, "1e2" as 100 and "2.0" as 2.
  it.each(["", " ", " 5", "0x10", "1e2", "2.0", "-1", "+3", "1024", "99999999999999999999"])("rejects %j", (value) => {
    expect(() => parse(value)).toThrow("--n must be an integer from 0 to 1023");
  });
});

describe("buildOutputs", () => {
  const stream = (isTTY: boolean) => Object.assign(new PassThrough(), { isTTY }) as unknown as NodeJS.WriteStream;

  it("stdout auto: JSON lines when not a terminal, the pretty format on one", () => {
    const config = validateConfig({}, "test");
    expect(buildOutputs(config, stream(false)).outputs.map((o) => [o.name, o.type])).toEqual([["stdout", "json-lines"]]);
    expect(buildOutputs(config, stream(true)).outputs.map((o) => [o.name, o.type])).toEqual([["stdout", "pretty"]]);
  });

  it("none, then every other output the config names, in order", () => {
    const config = resolveConfig(undefined, {
      output: { stdout: "none", file: { path: "/tmp/x" }, webhook: { url: "http://127.0.0.1:1/" }, syslog: {} },
    });
    expect(buildOutputs(config, stream(false)).outputs.map((o) => o.type)).toEqual(["file", "webhook", "syslog"]);
  });

  it("[output.spool] puts the webhook on the spool; each durable output gets a subfolder of its own", () => {
    const memory = resolveConfig(undefined, { output: { stdout: "none", webhook: { url: "http://127.0.0.1:1/" } } });
    expect(buildOutputs(memory, stream(false)).outputs[0]).toBeInstanceOf(WebhookOutput);
    const config = resolveConfig(undefined, { output: { stdout: "none", webhook: { url: "http://127.0.0.1:1/" }, nats: {}, spool: { dir: "/tmp/s" } } });
    const [webhook, nats] = buildOutputs(config, stream(false)).outputs;
    expect(webhook).toBeInstanceOf(SpooledWebhookOutput);
    const dir = (output: unknown) => (output as { spoolOptions: { dir: string } }).spoolOptions.dir;
    expect([dir(webhook), dir(nats)]).toEqual(["/tmp/s/webhook", "/tmp/s/nats"]);
  });
});
