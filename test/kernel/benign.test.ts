/**
 * The benign corpus: what a normal host does with sockets on stdio, run for real on loopback
 * under the real sensor. TRC-101's precise profile (the default) must give no finding for any
 * of it and count why it stayed quiet; the tracee profile, fed the same events, still reports
 * the SSH logins and service hand-offs (Tracee's own verdict), so the difference between the
 * profiles is itself tested.
 *
 * Programs: Debian's OpenSSH server on a loopback port with throwaway keys (ssh with a command,
 * an ssh -tt login, scp, sftp, git over ssh, a client that only reads the banner),
 * systemd-socket-activate (--inetd and --accept), socat and ncat services, python and node
 * servers handing an accepted socket to a child's stdio, /dev/tcp health checks, curl, wget,
 * tmux and script, and a job agent polling a loopback server (the one allowed finding: RELAY-002's,
 * by design). scripts/setup.sh --dev installs them.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import dgram from "node:dgram";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinRules, type Finding } from "sockeye";
import { PYTHON, PYTHON_PIPE_RELAY, Session, attachEngine, TwoProfiles, collectingListener, commandingListener, exchange, freePort, kernelTier, listening, run, startSshd, type Sshd } from "./harness.js";

const tier = kernelTier();

interface PortedFinding extends Finding {
  source?: { port: number };
  destination?: { port: number };
}


describe.runIf(tier.run)("kernel: benign corpus stays quiet (every built-in rule, TRC-101 precise), Tracee's verdicts still reported (tracee)", () => {
  let session: Session;
  let profiles: TwoProfiles<PortedFinding>;
  const ports = new Set<number>();
  const servers: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-benign-"));
  let sshd: Sshd | undefined;
  let sshPort = 0;
  let httpPort = 0;
  let httpServer: http.Server;

  const ours = (list: PortedFinding[]) =>
    list.filter((f) => f.rule.id === "TRC-101" && (ports.has(f.destination?.port ?? -1) || ports.has(f.source?.port ?? -1)));
  const suppressed = () => profiles.suppressed();
  const sshArgs = () => sshd!.clientOptions;

  beforeAll(async () => {
    session = await Session.open();
    profiles = new TwoProfiles(session);

    sshd = await startSshd();
    sshPort = sshd.port;
    ports.add(sshPort);

    httpServer = http.createServer((_req, res) => res.end("OK\n"));
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    httpPort = (httpServer.address() as net.AddressInfo).port;
    ports.add(httpPort);
  }, 30_000);

  afterAll(async () => {
    for (const s of servers) s.kill("SIGTERM");
    await sshd?.stop();
    await new Promise((resolve) => httpServer?.close(resolve));
    session?.close();
  });

  it("ssh with a command, an ssh -tt login, scp, sftp, git over ssh and a banner probe: no finding", async () => {
    const before = suppressed()["service_handoff"] ?? 0;
    const target = ["-p", String(sshPort), "root@127.0.0.1"];
    const cmd = await run("ssh", [...sshArgs(), ...target, "id -u; echo done"]);
    expect(cmd.stdout, cmd.stderr).toBe("0\ndone\n");
    const login = await run("ssh", [...sshArgs(), "-tt", ...target], "id -u\nexit\n");
    expect(login.status, login.stderr).toBe(0);
    writeFileSync(join(dir, "payload"), "payload\n");
    const scp = await run("scp", [...sshArgs(), "-P", String(sshPort), join(dir, "payload"), `root@127.0.0.1:${join(dir, "copied")}`]);
    expect(scp.status, scp.stderr).toBe(0);
    writeFileSync(join(dir, "sftp-batch"), `get ${join(dir, "copied")} ${join(dir, "fetched")}\n`);
    const sftp = await run("sftp", [...sshArgs(), "-P", String(sshPort), "-b", join(dir, "sftp-batch"), "root@127.0.0.1"]);
    expect(sftp.status, sftp.stderr).toBe(0);
    spawnSync("git", ["init", "-q", "--bare", join(dir, "repo.git")]);
    const git = spawnSync("git", ["clone", "-q", `ssh://root@127.0.0.1:${sshPort}${join(dir, "repo.git")}`, join(dir, "clone")], {
      encoding: "utf8", env: { ...process.env, GIT_SSH_COMMAND: ["ssh", ...sshArgs()].join(" ") },
    });
    expect(git.status, git.stderr).toBe(0);
    const banner = await new Promise<string>((resolve, reject) => {
      const c = net.connect(sshPort, "127.0.0.1");
      c.once("data", (d: Buffer) => { c.destroy(); resolve(d.toString()); });
      c.on("error", reject);
    });
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    await session.settle(1000);

    expect(ours(profiles.precise)).toEqual([]);
    // Each connection's sshd child starts a session (setsid) and its privilege-separated child
    // drops root: change events (docs/rules/elastic.md), which no default rule reads.
    const sshdChanges = session.events.filter((e) => e.kind === "cred_change" && e.task.comm.startsWith("sshd"));
    expect(sshdChanges.some((e) => e.kind === "cred_change" && e.changed.session)).toBe(true);
    // Every connection's re-executed sshd is a counted hand-off: ssh, ssh -tt, scp, sftp, git, banner.
    expect((suppressed()["service_handoff"] ?? 0) - before).toBeGreaterThanOrEqual(6);
    // Tracee's verdict on the same events: sshd with the accepted socket on stdio, ingress.
    const sshd = ours(profiles.tracee).filter((f) => f.destination?.port === sshPort);
    expect(sshd.length).toBeGreaterThanOrEqual(6);
    expect(sshd[0]).toMatchObject({ network: { direction: "ingress" }, process: { name: "sshd" } });
  }, 60_000);

  it("services that hand a connection to a program: systemd-socket-activate, socat, ncat, python and node servers", async () => {
    const services: { name: string; start: (port: number) => ChildProcess }[] = [
      { name: "systemd-socket-activate --accept --inetd", start: (p) => spawn("systemd-socket-activate", ["--accept", "--inetd", "-l", `127.0.0.1:${p}`, "/bin/cat"]) },
      { name: "systemd-socket-activate --accept", start: (p) => spawn("systemd-socket-activate", ["--accept", "-l", `127.0.0.1:${p}`, "/bin/sh", "-c", "cat <&3 >&3"]) },
      { name: "socat EXEC:cat", start: (p) => spawn("socat", [`TCP-LISTEN:${p},bind=127.0.0.1,reuseaddr,fork`, "EXEC:cat"]) },
      { name: "ncat --exec /bin/cat", start: (p) => spawn("ncat", ["-l", "127.0.0.1", String(p), "--keep-open", "--exec", "/bin/cat"]) },
      {
        name: "python server, child with the connection as stdio",
        start: (p) => spawn(PYTHON, ["-c", `import socket,subprocess
s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("127.0.0.1",${p}));s.listen(4)
while True:
    c,_=s.accept();subprocess.Popen(["/bin/cat"],stdin=c,stdout=c).wait();c.close()`]),
      },
      {
        name: "node server, child with the connection as stdio",
        start: (p) => spawn(process.execPath, ["-e", `require("net").createServer((c)=>{require("child_process").spawn("/bin/cat",[],{stdio:[c,c,"ignore"]}).on("exit",()=>c.destroy())}).listen(${p},"127.0.0.1")`]),
      },
    ];
    const before = profiles.precise.length;
    for (const service of services) {
      const port = await freePort();
      ports.add(port);
      const child = service.start(port);
      servers.push(child);
      await listening(port);
      expect(await exchange(port, "ping\n"), service.name).toBe("ping\n");
      child.kill("SIGTERM");
    }
    await session.settle(500);
    expect(ours(profiles.precise).slice(0)).toEqual([]);
    expect(profiles.precise.length - before).toBe(0);
    // The inetd-style hand-offs (systemd --inetd, python, node) are counted as such.
    expect(suppressed()["service_handoff"]).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it("/dev/tcp health checks (cat, head, printf, read, a bare redirection), curl, wget, tmux and script", async () => {
    const p = httpPort;
    const before = { noProgram: suppressed()["no_program"] ?? 0, notAShell: suppressed()["not_a_shell"] ?? 0 };
    const checks = [
      `exec 3<>/dev/tcp/127.0.0.1/${p}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`,
      `exec 3<>/dev/tcp/127.0.0.1/${p}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; head -c 20 <&3`,
      `exec 3<>/dev/tcp/127.0.0.1/${p}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; read -r status <&3; [ -n "$status" ]`,
      `</dev/tcp/127.0.0.1/${p}`,
    ];
    for (const check of checks) {
      const r = await run("bash", ["-c", check]);
      expect(r.status, `${check}: ${r.stderr}`).toBe(0);
    }
    expect((await run("curl", ["-sf", `http://127.0.0.1:${p}/`])).stdout).toBe("OK\n");
    expect((await run("wget", ["-qO-", `http://127.0.0.1:${p}/`])).stdout).toBe("OK\n");
    const sock = join(dir, "tmux.sock");
    expect((await run("tmux", ["-S", sock, "new-session", "-d", `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${p}; printf x >&3; sleep 0.3'`])).status).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    await run("tmux", ["-S", sock, "kill-server"]);
    expect((await run("script", ["-qec", "id -u", "/dev/null"])).status).toBe(0);
    await session.settle(500);

    expect(ours(profiles.precise)).toEqual([]);
    // The shells' own redirections (printf >&3, read <&3, </dev/tcp) ran no program on the
    // socket; cat and head did, and they are no shells.
    expect((suppressed()["no_program"] ?? 0) - before.noProgram).toBeGreaterThanOrEqual(2);
    expect((suppressed()["not_a_shell"] ?? 0) - before.notAShell).toBeGreaterThanOrEqual(2);
    // Tracee's rule fires on the health checks' dups onto stdio.
    expect(ours(profiles.tracee).filter((f) => f.destination?.port === p).length).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it("shells fed by an outbound connection with no way back, and interactive shells behind pty masters: no relay", async () => {
    const p = httpPort;
    const piped = await run("bash", ["-c", `curl -s http://127.0.0.1:${p}/ | sh -c 'cat >/dev/null; echo piped'`]);
    expect(piped.stdout).toBe("piped\n");
    const fed = await run("bash", ["-c", `printf 'echo fed\\n' | sh & curl -s http://127.0.0.1:${p}/ >/dev/null; wait`]);
    expect(fed.stdout).toBe("fed\n");
    const sock = join(dir, "tmux-relay.sock");
    expect((await run("tmux", ["-S", sock, "new-session", "-d", `bash -i`])).status).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    await run("tmux", ["-S", sock, "kill-server"]);
    const login = await run("ssh", [...sshArgs(), "-tt", "-p", String(sshPort), "root@127.0.0.1"], `curl -s http://127.0.0.1:${p}/\nexit\n`);
    expect(login.status, login.stderr).toBe(0);
    await session.settle(500);
  }, 60_000);

  // A CI-runner-like agent: one kept-alive HTTP connection to a loopback job server, three
  // jobs fetched and run with `sh -c`, their output posted back. RELAY-002 (the command relay)
  // has this shape by design — without reading the traffic it is gawk's /inet/tcp
  // (docs/rules/RELAY-002.md) — so it is off by default: the default configuration stays
  // quiet, and the opt-in rule reports the agent exactly once, at medium.
  let agentPort: number;
  it("a polling job agent on loopback: no finding by default; with RELAY-002 turned on, exactly one (medium)", async () => {
    const optInFindings: PortedFinding[] = [];
    attachEngine(session, optInFindings, builtinRules({ commandRelay: true }));
    const jobs = ["uname -s", "echo $((6*7))", "id -u | tr -d '\\n'"];
    const results: string[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        if (req.url === "/result") results.push(body);
        res.end(req.url === "/job" ? (jobs.shift() ?? "") : "ok");
      });
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    agentPort = (server.address() as net.AddressInfo).port;
    const before = profiles.precise.length;
    try {
      const agent = await run(PYTHON, ["-c", `
import http.client, subprocess, time
c = http.client.HTTPConnection("127.0.0.1", ${agentPort})
while True:
    c.request("GET", "/job"); job = c.getresponse().read().decode()
    if not job:
        time.sleep(1)  # a real agent keeps polling: the rule looks at live processes
        break
    out = subprocess.run(job, shell=True, capture_output=True).stdout
    c.request("POST", "/result", body=out); c.getresponse().read()
`]);
      expect(agent.status, agent.stderr).toBe(0);
      expect(results).toEqual(["Linux\n", "42\n", "0"]);
      await session.settle(500);
      expect(profiles.precise.slice(before)).toEqual([]);
      const found = optInFindings.filter((f) => f.destination?.port === agentPort || f.source?.port === agentPort);
      expect(found.map((f) => [f.rule.id, f.rule.severity, f.destination?.port])).toEqual([["RELAY-002", "medium", agentPort]]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 30_000);

  it("no rule fires on any of it: every built-in rule of the default configuration stays at zero findings", () => {
    expect(profiles.precise).toEqual([]);
  });
});

/**
 * The benign side of "a shell is what it does" (issue 26): what SHELL-001's evidence must leave
 * quiet, run for real next to the attacks it catches (test/kernel/evasions.test.ts): commands
 * fed from a connection with no way back (`curl … | sh`), logins and scripts fed over ssh (the
 * connection was accepted by sshd), ssh through a ProxyCommand nc, a file sent with `tar c | ncat`,
 * a socat port forward, and two job agents that run `sh -c` jobs fetched over HTTP (one on an
 * old kept-alive connection, one connecting per job). Every default rule stays at zero.
 */
