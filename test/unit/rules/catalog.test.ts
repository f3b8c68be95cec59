/**
 * The rule catalog that `sockeye run` and `sockeye rules` load: built-in rules, shipped
 * Elastic rules, user files; replacement of a shipped rule, duplicate ids, lenient loading.
 * Also the `sockeye rules` command and its one-line errors for bad rule files.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRuleCatalog } from "../../../src/rules/catalog.js";
import { builtinElasticRulesDir } from "../../../src/rules/elastic/rule.js";

const SEED_ID = "259be2d8-3b1a-4c2c-a0eb-0c8e77f35e39";
const SEED_FILE = join(builtinElasticRulesDir(), "execution_potential_reverse_shell_via_background_process.toml");

const dir = mkdtempSync(join(tmpdir(), "sockeye-catalog-"));
function ruleFile(name: string, id: string, query = 'process where process.name == "x"'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    ["[rule]", `rule_id = "${id}"`, `name = "${name}"`, 'description = "d"', 'severity = "low"', 'type = "eql"', 'language = "eql"', `query = '''${query}'''`].join("\n"),
  );
  return path;
}

describe("rule catalog", () => {
  it("runs TRC-101, RELAY-001, SHELL-001 and the shipped Elastic seed rule by default, and says why RELAY-002 does not", () => {
    const { rules, statuses } = loadRuleCatalog();
    expect(rules.map((r) => r.meta.id)).toEqual(["TRC-101", "RELAY-001", "SHELL-001", SEED_ID]);
    expect(statuses).toEqual([
      { id: "TRC-101", name: "Process standard input/output over socket detected", source: "builtin", kind: "typescript", status: "runs", profile: "precise" },
      { id: "RELAY-001", name: "Relay reverse shell", source: "builtin", kind: "typescript", status: "runs" },
      { id: "SHELL-001", name: "Command interpreter fed from the network", source: "builtin", kind: "typescript", status: "runs" },
      { id: "RELAY-002", source: "builtin", kind: "typescript", status: "skipped", reason: expect.stringMatching(/^off by default: build and management agents .*rules\.command_relay = true/) as unknown },
      { id: SEED_ID, name: "Potential Reverse Shell via Background Process", source: SEED_FILE, kind: "elastic", status: "runs" },
    ]);
  });

  it("runs RELAY-002 when asked (rules.command_relay / --command-relay)", () => {
    const { rules, statuses } = loadRuleCatalog({ commandRelay: true });
    expect(rules.map((r) => r.meta.id)).toEqual(["TRC-101", "RELAY-001", "SHELL-001", "RELAY-002", SEED_ID]);
    expect(statuses.find((s) => s.id === "RELAY-002")).toMatchObject({ name: "Command relay", status: "runs" });
  });

  it("adds user rules after the shipped ones", () => {
    const extra = ruleFile("extra.toml", "u-1");
    const { rules } = loadRuleCatalog({ rulePaths: [extra] });
    expect(rules.map((r) => r.meta.id)).toEqual(["TRC-101", "RELAY-001", "SHELL-001", SEED_ID, "u-1"]);
    expect(rules[4]!.meta.source).toBe(extra);
  });

  it("a user copy of a shipped rule replaces it, and says so", () => {
    const copy = join(dir, "newer-seed.toml");
    writeFileSync(copy, readFileSync(SEED_FILE, "utf8").replace('risk_score = 47', 'risk_score = 73'));
    const { rules, statuses } = loadRuleCatalog({ rulePaths: [copy] });
    const seeds = rules.filter((r) => r.meta.id === SEED_ID);
    expect(seeds).toHaveLength(1);
    expect(seeds[0]!.meta.riskScore).toBe(73);
    expect(statuses.find((s) => s.source === SEED_FILE)).toMatchObject({ status: "replaced", reason: `replaced by ${copy}` });
  });

  it("two user files with one rule_id: strict throws naming both, lenient skips the second", () => {
    const a = ruleFile("dup-a.toml", "dup");
    const b = ruleFile("dup-b.toml", "dup");
    expect(() => loadRuleCatalog({ rulePaths: [a, b] })).toThrow(`${b}: rule_id dup is already loaded from ${a}`);
    const { rules, statuses } = loadRuleCatalog({ rulePaths: [a, b], lenient: true });
    expect(rules.filter((r) => r.meta.id === "dup")).toHaveLength(1);
    expect(statuses.find((s) => s.source === b)).toMatchObject({ status: "skipped", reason: `${b}: rule_id dup is already loaded from ${a}` });
  });

  it("a user rule may not take a built-in TypeScript rule's id", () => {
    const clash = ruleFile("clash.toml", "TRC-101");
    expect(() => loadRuleCatalog({ rulePaths: [clash] })).toThrow(`${clash}: rule_id TRC-101 is already loaded from builtin`);
  });

  it("lenient: a bad file is listed as skipped with its reason, the rest run", () => {
    const bad = ruleFile("bad.toml", "bad", "sequence [process where true]");
    const good = ruleFile("good.toml", "good");
    const { rules, statuses } = loadRuleCatalog({ rulePaths: [bad, good], lenient: true });
    expect(rules.map((r) => r.meta.id)).toContain("good");
    expect(rules.map((r) => r.meta.id)).not.toContain("bad");
    expect(statuses.find((s) => s.source === bad)).toMatchObject({ status: "skipped", kind: "elastic" });
    expect(statuses.find((s) => s.source === bad)!.reason).toMatch(/a sequence needs at least two steps/);
  });
});

describe("sockeye rules", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { encoding: "utf8" });

  it("--json lists each rule with its source and status", () => {
    const r = cli("rules", "--json");
    expect(r.status).toBe(0);
    const statuses = JSON.parse(r.stdout) as { id: string; status: string; source: string }[];
    expect(statuses.map((s) => [s.id, s.status])).toEqual([["TRC-101", "runs"], ["RELAY-001", "runs"], ["SHELL-001", "runs"], ["RELAY-002", "skipped"], [SEED_ID, "runs"]]);
    expect(JSON.parse(cli("rules", "--json", "--command-relay").stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ id: "RELAY-002", status: "runs" })]));
  });

  it("the table names every rule and the count that runs", () => {
    const bad = ruleFile("table-bad.toml", "tb", "process where");
    const r = cli("rules", "--rules", bad, "--lenient-rules");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Potential Reverse Shell via Background Process");
    expect(r.stdout).toMatch(/^skipped\s+elastic/m);
    expect(r.stdout).toMatch(/4 of 6 run/);
  });

  it.each([
    ["TOML syntax error", "syntax.toml", "[rule\nname = 1", /syntax\.toml:1: TOML syntax error/],
    ["missing query", "noquery.toml", '[rule]\nrule_id = "q"\nname = "n"\ndescription = "d"\nseverity = "low"\ntype = "eql"', /noquery\.toml: missing rule\.query/],
    ["EQL syntax error", "eqlerr.toml", '[rule]\nrule_id = "q"\nname = "n"\ndescription = "d"\nseverity = "low"\ntype = "eql"\nquery = """\nprocess where process.name ==\n"""', /eqlerr\.toml:9: EQL: expected a value, found end of query/],
    ["unsupported construct", "pipe.toml", '[rule]\nrule_id = "q"\nname = "n"\ndescription = "d"\nseverity = "low"\ntype = "eql"\nquery = \'\'\'process where process.name == "a" | head 1\'\'\'', /pipe\.toml:7: EQL: pipes \(\|\) are not supported/],
  ])("%s: one line naming the file, exit 2 (run and rules)", (_what, name, text, message) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    for (const command of ["rules", "run"]) {
      const r = cli(command, "--rules", path);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stdout).toBe("");
    }
  });
});

describe("sockeye rules: paths that are not config or rule files", () => {
  // A timeout, so that a FIFO read that blocks (or /dev/zero read forever) fails the test.
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { encoding: "utf8", timeout: 10_000 });
  const asNobody = (...args: string[]) =>
    spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "dist/cli/main.js", ...args], { encoding: "utf8", timeout: 10_000 });
  const fifo = join(dir, "named-pipe.toml");
  execFileSync("mkfifo", [fifo]);
  const big = join(dir, "big.toml");
  writeFileSync(big, `# ${"x".repeat(2 * 1024 * 1024)}\n`);
  const lenientHint = " (fix it, or start with --lenient-rules to skip it)";

  it.each([
    [["--config", fifo], `config ${fifo}: is a FIFO, not a regular file`],
    [["--config", "/dev/zero"], "config /dev/zero: is a character device, not a regular file"],
    [["--config", big], `config ${big}: larger than 1024 KiB: is this the right file?`],
    [["--rules", fifo], `rule file ${fifo}: is a FIFO, not a regular file${lenientHint}`],
    [["--rules", "/dev/zero"], `rule file /dev/zero: is a character device, not a regular file${lenientHint}`],
    [["--rules", big], `rule file ${big}: larger than 1024 KiB: is this the right file?${lenientHint}`],
  ])("%j: one line at once, exit 2", (args, message) => {
    const r = cli("rules", ...args);
    expect(r.stderr).toBe(`sockeye: ${message}\n`);
    expect(r.status).toBe(2);
  });

  it("--lenient-rules skips a rule path that is not a file", () => {
    const r = cli("rules", "--rules", fifo, "--lenient-rules");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^skipped\s+elastic/m);
  });

  it("a rules folder that cannot be listed: one line, exit 2; skipped with --lenient-rules", () => {
    const folder = mkdtempSync(join(tmpdir(), "sockeye-unlistable-"));
    chmodSync(folder, 0o711);
    const r = asNobody("rules", "--rules", folder);
    expect(r.stderr).toBe(`sockeye: rule file ${folder}: cannot list the folder: EACCES${lenientHint}\n`);
    expect(r.status).toBe(2);
    const lenient = asNobody("rules", "--rules", folder, "--lenient-rules", "--json");
    expect(lenient.status).toBe(0);
    expect(JSON.parse(lenient.stdout)).toContainEqual(expect.objectContaining({ source: folder, status: "skipped", reason: `${folder}: cannot list the folder: EACCES` }));
  });
});

describe("rule catalog: TRC-101's profile", () => {
  it("says which profile runs, and builds the rule with it", () => {
    const { rules, statuses } = loadRuleCatalog({ trc101: { profile: "tracee" } });
    expect(statuses[0]).toMatchObject({ id: "TRC-101", profile: "tracee" });
    // The tracee profile judges connects and dups only; the precise one also reads execs and exits.
    expect(rules[0]!.kinds).toEqual(["connect", "socket_dup"]);
    expect(loadRuleCatalog().rules[0]!.kinds).toEqual(["connect", "socket_dup", "exec", "exit"]);
  });
});
