/**
 * The one ECS process builder: findings and the Elastic exec document describe a process and
 * its parent the same way, under one parent-lookup policy (the kernel's ppid; the table's
 * facts only from an entry that started no later than the child).
 */
import { describe, expect, it } from "vitest";
import { ProcessTable, TRC101_META } from "sockeye";
import { buildExecEcsDocument } from "sockeye/eql";
import { buildFinding } from "../../../src/engine/finding.js";
import { ecsProcess, entityId } from "../../../src/process/ecs-process.js";
import { connect, exec, task } from "../engine/fixtures.js";

function tableWith(...events: Parameters<ProcessTable["apply"]>[0][]): ProcessTable {
  const table = new ProcessTable();
  for (const event of events) table.apply(event);
  return table;
}

const sshd = exec({ task: { pid: 4000, ppid: 1, startNs: 1_000_000_000, comm: "sshd" }, filename: "/usr/sbin/sshd", args: ["sshd: alice"] });
const bash = exec({ task: { pid: 4242, ppid: 4000, startNs: 5_000_000_000 }, filename: "/usr/bin/bash", args: ["bash", "-i"] });

describe("ECS process builder", () => {
  it("gives a finding and the Elastic document the same parent", () => {
    const table = tableWith(sshd, bash);
    const finding = buildFinding({ meta: TRC101_META, event: connect({ fd: 0 }), detection: {}, processes: table, hostName: "h", createdMs: 0 });
    const doc = buildExecEcsDocument(bash, table) as { process: { parent: unknown } };
    const parent = { pid: 4000, name: "sshd", executable: "/usr/sbin/sshd", args: ["sshd: alice"], args_count: 1, command_line: "sshd: alice", entity_id: entityId(4000, 1_000_000_000, "") };
    expect(finding.process.parent).toEqual(parent);
    // The document also holds the parent's /proc facts as Deferred values, read on use.
    expect(doc.process.parent).toMatchObject(parent);
  });

  it("takes the kernel's ppid over the one the table recorded (a reparented process)", () => {
    const init = exec({ task: { pid: 1, ppid: 0, startNs: 100, comm: "systemd" }, filename: "/usr/lib/systemd/systemd" });
    const table = tableWith(init, sshd, bash);
    const reparented = task({ ppid: 1, parentComm: "systemd" });
    expect(ecsProcess(reparented, table).parent).toMatchObject({ pid: 1, name: "systemd", executable: "/usr/lib/systemd/systemd" });
  });

  it("ignores a table entry for the parent pid that started after the child (a reused pid)", () => {
    const later = exec({ task: { pid: 4000, ppid: 1, startNs: 9_000_000_000, comm: "cron" }, filename: "/usr/sbin/cron" });
    const table = tableWith(later);
    expect(ecsProcess(task(), table).parent).toEqual({ pid: 4000, name: "sshd" });
    expect((buildExecEcsDocument(bash, table) as { process: { parent: unknown } }).process.parent).toEqual({ pid: 4000, name: "sshd" });
  });

  it("falls back to the event's comm and parent comm when the table knows neither", () => {
    expect(ecsProcess(task({ comm: "nc", parentComm: "sh" }), new ProcessTable())).toEqual({
      pid: 4242,
      name: "nc",
      entity_id: entityId(4242, 5_000_000_000, ""),
      thread: { id: 4242 },
      parent: { pid: 4000, name: "sh" },
    });
  });
});
