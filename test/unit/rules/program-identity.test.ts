/**
 * Identifying a program by what it is: the evidence each case is named by (name, argv[0], a
 * busybox applet, the program ld.so loads, a build-id, a content digest), read through the
 * process's own view of its program (the host's pathSeenBy), never the exec's filename
 * resolved in the daemon.
 */
import { describe, expect, it } from "vitest";
import { Engine, ProcessTable, createRelay001Rule, createTrc101Rule, type AnyRule, type BuildIdLook, type DigestLook, type Finding, type HostView } from "sockeye";
import { identifyProgram, InterpreterContents, type ContentLook } from "../../../src/rules/stdio/interpreters.js";
import { at, connectedOut, holds, inet, pipe, proc, silentLogger, start, tty } from "../engine/fixtures.js";
import { fakeHost, type FakeHost } from "../host/fake-host.js";

const DASH_ID = "be6397dd";
/** A content look that knows one file as a shell by build-id, as the process names it. */
const knows = (path: string | undefined): ContentLook => (p) => (p === path ? { family: "shell", by: "build_id" } : undefined);

describe("identifyProgram: which evidence names the interpreter", () => {
  const cases: { exe: string; args: string[]; content?: ContentLook; family: string | undefined; by: string; ownArgs?: string[] }[] = [
    { exe: "/usr/bin/python3.11", args: ["python3"], family: "python", by: "name" },
    { exe: "/proc/self/exe", args: ["sh"], family: "shell", by: "argv0" },
    { exe: "/bin/busybox", args: ["/bin/busybox", "sh", "-i"], family: "shell", by: "applet", ownArgs: ["sh", "-i"] },
    { exe: "/bin/busybox", args: ["ash"], family: "shell", by: "applet", ownArgs: ["ash"] },
    // A renamed copy runs the applet dispatcher when argv[0] starts with "busybox".
    { exe: "/tmp/q", args: ["busybox.x", "sh"], family: "shell", by: "applet", ownArgs: ["sh"] },
    // busybox nc is not a shell, whatever its arguments run later.
    { exe: "/bin/busybox", args: ["busybox", "nc", "127.0.0.1", "4444", "-e", "/bin/busybox", "sh"], content: knows(undefined), family: undefined, by: "none" },
    { exe: "/lib64/ld-linux-x86-64.so.2", args: ["/lib64/ld-linux-x86-64.so.2", "/bin/sh", "-i"], family: "shell", by: "loader", ownArgs: ["/bin/sh", "-i"] },
    { exe: "/lib64/ld-linux-x86-64.so.2", args: ["ld.so", "--argv0", "x", "./y"], content: knows("./y"), family: "shell", by: "loader", ownArgs: ["./y"] },
    { exe: "/lib64/ld-linux-x86-64.so.2", args: ["ld.so", "/usr/bin/id"], content: knows(undefined), family: undefined, by: "none" },
    { exe: "./x", args: ["./x"], content: knows(undefined), family: "shell", by: "build_id" },
    { exe: "/dev/fd/3", args: ["3"], content: (p) => (p === undefined ? { family: "shell", by: "content" } : undefined), family: "shell", by: "content" },
    { exe: "/usr/sbin/sshd", args: ["sshd", "-R"], content: () => undefined, family: undefined, by: "none" },
  ];
  for (const c of cases) {
    it(`${c.args.join(" ")} (${c.exe}): ${c.family ?? "no interpreter"} by ${c.by}`, () => {
      const identity = identifyProgram(c.exe, c.args, c.content);
      expect({ family: identity.family, by: identity.by }).toEqual({ family: c.family, by: c.by });
      if (c.ownArgs !== undefined) expect(identity.args).toEqual(c.ownArgs);
    });
  }
});

/** A host where the process's program (pid 10, /proc/10/exe) has build-id `exeId`, and /bin/dash DASH_ID. */
function hostWith(exeId: BuildIdLook, exeDigest: DigestLook = { status: "unreadable" }): FakeHost & { hashed: string[] } {
  const hashed: string[] = [];
  return {
    ...fakeHost(),
    hashed,
    regularFile: (path) => (path === "/bin/dash" ? "/usr/bin/dash" : undefined),
    pathSeenBy: (pid, path) => path ?? `/proc/${pid}/exe`,
    // Pid 10 is still the process the events name; any other pid was reused meanwhile.
    liveFacts: (pid) => (pid === 10 ? { euid: 0, egid: 0, sid: 1, pgid: 1, ttyNr: 0 } : undefined),
    buildId: (path) => (path === "/usr/bin/dash" ? { status: "found", buildId: DASH_ID } : path === "/proc/10/exe" ? exeId : { status: "unreadable" }),
    fileDigest: (path) => {
      hashed.push(path);
      return path === "/usr/bin/dash" ? { status: "complete", sha256: "d" } : path === "/proc/10/exe" ? exeDigest : { status: "unreadable" };
    },
  };
}