describe.runIf(tier.run)("kernel: benign corpus, behavioural side (SHELL-001 and every default rule at zero)", () => {
  let session: Session;
  const findings: PortedFinding[] = [];
  /** RELAY-002, opt-in, fed the same events: measured on the agents, not asserted quiet. */
  const relay002: PortedFinding[] = [];
  const servers: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-benign-behave-"));
  let sshd: Sshd | undefined;
  let sshPort = 0;
  const sshArgs = () => sshd!.clientOptions;

  beforeAll(async () => {
    session = await Session.open();
    attachEngine(session, findings);
    attachEngine(session, relay002, builtinRules({ commandRelay: true }).filter((r) => r.meta.id === "RELAY-002"));
    sshd = await startSshd();
    sshPort = sshd.port;
  }, 30_000);

  afterAll(async () => {
    for (const s of servers) s.kill("SIGTERM");
    await sshd?.stop();
    session?.close();
  });

  it("ssh through ProxyCommand nc, ssh host python3 - fed a script, ssh host 'sh -s' < script: no finding", async () => {
    const target = ["-p", String(sshPort), "root@127.0.0.1"];
    const proxied = await run("ssh", [...sshArgs(), "-o", `ProxyCommand=nc 127.0.0.1 ${sshPort}`, ...target, "id -u; uname -s"]);
    expect(proxied.stdout, proxied.stderr).toBe("0\nLinux\n");
    const py = await run("ssh", [...sshArgs(), ...target, "python3 -"], "import os\nos.system('id -u')\nos.system('uname -s')\n");
    expect(py.stdout, py.stderr).toBe("0\nLinux\n");
    const sh = await run("ssh", [...sshArgs(), ...target, "sh -s"], "id -u\nuname -s\n");
    expect(sh.stdout, sh.stderr).toBe("0\nLinux\n");
    await session.settle(500);
    expect(findings).toEqual([]);
  }, 60_000);

  it("curl … | sh from a local server, tar c | ncat to a listener, a socat port forward with curl through it: no finding", async () => {
    const server = http.createServer((req, res) => res.end(req.url === "/install.sh" ? "id -u\nuname -s\necho installed\n" : "OK\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const httpPort = (server.address() as net.AddressInfo).port;
    const sink = await collectingListener("127.0.0.1");
    const sinkPort = sink.port;
    try {
      const piped = await run("bash", ["-c", `curl -fsS http://127.0.0.1:${httpPort}/install.sh | sh`]);
      expect(piped.stdout, piped.stderr).toBe("0\nLinux\ninstalled\n");
      writeFileSync(join(dir, "payload"), "x".repeat(100_000));
      const tar = await run("bash", ["-c", `tar c -C ${dir} payload | ncat --send-only 127.0.0.1 ${sinkPort}`]);
      expect(tar.status, tar.stderr).toBe(0);
      const forwardPort = await freePort();
      const socat = spawn("socat", [`TCP-LISTEN:${forwardPort},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${httpPort}`]);
      servers.push(socat);
      await listening(forwardPort);
      for (let i = 0; i < 3; i++) expect((await run("curl", ["-fsS", `http://127.0.0.1:${forwardPort}/`])).stdout).toBe("OK\n");
      socat.kill("SIGTERM");
      await session.settle(500);
      expect(sink.bytes()).toBeGreaterThanOrEqual(100_000);
      expect(findings).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await sink.close();
    }
  }, 60_000);

  /**
   * Two job agents: a long-lived service agent that connected long before its jobs (an old
   * kept-alive connection) and polls it, and one that connects per job. Both run their jobs with
   * `sh -c` (the second through `busybox sh -c`) and send the output back in a request. The
   * jobs' stdin is the agent's own, not fed from the connection: SHELL-001 has no input evidence.
   */
  it("two job agents (an old kept-alive connection polled; a connection per job): no finding by default", async () => {
    const jobs = ["uname -s", "echo $((6*7))", "id -u"];
    const queue = [...jobs, ...jobs];
    const results: string[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        if (req.url === "/result") results.push(body.trim());
        res.end(req.url === "/job" ? (queue.shift() ?? "") : "ok");
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const longLived = await run(PYTHON, ["-c", `
import http.client, subprocess, time
c = http.client.HTTPConnection("127.0.0.1", ${port}); c.connect()
time.sleep(2)  # the connection is old by the first job: made long before it
for _ in range(3):
    c.request("GET", "/job"); job = c.getresponse().read().decode()
    out = subprocess.run(["/bin/sh", "-c", job], capture_output=True).stdout
    c.request("POST", "/result", body=out); c.getresponse().read()
    time.sleep(0.3)
time.sleep(1)
`]);
      expect(longLived.status, longLived.stderr).toBe(0);
      const perJob = await run(PYTHON, ["-c", `
import http.client, subprocess, time
for _ in range(3):
    c = http.client.HTTPConnection("127.0.0.1", ${port}); c.request("GET", "/job"); job = c.getresponse().read().decode(); c.close()
    out = subprocess.run(["/bin/busybox", "sh", "-c", job], capture_output=True).stdout
    c = http.client.HTTPConnection("127.0.0.1", ${port}); c.request("POST", "/result", body=out); c.getresponse().read(); c.close()
    time.sleep(0.3)
time.sleep(1)
`]);
      expect(perJob.status, perJob.stderr).toBe(0);
      expect(results).toEqual(["Linux", "42", "0", "Linux", "42", "0"]);
      await session.settle(500);
      expect(findings).toEqual([]);
      // The measurement behind RELAY-002 staying opt-in (docs/rules/RELAY-002.md): the agent on
      // its old connection has the command relay's shape exactly; the per-job agent does not.
      const onPort = relay002.filter((f) => f.destination?.port === port);
      console.log(`RELAY-002 (opt-in) on the job agents: ${onPort.length} finding(s): ${onPort.map((f) => f.process.name).join(", ")}`);
      expect(onPort.length).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 60_000);

  it("no default rule fires on any of it", () => {
    expect(findings).toEqual([]);
  });
});

/**
 * RELAY-001 without a window (issue 26): what a window used to keep quiet must stay quiet by
 * structure. Forwarders, services handing a connection to a script, git's daemon, jump hosts,
 * and a long-lived agent whose connection is older than any window the rule had and that runs
 * jobs as `sh -c`: no finding. An agent that runs an interactive shell for its remote has a
 * relay's very structure: it is reported unless named in rules.relay_agents, and then each
 * suppression is counted under the entry's reason.
 */
describe.runIf(tier.run)("kernel: benign corpus for relays without a window (RELAY-001, default configuration)", () => {
  let session: Session;
  const findings: PortedFinding[] = [];
  const servers: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sockeye-benign-relay-"));
  let httpServer: http.Server;
  let httpPort = 0;

  beforeAll(async () => {
    session = await Session.open();
    attachEngine(session, findings);
    httpServer = http.createServer((_req, res) => res.end("OK\n"));
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    httpPort = (httpServer.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    for (const s of servers) s.kill("SIGTERM");
    await new Promise((resolve) => httpServer?.close(resolve));
    session?.close();
  });

  const serve = async (cmd: string, args: string[], port: number, cwd?: string) => {
    servers.push(spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"], ...(cwd !== undefined ? { cwd } : {}) }));
    await listening(port);
  };

  it("a socat port forward with curl through it", async () => {
    const p = await freePort();
    await serve("socat", [`TCP-LISTEN:${p},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${httpPort}`], p);
    const r = await run("curl", ["-s", `http://127.0.0.1:${p}/`]);
    expect(r.stdout).toBe("OK\n");
  }, 30_000);

  it("git daemon with git clone git://127.0.0.1/…", async () => {
    const repo = join(dir, "repo.git");
    expect(spawnSync("git", ["init", "-q", "--bare", repo]).status).toBe(0);
    const work = join(dir, "work");
    const commit = spawnSync("bash", ["-c", `git init -q ${work} && cd ${work} && echo hi > f && git add f && git -c user.name=t -c user.email=t@t commit -qm x && git push -q ${repo} HEAD:refs/heads/main`], { encoding: "utf8" });
    expect(commit.status, commit.stderr).toBe(0);
    const p = await freePort();
    await serve("git", ["daemon", "--reuseaddr", `--base-path=${dir}`, "--export-all", "--listen=127.0.0.1", `--port=${p}`, dir], p);
    const clone = await run("git", ["clone", "-q", "-b", "main", `git://127.0.0.1:${p}/repo.git`, join(dir, "clone")]);
    expect(clone.status, clone.stderr).toBe(0);
    expect(existsSync(join(dir, "clone", "f"))).toBe(true);
  }, 30_000);

  it("a shell-script CGI under python3 -m http.server --cgi", async () => {
    // http.server runs a CGI as nobody when started by root: the tree must be theirs to read.
    const web = mkdtempSync(join(tmpdir(), "sockeye-benign-cgi-"));
    chmodSync(web, 0o755);
    mkdirSync(join(web, "cgi-bin"), { recursive: true, mode: 0o755 });
    writeFileSync(join(web, "cgi-bin", "hello.sh"), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "cgi $(id -u)"\n');
    chmodSync(join(web, "cgi-bin", "hello.sh"), 0o755);
    const p = await freePort();
    await serve(PYTHON, ["-m", "http.server", "--cgi", "--bind", "127.0.0.1", String(p)], p, web);
    const r = await run("curl", ["-s", `http://127.0.0.1:${p}/cgi-bin/hello.sh`]);
    expect(r.stdout).toMatch(/^cgi \d+/);
  }, 30_000);

  it("a shell script run by systemd-socket-activate --inetd", async () => {
    // Debian's systemd package ships it (scripts/packages.sh's test list); a host without it fails here, loudly.
    expect(spawnSync("systemd-socket-activate", ["--version"]).status, "systemd-socket-activate is not installed (Debian package systemd)").toBe(0);
    const script = join(dir, "inetd.sh");
    writeFileSync(script, '#!/bin/sh\nread line\necho "inetd got $line"\n');
    chmodSync(script, 0o755);
    const p = await freePort();
    await serve("systemd-socket-activate", ["--inetd", "-a", "-l", `127.0.0.1:${p}`, script], p);
    expect(await exchange(p, "hello\n")).toBe("inetd got hello\n");
  }, 30_000);

  it("ssh through a jump host (-J) and a ProxyCommand nc", async () => {
    const sshd = await startSshd();
    const p = sshd.port;
    const opts = sshd.clientOptions;
    try {
      const proxied = await run("ssh", [...opts, "-o", `ProxyCommand=nc.traditional 127.0.0.1 ${p}`, "-p", String(p), "root@127.0.0.1", "echo proxied"]);
      expect(proxied.stdout, proxied.stderr).toBe("proxied\n");
      // -J passes no options to the jump's own ssh: a config file carries them.
      // The jump is named localhost (IPv4 only), the target 127.0.0.1: one sshd, and ssh refuses a jump to the very host and port it jumps to.
      writeFileSync(join(dir, "ssh_config"), `Host *\n  AddressFamily inet\n  IdentityFile ${sshd.clientKey}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n`);
      const jumped = await run("ssh", ["-F", join(dir, "ssh_config"), "-J", `root@localhost:${p}`, "-p", String(p), "root@127.0.0.1", "echo jumped"]);
      expect(jumped.stdout, jumped.stderr).toBe("jumped\n");
    } finally {
      await sshd.stop();
    }
  }, 60_000);

  // UDP connects are relay records now (socat UDP:, ncat -u): a lookup must stay a record.
  it("UDP lookups: getent hosts localhost, a shell fed commands on a pipe that queries a local UDP listener (connected, then by sendto), a line client on pipes using sendto", async () => {
    const udp = dgram.createSocket("udp4");
    udp.on("message", (msg, from) => udp.send(`answer ${msg.toString()}`, from.port, from.address));
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    const port = udp.address().port;
    try {
      const getent = await run("getent", ["hosts", "localhost"]);
      expect(getent.stdout).toMatch(/localhost/);
      const query = `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("127.0.0.1", ${port})); s.send(b"q"); s.settimeout(5); print(s.recv(64).decode())`;
      const fed = await run("sh", [], `${PYTHON} -c '${query}'\nsleep 1\n`);
      expect(fed.stdout).toBe("answer q\n");
      // Unconnected sends are relay records too (cgroup/sendmsg, socat UDP-SENDTO:): the same
      // query by sendto from a shell fed on a pipe, and a program on stdio pipes that sends each
      // line it reads to the echo with sendto and prints the answer (not a shell: its input
      // drives no program).
      const sendto = `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(b"q", ("127.0.0.1", ${port})); print(s.recvfrom(64)[0].decode())`;
      const fedSendto = await run("sh", [], `${PYTHON} -c '${sendto}'\nsleep 1\n`);
      expect(fedSendto.stdout).toBe("answer q\n");
      const echoClient = `import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)\nfor line in sys.stdin:\n    s.sendto(line.strip().encode(), ("127.0.0.1", ${port})); print(s.recvfrom(64)[0].decode(), flush=True)`;
      const piped = await run("bash", ["-c", `printf 'a\\nb\\n' | ${PYTHON} -c '${echoClient}' | cat`]);
      expect(piped.stdout).toBe("answer a\nanswer b\n");
    } finally {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
  }, 30_000);

  // A CI-runner-like agent on a raw TCP connection: it connects, idles past any window the
  // rule had (11 s), then runs each job it is sent with `sh -c` and writes the output back.
  it("a long-lived agent with an old connection running jobs as sh -c", async () => {
    const jobs = ["uname -s", "echo $((6*7))"];
    const results: string[] = [];
    const server = net.createServer((s) => {
      s.on("error", () => {});
      setTimeout(() => s.write(jobs.map((j) => `${j}\n`).join("")), 11_000);
      s.on("data", (d: Buffer) => results.push(d.toString()));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const agent = await run(PYTHON, ["-c", `
import socket, subprocess
s = socket.create_connection(("127.0.0.1", ${port}))
f = s.makefile("r")
for _ in range(${jobs.length}):
    job = f.readline().strip()
    s.sendall(subprocess.run(["/bin/sh", "-c", job], stdin=subprocess.DEVNULL, capture_output=True).stdout)
`]);
      expect(agent.status, agent.stderr).toBe(0);
      expect(results.join("")).toBe("Linux\n42\n");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 40_000);

  // An agent that runs an interactive shell for its remote (a web terminal): structure cannot
  // tell it from a relay shell, so it is named in rules.relay_agents. Its own engine, fed the
  // same events: the default engine must report it (proving the case is live), the allowlisted
  // one suppress it under the reason.
  it("an interactive-shell agent: reported by default, suppressed with its reason when named in rules.relay_agents", async () => {
    // As the finding names the relay program (sockeye.relay.program.executable): the path it was run by.
    const exe = PYTHON;
    const allowed: Finding[] = [];
    const allowing = attachEngine(session, allowed, builtinRules({ relay001: { agents: [{ executable: exe, reason: "web terminal agent" }] } }));
    const listener = await commandingListener("127.0.0.1");
    try {
      const agent = await run("timeout", ["-s", "KILL", "20", PYTHON, "-c", `${PYTHON_PIPE_RELAY}
import socket
pipe_relay(socket.create_connection(("127.0.0.1", ${listener.port})))`]);
      expect(await listener.answered, agent.stderr).toBe(true);
      await session.settle();
      const mine = (list: PortedFinding[]) => list.filter((f) => f.destination?.port === listener.port);
      expect(mine(findings).map((f) => f.rule.id)).toEqual(["RELAY-001"]);
      // Not part of the benign corpus' zero: it is the case the allowlist exists for.
      findings.splice(0, findings.length, ...findings.filter((f) => f.destination?.port !== listener.port));
      expect(mine(allowed as PortedFinding[])).toEqual([]);
      expect(allowing.stats().suppressedByRule["RELAY-001"]).toEqual({ "agent:web terminal agent": 1 });
    } finally {
      await listener.close();
    }
  }, 40_000);

  it("no rule fires on any of it", async () => {
    await session.settle(500);
    expect(findings).toEqual([]);
  });
});
