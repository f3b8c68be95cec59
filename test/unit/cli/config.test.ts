/**
 * The daemon's configuration: the shipped example is valid and equals the defaults, flags
 * win over the file, and every bad key or value is one line naming it.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, readConfigFile, resolveConfig, validateConfig } from "../../../src/cli/config.js";

const EXAMPLE = new URL("../../../config/sockeye.example.toml", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "sockeye-config-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe("config", () => {
  it("the documented example is valid and says exactly the defaults", () => {
    expect(resolveConfig(EXAMPLE, {})).toEqual(validateConfig({}, "defaults"));
    expect(validateConfig({}, "defaults")).toEqual({
      sensor: { stdio_fd_max: 2, skip_programs: [] },
      rules: { paths: [], lenient: false, shipped_elastic: true, fold: true, trc101_allow: [] },
      output: { stdout: "auto", events: false },
      metrics: { stats_interval_s: 60 },
    });
  });

  it("flags win over the file, key by key", () => {
    const path = file("layer.toml", '[sensor]\nstdio_fd_max = 5\nskip_programs = ["lsm/socket_connect"]\n[output.file]\npath = "/var/log/x"\nkeep = 2\n');
    const config = resolveConfig(path, { sensor: { stdio_fd_max: 1 }, output: { file: { path: "/tmp/y" } } });
    expect(config.sensor).toEqual({ stdio_fd_max: 1, skip_programs: ["lsm/socket_connect"] });
    expect(config.output.file).toEqual({ path: "/tmp/y", keep: 2, max_bytes: 100 * 1024 * 1024 });
  });

  const bad: [string, string, RegExp][] = [
    ["unknown top-level key", "[sensors]\n", /: unknown key sensors$/],
    ["unknown nested key", "[output.webhook]\nurl = \"http://127.0.0.1:1/\"\nretries = 3\n", /: unknown key output\.webhook\.retries$/],
    ["wrong type", "[sensor]\nstdio_fd_max = \"two\"\n", /: sensor\.stdio_fd_max: Expected number, received string$/],
    ["out of range", "[sensor]\nstdio_fd_max = 4096\n", /: sensor\.stdio_fd_max: Number must be less than or equal to 1023$/],
    ["ring not a power of two", "[sensor]\nprocess_ring_bytes = 5000\n", /: sensor\.process_ring_bytes: must be a power of two of at least 4096$/],
    ["bad stdout format", "[output]\nstdout = \"xml\"\n", /: output\.stdout: Invalid enum value/],
    ["webhook not http", "[output.webhook]\nurl = \"ftp://127.0.0.1/x\"\n", /: output\.webhook\.url: must be an http:\/\/ or https:\/\/ URL$/],
    ["listen address", "[metrics]\nprometheus_listen = \"9469\"\n", /: metrics\.prometheus_listen: must be "host:port"/],
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
