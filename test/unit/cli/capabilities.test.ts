import { describe, expect, it } from "vitest";
import { missingCoverageCapabilities } from "../../../src/service/capabilities.js";

const status = (capEff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;

describe("coverage capabilities", () => {
  it("names each missing one with what it costs", () => {
    expect(missingCoverageCapabilities(status("000001ffffffffff"))).toEqual([]);
    // The unit's set: BPF, PERFMON, SYS_RESOURCE, SYS_PTRACE, DAC_READ_SEARCH, SYS_NICE, NET_ADMIN.
    expect(missingCoverageCapabilities(status("000000c001881004"))).toEqual([]);
    // BPF and PERFMON only.
    const missing = missingCoverageCapabilities(status("000000c000000000"));
    expect(missing.map((m) => m.name)).toEqual(["CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"]);
    expect(missing[0]!.loss).toMatch(/RELAY-001/);
    expect(missing[2]!.loss).toMatch(/UDP-SENDTO/);
    // CAP_SYS_ADMIN loads socket programs as well.
    expect(missingCoverageCapabilities(status("000000c001a80004")).map((m) => m.name)).toEqual([]);
  });
});
