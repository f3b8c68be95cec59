import type { ProbeReport } from "../sensor/sensor.js";

const IA32_TEXT: Record<ProbeReport["features"]["ia32Syscalls"], string> = {
  taken: "taken (an int $0x80 from a test process ran)",
  refused: "refused (an int $0x80 from a test process died with SIGSEGV): nothing to watch there",
  unknown: "unknown (the test process could not run)",
  "not-x86": "none (not x86-64)",
};

/** The human-readable form of `sockeye probe`. */
export function formatProbe(report: ProbeReport): string {
  const f = report.features;
  const yes = (b: boolean) => (b ? "yes" : "no");
  const lines = [
    `kernel        ${f.kernelRelease}`,
    `btf           ${yes(f.btf)}`,
    `lsm           ${f.lsmList || "(unreadable)"}${f.bpfLsm ? "" : "  (no bpf LSM)"}`,
    `lockdown      ${f.lockdown || "(unknown)"}`,
    `tracefs       ${f.tracefsPath || "(not mounted)"}`,
    `ia32          ${IA32_TEXT[f.ia32Syscalls]}`,
    `helpers       ${Object.entries(f.helpers).map(([name, has]) => `${name}=${has}`).join(" ")}`,
    `capabilities  CAP_BPF=${yes(f.capBpf)} CAP_PERFMON=${yes(f.capPerfmon)} CAP_SYS_ADMIN=${yes(f.capSysAdmin)}`,
  ];
  for (const a of f.actions) lines.push(`action        ${a}`);
  lines.push("", "capability  status   program");
  for (const c of report.candidates) {
    lines.push(`${c.capability.padEnd(11)} ${(c.live ? "live" : "passed").padEnd(8)} ${c.program}${c.reason ? `  (${c.reason})` : ""}`);
  }
  if (report.error) lines.push("", `error: ${report.error.message} [${report.error.code}]`);
  return `${lines.join("\n")}\n`;
}