describe("InterpreterContents: build-id first, a whole-file digest only without one", () => {
  const contents = () => new InterpreterContents(["/bin"]);
  it("a padded copy keeps the build-id of the shell it copies; no file is hashed", () => {
    const host = hostWith({ status: "found", buildId: DASH_ID });
    expect(contents().identify("/proc/10/exe", host)).toEqual({ family: "shell", by: "build_id" });
    expect(host.hashed).toEqual([]);
  });
  it("a build-id that is no interpreter's: not one, and not hashed (an identical copy would carry the same note)", () => {
    const host = hostWith({ status: "found", buildId: "0123" });
    expect(contents().identify("/proc/10/exe", host)).toBeUndefined();
    expect(host.hashed).toEqual([]);
  });
  it("a file without a build-id is hashed, and matched against interpreters without one", () => {
    const host = { ...hostWith({ status: "none" }, { status: "complete", sha256: "d" }), buildId: (): BuildIdLook => ({ status: "none" }) };
    expect(contents().identify("/proc/10/exe", host)).toEqual({ family: "shell", by: "content" });
  });
  it("a note past the read budget is counted as an incomplete look", () => {
    const c = contents();
    expect(c.identify("/proc/10/exe", hostWith({ status: "incomplete", reason: "byte_budget" }))).toBeUndefined();
    expect(c.incompleteLooks).toBe(1);
  });
});

function findings(rule: AnyRule, host: HostView, events: ReturnType<typeof start>): Finding[] {
  const engine = new Engine({ rules: [rule], processes: new ProcessTable({ host }), hostName: "h", now: () => at(0), logger: silentLogger });
  return events.flatMap((e) => engine.handle(e));
}
const verdictOf = (f: Finding | undefined) => (f as unknown as { sockeye: { verdict: { reason?: string; identified_by: string } } } | undefined)?.sockeye.verdict;

describe("findings say which evidence decided (sockeye.verdict.identified_by)", () => {
  const shellCopy = proc(10, 1, "x");
  it("TRC-101: `nc -e ./x`, a padded copy of dash, read through the process's own program", () => {
    const events = start(shellCopy, "./x", ["./x"], [inet(7), inet(7), inet(7)], 0);
    const [finding, ...rest] = findings(createTrc101Rule(), hostWith({ status: "found", buildId: DASH_ID }), events);
    expect(rest).toEqual([]);
    expect(verdictOf(finding)).toMatchObject({ reason: "shell_on_socket", identified_by: "build_id" });
    // The same exec where the pid no longer is that process: what /proc shows is another's, and a name says nothing.
    const reused = { ...hostWith({ status: "found", buildId: DASH_ID }), liveFacts: () => undefined };
    expect(findings(createTrc101Rule(), reused, events)).toEqual([]);
  });
  it("TRC-101: busybox sh on the socket is named by its applet", () => {
    const events = start(proc(12, 1, "busybox"), "/bin/busybox", ["/bin/busybox", "sh", "-i"], [inet(7), inet(7), inet(7)], 0);
    expect(verdictOf(findings(createTrc101Rule(), fakeHost(), events)[0])).toMatchObject({ reason: "shell_on_socket", identified_by: "applet" });
  });
  it("RELAY-001: a renamed shell driven through pipes by a relay is named by its build-id", () => {
    const host = hostWith({ status: "found", buildId: DASH_ID });
    const relay = proc(20, 1, "ncat");
    host.world.set(20, [holds(3, "sock:500"), holds(4, "pipe:100", "write"), holds(5, "pipe:101", "read")]);
    host.world.set(10, [holds(0, "pipe:100", "read"), holds(1, "pipe:101", "write")]);
    const events = [connectedOut(relay, 500, 0), ...start({ ...shellCopy, ppid: 20 }, "/tmp/r/x", ["/tmp/r/x"], [pipe(100), pipe(101), tty(1)], 1)];
    const [finding, ...rest] = findings(createRelay001Rule(), host, events);
    expect(rest).toEqual([]);
    expect(verdictOf(finding)).toEqual({ identified_by: "build_id" });
  });
});
