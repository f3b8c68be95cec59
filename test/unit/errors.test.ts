/**
 * Every error sockeye throws is a SockeyeError with a `SOCKEYE_*` code and the exit status the
 * CLI uses: 2 for bad input, 1 for what the host refused (docs/design.md §12).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CaptureLineError, ElasticRuleError, Engine, OutputError, OutputSet, JsonLinesOutput, SensorError, SockeyeError, createTrc101Rule, defineRule, openSensorSync } from "sockeye";
import { EqlError, compileRegex } from "sockeye/eql";
import { ConfigError } from "../../src/config/config.js";
import { InstanceLockError } from "../../src/service/instance-lock.js";
import { FileOutput } from "../../src/output/file.js";
import { InternalError, OptionError, assertInternal } from "../../src/errors.js";

const SRC = fileURLToPath(new URL("../../src", import.meta.url));
const CODE = /^SOCKEYE_[A-Z0-9_]+$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

/** What a throw site outside the scheme looks like: a built-in error class made or extended. */
const PLAIN_ERROR = /\bnew (Error|TypeError|RangeError|SyntaxError|ReferenceError|EvalError|URIError|AggregateError)\(|\bextends (Error|TypeError|RangeError|SyntaxError)\b/;

describe("one error scheme", () => {
  it("src/ makes no plain Error, TypeError or RangeError outside src/errors.ts", () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => relative(SRC, file) !== "errors.ts")
      .flatMap((file) =>
        readFileSync(file, "utf8")
          .split("\n")
          .map((line, i) => ({ where: `src/${relative(SRC, file)}:${i + 1}`, line: line.trim() }))
          .filter(({ line }) => PLAIN_ERROR.test(line) && !line.startsWith("*") && !line.startsWith("//")),
      );
    expect(offenders).toEqual([]);
  });

  it("the scan itself catches each form it looks for", () => {
    for (const line of ["throw new Error(\"x\")", "reject(new TypeError(`y`))", "class X extends Error {", "stream.destroy(new RangeError(z))"]) {
      expect(PLAIN_ERROR.test(line), line).toBe(true);
    }
    expect(PLAIN_ERROR.test("throw new OptionError(\"x\")")).toBe(false);
  });

  it("every code literal in src/ follows the scheme", () => {
    const codes = sourceFiles(SRC).flatMap((file) => [...readFileSync(file, "utf8").matchAll(/"(SOCKEYE_[A-Za-z0-9_]*)"/g)].map((m) => m[1]!));
    expect(codes.length).toBeGreaterThan(10);
    // SOCKEYE_FINDINGS is a NATS stream's default name, not an error code; it fits anyway.
    expect(codes.filter((code) => !CODE.test(code))).toEqual([]);
  });

  it.each([
    [new SensorError("no BTF", "NO_BTF", 2), "SensorError", "SOCKEYE_NO_BTF", 1],
    [new SensorError("stdioFdMax: too large", "BAD_OPTION", 22), "SensorError", "SOCKEYE_BAD_OPTION", 2],
    [new EqlError("bad", 1, 2), "EqlError", "SOCKEYE_EQL", 2],
    [new CaptureLineError(3, "not JSON"), "CaptureLineError", "SOCKEYE_CAPTURE_LINE", 2],
    [new ElasticRuleError("r.toml", "bad"), "ElasticRuleError", "SOCKEYE_RULE_FILE", 2],
    [new OutputError("file", "cannot open"), "OutputError", "SOCKEYE_OUTPUT", 1],
    [new ConfigError("config x: bad"), "ConfigError", "SOCKEYE_CONFIG", 2],
    [new InstanceLockError("taken"), "InstanceLockError", "SOCKEYE_INSTANCE_LOCK", 1],
    [new OptionError("maxKeys must be positive"), "OptionError", "SOCKEYE_BAD_OPTION", 2],
    [new InternalError("x"), "InternalError", "SOCKEYE_INTERNAL", 1],
  ])("%s", (error, name, code, exitStatus) => {
    expect(error).toBeInstanceOf(SockeyeError);
    expect(error).toBeInstanceOf(Error);
    expect({ name: error.name, code: error.code, exitStatus: error.exitStatus }).toEqual({ name, code, exitStatus });
  });

  it("SensorError keeps the (message, reason, errno) constructor the addon calls, and prefixes the reason", () => {
    const error = new SensorError("bpf() refused", "EPERM_BPF", 1);
    expect({ message: error.message, code: error.code, errno: error.errno }).toEqual({ message: "bpf() refused", code: "SOCKEYE_EPERM_BPF", errno: 1 });
  });

  it("assertInternal throws an InternalError that says it is a bug", () => {
    expect(() => assertInternal(false, "three stdio fds")).toThrow(/^internal error \(a bug in sockeye, please report it\): three stdio fds$/);
    expect(() => assertInternal(true, "never")).not.toThrow();
  });
});

/** The error a call throws (or its promise rejects with), for matching. */
async function caught(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw"); // the test's own failure, not sockeye's
}

describe("what a user can reach throws a SockeyeError", () => {
  const rule = (id: string) => defineRule({ meta: { id, name: id, description: id, severity: "low", threat: [], source: "test" }, kinds: ["exec"], evaluate: () => null });

  it.each<[string, () => unknown, string, number, RegExp]>([
    ["two rules with one id", () => new Engine({ rules: [rule("X-1"), rule("X-1")] }), "SOCKEYE_BAD_OPTION", 2, /^two rules share the id "X-1"/],
    [
      "a TRC-101 allowlist entry with no criterion",
      () => createTrc101Rule({ extraAllowlist: [{ label: "empty" }] }),
      "SOCKEYE_BAD_OPTION",
      2,
      /^TRC-101 allowlist entry "empty" matches nothing specific/,
    ],
    ["a regex outside the supported syntax", () => compileRegex("(unclosed", false), "SOCKEYE_EQL_REGEX", 2, /^expected \) to close a group$/],
    ["two outputs with one name", () => new OutputSet([new JsonLinesOutput({ name: "o" }), new JsonLinesOutput({ name: "o" })]), "SOCKEYE_BAD_OPTION", 2, /^two outputs share the name "o"/],
    ["a file output keeping -1 files", () => new FileOutput({ path: "/tmp/never-opened", keep: -1 }), "SOCKEYE_BAD_OPTION", 2, /^keep must be an integer >= 0/],
    ["a sensor option out of range (before any kernel work)", () => openSensorSync({ stdioFdMax: 1024 }), "SOCKEYE_BAD_OPTION", 2, /stdioFdMax/],
  ])("%s", async (_name, call, code, exitStatus, message) => {
    const error = await caught(call);
    expect(error).toBeInstanceOf(SockeyeError);
    expect(error).toMatchObject({ code, exitStatus });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });
});
