/** The EQL functions the Linux rules call, and Elasticsearch's missing-field semantics. */
import { describe, expect, it } from "vitest";
import { compileEql } from "../../../src/eql/compile.js";

const holds = (where: string, doc: Record<string, unknown>) => compileEql(`network where ${where}`).test(doc);

const doc = {
  destination: { ip: "198.18.0.1", port: 4444 },
  source: { ip: ["::ffff:10.1.2.3", "fe80::1"] },
  process: { name: "bash", executable: "/usr/bin/bash", command_line: "/usr/bin/bash -i", args: ["bash", "-i"], pid: 7, hex: "1f" },
};

describe("functions", () => {
  const rows: [string, boolean][] = [
    ['cidrMatch(destination.ip, "198.18.0.0/15")', true],
    ['CIDRMATCH(destination.ip, "10.0.0.0/8", "198.18.0.1")', true],
    ['cidrmatch(destination.ip, "10.0.0.0/8", "127.0.0.0/8")', false],
    ['cidrmatch(destination.ip, "::1")', false],
    ['cidrmatch(source.ip, "10.0.0.0/8")', true],
    ['cidrmatch(source.ip, "FE80::/10")', true],
    ['cidrmatch(source.ip, "FF00::/8")', false],
    ['cidrmatch(destination.ip, "0.0.0.0/0")', true],
    ['cidrmatch(missing.ip, "0.0.0.0/0")', false],
    ['not cidrmatch(missing.ip, "0.0.0.0/0")', true],
    ["length(process.command_line) > 10", true],
    ["length(process.command_line) == 16", true],
    ["length(process.args) == 2", true],
    ["length(missing) == 0", false],
    ['startsWith(process.executable, "/usr/")', true],
    ['startsWith(process.executable, "/USR/")', false],
    ['startsWith~(process.executable, "/USR/")', true],
    ["startsWith(process.command_line, process.executable)", true],
    ["startsWith(process.executable, process.command_line)", false],
    ['endsWith(process.executable, "/bash")', true],
    ['EndsWith~(process.executable, "/BASH")', true],
    ["stringContains(process.command_line, process.name)", true],
    ['stringContains(process.name, "x")', false],
    ['stringContains(missing, "x")', false],
    ["number(process.hex, 16) == 31", true],
    ['number("0x1f", 16) == 31', true],
    ['number("12") > 11', true],
    ['number("12x") == 12', false],
    // Without a base, a 0x prefix means base 16 (Elasticsearch's function reference).
    ['number("0x10") == 16', true],
    ['number("-0X1f") == -31', true],
    ['number("0x10", 10) == 16', false],
    ['number("0x10", 10) == 0', false],
    ['concat(process.name, ":", destination.port) == "bash:4444"', true],
    ['concat(process.name, missing) == "bash"', false],
    // field to field
    ["process.pid < destination.port", true],
    ["process.name == process.args", true],
    ["process.name != process.executable", true],
  ];
  it.each(rows)("%s → %s", (where, expected) => {
    expect(holds(where, doc)).toBe(expected);
  });
});

describe("missing fields, as Elasticsearch (must_not matches documents without the field)", () => {
  const rows: [string, boolean][] = [
    ['user.name != "root"', true],
    ['user.name not in ("root")', true],
    ['user.name == "root"', false],
    ['user.name in ("root")', false],
    ['user.name : "*"', false],
    ["user.name == null", true],
    ["user.name != null", false],
    ['not user.name == "root"', true],
    ['process.name != "bash"', false],
    ['process.args != "bash"', false],
    ['process.args not in ("x")', true],
  ];
  it.each(rows)("%s → %s", (where, expected) => {
    expect(holds(where, doc)).toBe(expected);
  });
});

describe("a function of a missing field is null, and a script query on null matches nothing", () => {
  const rows: [string, boolean][] = [
    ["length(user.name) != 3", false],
    ["length(user.name) == 3", false],
    ["not length(user.name) == 3", false],
    ["not not length(user.name) == 3", false],
    ["length(user.name) not in (3)", false],
    ["not length(user.name) in (3)", false],
    ['concat(user.name, "x") != "y"', false],
    ['not concat(user.name, "x") : "y*"', false],
    // Field compared with field is a script too.
    ["user.name != process.name", false],
    ["not user.name == process.name", false],
    // A script inside and/or becomes a bool query: null is false there, and `not` negates that.
    ['not (length(user.name) == 3 and process.name == "bash")', true],
    ["not (length(user.name) == 3 or length(user.name) != 3)", true],
    // Field queries are must_not under not, as before.
    ['not startsWith(user.name, "r")', true],
    ['not cidrmatch(user.ip, "10.0.0.0/8")', true],
    // Present values are unaffected.
    ["length(process.name) != 3", true],
    ["not length(process.name) == 3", true],
    ["process.name != process.executable", true],
  ];
  it.each(rows)("%s → %s", (where, expected) => {
    expect(holds(where, doc)).toBe(expected);
  });
});
