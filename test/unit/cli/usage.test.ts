import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The built CLI (npm ci builds dist/): usage errors are one line and exit 2, no stack trace.
const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { encoding: "utf8" });

describe("sockeye CLI usage errors", () => {
  it.each([
    [["bogus"], /unknown command 'bogus'/],
    [["run", "--stdio-fd-max", "abc"], /--stdio-fd-max must be an integer from 0 to 1023/],
    [["run", "--nope"], /unknown option '--nope'/],
    [["probe", "extra"], /too many arguments/],
    [["run", "--format", "xml"], /option '--format <format>' argument 'xml' is invalid\. Allowed choices are auto, json, pretty, none/],
    [["run", "--config", "/nonexistent/sockeye.toml"], /^sockeye: config \/nonexistent\/sockeye\.toml: cannot read: ENOENT$/m],
    [["run", "--webhook", "ftp://127.0.0.1/x"], /^sockeye: flags: output\.webhook\.url: must be an http:\/\/ or https:\/\/ URL$/m],
    // Refused when the outputs open, before the sensor: bad input, so 2.
    [["run", "--webhook", "http://user:pw@127.0.0.1:1/hook"], /^sockeye: output webhook: url must not carry credentials; send them in an authorization header$/m],
    [["run", "--prometheus", "9469"], /^sockeye: flags: metrics\.prometheus_listen: must be "host:port"/m],
    [["replay", "/nonexistent/capture.jsonl"], /^sockeye: capture \/nonexistent\/capture\.jsonl: cannot read: ENOENT$/m],
    [["replay", "/tmp"], /^sockeye: capture \/tmp: is a directory, not a regular file$/m],
    [["replay"], /missing required argument 'capture' \(run 'sockeye --help' for usage\)$/m],
    [["run", "--stats-interval", "-1"], /--stats-interval must be an integer from 0 to 86400/],
    // Number() reads "" as 0 and takes hex and exponents: only decimal digits count. The
    // missing config stops a flag that is wrongly taken before any program is loaded.
    [["run", "--stdio-fd-max", "", "--config", "/nonexistent/sockeye.toml"], /--stdio-fd-max must be an integer from 0 to 1023/],
    [["run", "--stats-interval", "", "--config", "/nonexistent/sockeye.toml"], /--stats-interval must be an integer from 0 to 86400/],
    [["run", "--stdio-fd-max", "0x10", "--config", "/nonexistent/sockeye.toml"], /--stdio-fd-max must be an integer from 0 to 1023/],
    [["run", "--stats-interval", "1e2", "--config", "/nonexistent/sockeye.toml"], /--stats-interval must be an integer from 0 to 86400/],
  ])("%j", (args, message) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
  });

  it("an output that cannot be opened fails the start before the kernel is touched: exit 1, one line", () => {
    const r = cli("run", "--output-file", "/nonexistent-dir/findings.jsonl");
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^sockeye: output file: .*\/nonexistent-dir/);
  });

  it("an unreadable capture is one line, exit 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-usage-"));
    const capture = join(dir, "capture.jsonl");
    writeFileSync(capture, "", { mode: 0o000 });
    chmodSync(dir, 0o755);
    // As nobody: root reads a file whatever its mode.
    const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "dist/cli/main.js", "replay", capture], { encoding: "utf8" });
    rmSync(dir, { recursive: true, force: true });
    expect(r.stderr).toBe(`sockeye: capture ${capture}: cannot read: EACCES\n`);
    expect(r.status).toBe(2);
  });

  it("version prints the package version", () => {
    const r = cli("version");
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(cli("--version").stdout).toBe(r.stdout);
  });

  it("replay runs the rules over a capture: the example's reverse shell gives one TRC-101 finding", () => {
    const r = cli("replay", "examples/custom-agent/capture.jsonl");
    expect(r.status).toBe(0);
    const findings = r.stdout.trim().split("\n").map((line) => JSON.parse(line) as { rule: { id: string }; destination?: { ip: string; port: number } });
    expect(findings.map((f) => f.rule.id)).toEqual(["TRC-101"]);
    expect(findings[0]!.destination).toEqual({ ip: "10.0.0.66", port: 4444 });
    expect(r.stderr).toMatch(/"message":"replayed".*"events":18,"findings":1,"malformed":0/);
  });

  it("replay's summary prints every engine counter, unknown kinds and malformed lines included", () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-usage-"));
    const capture = join(dir, "capture.jsonl");
    const example = readFileSync("examples/custom-agent/capture.jsonl", "utf8").trimEnd().split("\n");
    writeFileSync(capture, [...example, JSON.stringify({ ...(JSON.parse(example[0]!) as object), kind: "bind" }), "{not json"].join("\n"));
    const r = cli("replay", capture);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(1);
    const summary = JSON.parse(r.stderr.trim().split("\n").at(-1)!) as Record<string, unknown>;
    expect(summary).toMatchObject({ message: "replayed", events: 19, findings: 1, malformed: 1, dropped: { unknown_kind: 1, malformed_line: 1 }, ruleErrors: {} });
    expect(summary).toHaveProperty("folded");
    expect(summary).toHaveProperty("suppressed");
  });

  it("replay --strict writes the findings made before a bad line, then stops with one line naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-usage-"));
    const capture = join(dir, "capture.jsonl");
    const example = readFileSync("examples/custom-agent/capture.jsonl", "utf8").trimEnd().split("\n");
    const bad = JSON.stringify({ ...(JSON.parse(example[0]!) as object), timeMs: 1e20 });
    writeFileSync(capture, [...example, bad].join("\n"));
    const r = cli("replay", "--strict", capture);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(2);
    expect(r.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { rule: { id: string } }).rule.id)).toEqual(["TRC-101"]);
    expect(r.stderr.split("\n").filter((line) => line.startsWith("sockeye: "))).toEqual([
      `sockeye: capture line ${example.length + 1}: not a valid exec event: timeMs: Number must be less than or equal to 8640000000000000 (or replay without --strict to count such lines)`,
    ]);
  });

  it("replay --rules X capture: --rules takes one path (repeat it for more), the capture stays the argument", () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-usage-"));
    const rule = (id: string) => {
      const path = join(dir, `${id}.toml`);
      writeFileSync(path, ["[rule]", `rule_id = "${id}"`, `name = "${id}"`, 'description = "d"', 'severity = "low"', 'type = "eql"', "query = 'process where process.name == \"bash\"'"].join("\n"));
      return path;
    };
    const r = cli("replay", "--rules", rule("u-1"), "--rules", rule("u-2"), "examples/custom-agent/capture.jsonl");
    rmSync(dir, { recursive: true, force: true });
    expect(r.stderr).not.toMatch(/^sockeye: /m);
    expect(r.status).toBe(0);
    const ids = r.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { rule: { id: string } }).rule.id);
    expect(ids).toEqual(expect.arrayContaining(["TRC-101", "u-1", "u-2"]));
  });

  it("--help lists the commands and exits 0", () => {
    const r = cli("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/probe/);
    expect(r.stdout).toMatch(/run/);
    for (const command of ["rules", "replay", "version"]) expect(r.stdout).toContain(command);
  });
});

describe("what `sockeye run` loads", () => {
  // Modules an output or command loads for itself stay out of a daemon that does not use
  // them (bench/README.md, footprint). As nobody the start stops at the sensor, after the
  // config, the rules and the default outputs are built and opened.
  it("the default start loads neither node:tls nor prom-client", () => {
    const report = `import { createRequire } from "node:module";
      process.on("exit", () => process.stderr.write("LOADED " + JSON.stringify({
        builtins: process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice(13)),
        packages: Object.keys(createRequire("/").cache),
      }) + "\\n"));`;
    const r = spawnSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", process.execPath, "--import", `data:text/javascript,${encodeURIComponent(report)}`, "dist/cli/main.js", "run"],
      { encoding: "utf8" },
    );
    expect(r.stderr).toMatch(/SOCKEYE_EPERM_BPF/);
    const loaded = JSON.parse(/^LOADED (.*)$/m.exec(r.stderr)![1]!) as { builtins: string[]; packages: string[] };
    expect(loaded.builtins).toContain("net"); // the report itself works
    expect(loaded.builtins).not.toContain("tls");
    expect(loaded.packages.filter((path) => path.includes("/node_modules/prom-client/"))).toEqual([]);
  });
});
