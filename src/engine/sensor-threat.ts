/**
 * The MITRE ATT&CK mapping of the sensor's own findings (SENSOR-001 coverage lost, SENSOR-002
 * enforcement fell back): both are what an attacker who blinds or disarms the sensor causes,
 * Defense Evasion / Impair Defenses.
 */
import type { ThreatEntry } from "./rule.js";

export const IMPAIR_DEFENSES_THREAT: readonly ThreatEntry[] = [
  {
    framework: "MITRE ATT&CK",
    tactic: { id: "TA0005", name: "Defense Evasion", reference: "https://attack.mitre.org/tactics/TA0005/" },
    technique: [{ id: "T1562", name: "Impair Defenses", reference: "https://attack.mitre.org/techniques/T1562/" }],
  },
];
