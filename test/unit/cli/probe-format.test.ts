import { describe, expect, it } from "vitest";
import { formatProbe } from "../../../src/cli/probe-format.js";
import type { ProbeReport } from "../../../src/sensor/sensor.js";

type Helpers = ProbeReport["features"]["helpers"];
const HELPERS_6_18: Helpers = { bpf_get_current_task_btf: "yes", bpf_task_pt_regs: "yes" };

const report = (ia32Syscalls: ProbeReport["features"]["ia32Syscalls"], reason: string, helpers = HELPERS_6_18): ProbeReport => ({
  features: {
    kernelRelease: "6.18.44-fc-v1045", btf: true, lsmList: "lockdown,capability,bpf", bpfLsm: true, lockdown: "none [integrity]",
    tracefsPath: "/sys/kernel/tracing", capBpf: true, capPerfmon: true, capSysAdmin: true, actions: [], ia32Syscalls, helpers,
  },
  candidates: [{ capability: "compat", program: "tp_btf/sys_exit (ia32 syscalls)", live: false, reason }],
  error: null,
});

describe("sockeye probe, human-readable", () => {
  it("says when the kernel refuses ia32 syscalls, and the compat row's reason", () => {
    const text = formatProbe(report("refused", "not needed: this kernel refuses ia32 syscalls"));
    expect(text).toMatch(/^ia32 {10}refused \(an int \$0x80 from a test process died with SIGSEGV\): nothing to watch there$/m);
    expect(text).toMatch(/^compat {6}passed {3}tp_btf\/sys_exit \(ia32 syscalls\) {2}\(not needed: this kernel refuses ia32 syscalls\)$/m);
  });

  it("says when it takes them", () => {
    expect(formatProbe(report("taken", "off: ..."))).toMatch(/^ia32 {10}taken \(an int \$0x80 from a test process ran\)$/m);
  });

  it("names the BPF helpers the kernel has, which decide the task_access variant", () => {
    expect(formatProbe(report("taken", "off: ..."))).toMatch(/^helpers {7}bpf_get_current_task_btf=yes bpf_task_pt_regs=yes$/m);
    const old = formatProbe(report("taken", "off: ...", { bpf_get_current_task_btf: "no", bpf_task_pt_regs: "no" }));
    expect(old).toMatch(/^helpers {7}bpf_get_current_task_btf=no bpf_task_pt_regs=no$/m);
  });
});
