/**
 * Generality: rule files in the shapes Elastic's Linux rules take (optional `?field`s,
 * like~, args_count, regex~ on a working directory, sequences, other categories, KQL),
 * written for these tests. Lenient loading reports each rule that cannot run with its
 * reason, the rest run, and the runnable ones decide real-looking exec documents.
 */
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { ProcessInfo, ProcessView } from "../../../src/engine/rule.js";
import type { ExecEvent } from "../../../src/sensor/events.js";
import { loadRuleCatalog } from "../../../src/rules/catalog.js";
import { elasticRule } from "../../../src/rules/elastic/rule.js";
import { loadElasticRules } from "../../../src/rules/elastic/loader.js";

const dir = fileURLToPath(new URL("./fixtures/linux-like/", import.meta.url));

function exec(filename: string, args: string[]): ExecEvent {
  return {
    kind: "exec", timeNs: 1, timeMs: 1,
    task: { pid: 20, tid: 20, ppid: 10, uid: 0, gid: 0, cgroupId: 1, startNs: 2, comm: "x", parentComm: "bash" },
    filename, filenameTruncated: false, args, argsRaw: "", argsTruncated: false, loginUid: 0, stdio: null,
  };
}

function view(parentExe: string, cwd?: string): ProcessView {
  const name = parentExe.slice(parentExe.lastIndexOf("/") + 1);
  const parent: ProcessInfo = { pid: 10, ppid: 1, startNs: 1, executable: parentExe, name, args: [name], uid: 0, comm: name, cgroupId: 1, exited: false };
  return { get: (pid) => (pid === 10 ? parent : undefined), ancestors: () => [], workingDirectory: () => cwd };
}

describe("Linux-like Elastic rules", () => {
  const results = loadElasticRules([dir], { lenient: true });
  const byId = new Map(results.filter((r) => r.rule).map((r) => [r.rule!.meta.id, elasticRule(r.rule!)]));
  const fires = (id: string, event: ExecEvent, processes: ProcessView) =>
    byId.get(id)!.evaluate(event, { processes, now: () => 0 }) != null;

  it("runs the single-event process rules and skips the rest, each with its reason", () => {
    const status = Object.fromEntries(results.map((r) => [r.source.slice(dir.length), [r.status, r.reason?.replace(/^.*?\.toml(:\d+)?: /, "")]]));
    expect(status).toEqual({
      "a_optional_fields.toml": ["runs", undefined],
      "b_like_args_count.toml": ["runs", undefined],
      "c_working_dir.toml": ["runs", undefined],
      "d_sequence.toml": ["skipped", "EQL: sequence queries are not supported (only single-event queries) (query 1:1)"],
      "e_file.toml": ["skipped", 'event category "file" is not supported (only process)'],
      "f_kuery.toml": ["skipped", 'language "kuery" is not supported (only eql)'],
      "g_unprovided.toml": ["runs", undefined],
    });
  });

  it("the catalog names the fields a runnable rule reads that sockeye never provides", () => {
    const { statuses } = loadRuleCatalog({ rulePaths: [dir], lenient: true });
    expect(statuses.find((s) => s.id === "fx-unprovided")?.unprovidedFields).toEqual(["process.entry_leader.entry_meta.type"]);
    expect(statuses.find((s) => s.id === "fx-optional")?.unprovidedFields).toBeUndefined();
  });

  it("?field: matches a dash-led argument, and the optional parent executable excludes apt", () => {
    // A fresh event each time: the ECS document is cached per event object.
    const curl = () => exec("/usr/bin/curl", ["curl", "--socks5-hostname", "127.0.0.1:9050", "http://x"]);
    expect(fires("fx-optional", curl(), view("/usr/bin/bash"))).toBe(true);
    expect(fires("fx-optional", curl(), view("/usr/bin/apt"))).toBe(false);
    expect(fires("fx-optional", exec("/usr/bin/curl", ["curl", "http://x"]), view("/usr/bin/bash"))).toBe(false);
  });

  it("like~ and args_count", () => {
    expect(fires("fx-like", exec("/usr/bin/base64", ["BASE64", "-d", "f"]), view("/bin/sh"))).toBe(true);
    expect(fires("fx-like", exec("/usr/bin/base64", ["base64", "-d"]), view("/bin/sh"))).toBe(false);
    expect(fires("fx-like", exec("/usr/bin/base64", ["base64", "-d", "f"]), view("/usr/bin/python3"))).toBe(false);
  });

  it("working directory and regex~ on the executable", () => {
    expect(fires("fx-cwd", exec("/tmp/.x1", ["./.x1"]), view("/usr/bin/bash", "/tmp"))).toBe(true);
    expect(fires("fx-cwd", exec("/tmp/.x1", ["./.x1"]), view("/usr/bin/bash", "/home/u"))).toBe(false);
    expect(fires("fx-cwd", exec("/tmp/.x1", ["./.x1"]), view("/usr/bin/bash", undefined))).toBe(false);
    expect(fires("fx-cwd", exec("/tmp/x1", ["./x1"]), view("/usr/bin/bash", "/tmp"))).toBe(false);
  });
});
