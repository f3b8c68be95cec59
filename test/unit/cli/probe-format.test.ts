import { describe, expect, it } from "vitest";
import { formatProbe } from "../../../src/cli/probe-format.js";
import type { ProbeReport } from "../../../src/sensor/sensor.js";

const report = (ia32Syscalls: ProbeReport["features"]["ia32Syscalls"], reason: string): ProbeReport => ({
  features: {
    kernelRelease: "6.18.44-fc-v1045", btf: true, lsmList: "lockdown,capability,bpf", bpfLsm: true, lockdown: "none [integrity]",
    tracefsPath: "/sys/kernel/tracing", capBpf: true, capPerfmon: true, capSysAdmin: true, actions: [], ia32Syscalls,
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
});
