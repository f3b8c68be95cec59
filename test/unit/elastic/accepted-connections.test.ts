/**
 * Accepted connections (network / start / connection_accepted): the kernel record decoded,
 * its ECS document (the client in destination.*, the server's end in source.*, as Defend's
 * Linux events name a socket's ends), a rule of our
 * own in the shape of Elastic's web-server rule (a server's exec, then a connection it
 * accepted, by process.entity_id), and the switch that keeps accepts in the kernel unless a
 * loaded rule reads them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, ProcessTable, type SensorEvent } from "sockeye";
import { captureLine, readCapture } from "sockeye/capture";
import { getField } from "../../../src/eql/compile.js";
import type { ProcessView } from "../../../src/engine/rule.js";
import { loadRuleCatalog, readsAcceptedConnections } from "../../../src/rules/catalog.js";
import { buildAcceptEcsDocument, buildConnectEcsDocument } from "../../../src/rules/elastic/ecs-network.js";
import { loadElasticRules } from "../../../src/rules/elastic/loader.js";
import { elasticRule } from "../../../src/rules/elastic/rule.js";
import { decodeBatch } from "../../../src/sensor/decode.js";
import type { AcceptEvent, ConnectEvent, ExecEvent, TaskContext } from "../../../src/sensor/events.js";
import { writeEqlRules } from "../../fixtures/eql-rule-files.js";
import { batchOf, encodeRecord } from "../sensor/record-encoder.js";

const TICK_NS = 10_000_000;
const scratch = mkdtempSync(join(tmpdir(), "sockeye-accept-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const RULES = (() => {
  const dir = mkdtempSync(join(scratch, "rules-"));
  const rules: Record<string, string> = {
    "acc-dev-server": `sequence by process.entity_id with maxspan=1m
  [process where event.type == "start" and process.name : "php*" and process.command_line like "*-S*"]
  [network where event.type == "start" and event.action == "connection_accepted"]`,
    "acc-from-outside": `network where event.action == "connection_accepted" and not cidrmatch(destination.ip, "127.0.0.0/8", "::1") and source.port == 8080`,
  };
  return writeEqlRules(dir, rules);
})();
const ourRules = () => loadElasticRules([RULES]).map((result) => elasticRule(result.rule!));

const task = (over: Partial<TaskContext> = {}): TaskContext => ({
  pid: 700, tid: 700, ppid: 1, uid: 33, gid: 33, cgroupId: 1, startNs: 700 * TICK_NS, comm: "php", parentComm: "bash", ...over,
});

function phpServer(timeNs = 1e9): ExecEvent {
  const args = ["php", "-S", "0.0.0.0:8080"];
  return {
    kind: "exec", timeNs, timeMs: timeNs / 1e6, task: task(), filename: "/usr/bin/php", filenameTruncated: false, args,
    argsRaw: Buffer.from(args.map((a) => `${a}\0`).join("")).toString("base64"), argsTruncated: false, loginUid: 1000, stdio: null, capabilities: null,
  };
}

function accepted(remote = "203.0.113.9", timeNs = 2e9, t = task()): AcceptEvent {
  return {
    kind: "accept", timeNs, timeMs: timeNs / 1e6, task: t, fd: 4, socketIno: 99, family: "inet",
    local: { address: "10.0.0.5", port: 8080 }, remote: { address: remote, port: 51000 },
  };
}

describe("accepted connections", () => {
  it("decode from the kernel's bytes, IPv4 and IPv6", () => {
    const events: AcceptEvent[] = [
      accepted(),
      { ...accepted(), family: "inet6", local: { address: "::1", port: 8080 }, remote: { address: "::ffff:192.0.2.1", port: 40000 } },
    ];
    const decoded = decodeBatch(batchOf(events.map((e) => encodeRecord(e))), 0);
    expect(decoded.dropped).toEqual({});
    expect(decoded.events).toEqual(events);
  });

  it("make the document Elastic Defend sends: connection_accepted, the server's end as source, the client as destination, ingress", () => {
    const doc = buildAcceptEcsDocument({ ...accepted(), remote: { address: "::ffff:203.0.113.9", port: 51000 } }, new ProcessTable());
    expect(doc).toMatchObject({
      event: { category: ["network"], type: ["start"], action: "connection_accepted", kind: "event", outcome: "success" },
      process: { pid: 700, name: "php" },
      source: { ip: "10.0.0.5", address: "10.0.0.5", port: 8080 },
      destination: { ip: "203.0.113.9", address: "203.0.113.9", port: 51000 },
      network: { direction: "ingress", type: "ipv4", transport: "tcp" },
      user: { id: "33" },
    });
  });

  it("network documents carry the process's working directory, read when a rule asks, for the pid and start time of the event", () => {
    const asked: [number, number | undefined][] = [];
    const view: ProcessView = { get: () => undefined, ancestors: () => [], workingDirectory: (pid, startNs) => (asked.push([pid, startNs]), "/srv/www") };
    const connect: ConnectEvent = {
      kind: "connect", timeNs: 1, timeMs: 1, task: task(), fd: 3, result: 0, family: "inet", familyNumber: 2, socketType: "stream", protocol: 6,
      source: "lsm", remote: { address: "192.0.2.7", port: 443 }, unixPath: null, socketIno: 5, socketOnFds: [],
    };
    const docs = [buildAcceptEcsDocument(accepted(), view), buildConnectEcsDocument(connect, view)];
    expect(asked).toEqual([]);
    expect(docs.map((doc) => getField(doc, "process.working_directory"))).toEqual(["/srv/www", "/srv/www"]);
    expect(asked).toEqual([[700, 700 * TICK_NS], [700, 700 * TICK_NS]]);
  });

  it("complete the web-server sequence: the server's exec, then a connection it accepted; an outbound connect does not", () => {
    const run = (events: SensorEvent[]) => {
      const table = new ProcessTable();
      const engine = new Engine({ rules: ourRules(), processes: table, fold: false, hostName: "h", now: () => 0 });
      return events.flatMap((event) => { table.apply(event); return engine.handle(event); }).map((f) => f.rule.id).sort();
    };
    expect(run([phpServer(), accepted()])).toEqual(["acc-dev-server", "acc-from-outside"]);
    expect(run([phpServer(), accepted("127.0.0.1")])).toEqual(["acc-dev-server"]);
    const connect: ConnectEvent = {
      kind: "connect", timeNs: 2e9, timeMs: 2e3, task: task(), fd: 3, result: 0, family: "inet", familyNumber: 2, socketType: "stream",
      protocol: 6, source: "lsm", remote: { address: "203.0.113.9", port: 8080 }, unixPath: null, socketIno: 5, socketOnFds: [],
    };
    expect(run([phpServer(), connect])).toEqual([]);
    // Another process's accept does not complete the server's sequence.
    expect(run([phpServer(), accepted("127.0.0.1", 2e9, task({ pid: 800, tid: 800, startNs: 800 * TICK_NS }))])).toEqual([]);
  });

  it("are read only by rules that ask for them: those turn the sensor's accept records on, the default rules do not", () => {
    const kinds = Object.fromEntries(ourRules().map((rule) => [rule.meta.id, [...rule.kinds].sort()]));
    expect(kinds).toEqual({ "acc-dev-server": ["accept", "exec", "fork"], "acc-from-outside": ["accept"] });
    expect(readsAcceptedConnections(ourRules())).toBe(true);
    expect(readsAcceptedConnections(loadRuleCatalog({ commandRelay: true }).rules)).toBe(false);
    const { statuses } = loadRuleCatalog({ rulePaths: [RULES] });
    expect(statuses.filter((s) => s.id?.startsWith("acc-")).map((s) => [s.id, s.status, s.neverFires, s.unprovidedFields])).toEqual([
      ["acc-dev-server", "runs", undefined, undefined],
      ["acc-from-outside", "runs", undefined, undefined],
    ]);
    // `sockeye rules` says what such a rule costs the sensor.
    expect(statuses.find((s) => s.id === "acc-dev-server")?.notes).toEqual([expect.stringMatching(/^connection_accepted: the sensor reports accepted connections only while a loaded rule reads them/)]);
  });

  it("replay from a capture as they were recorded", async () => {
    const replayed: SensorEvent[] = [];
    for await (const e of readCapture(Readable.from([captureLine(accepted())]))) replayed.push(e);
    expect(replayed).toEqual([accepted()]);
  });
});
