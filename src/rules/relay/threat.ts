/**
 * The MITRE ATT&CK mapping the relay rules share: a shell run through a relay is Execution /
 * Unix Shell, and the connection it is relayed over is Command and Control / Application
 * Layer Protocol, as Elastic's seed rule maps its reverse shell.
 */
import type { ThreatEntry } from "../../engine/rule.js";

export const RELAY_THREAT: readonly ThreatEntry[] = [
  {
    framework: "MITRE ATT&CK",
    tactic: { id: "TA0002", name: "Execution", reference: "https://attack.mitre.org/tactics/TA0002/" },
    technique: [
      {
        id: "T1059",
        name: "Command and Scripting Interpreter",
        reference: "https://attack.mitre.org/techniques/T1059/",
        subtechnique: [{ id: "T1059.004", name: "Unix Shell", reference: "https://attack.mitre.org/techniques/T1059/004/" }],
      },
    ],
  },
  {
    framework: "MITRE ATT&CK",
    tactic: { id: "TA0011", name: "Command and Control", reference: "https://attack.mitre.org/tactics/TA0011/" },
    technique: [{ id: "T1071", name: "Application Layer Protocol", reference: "https://attack.mitre.org/techniques/T1071/" }],
  },
];
