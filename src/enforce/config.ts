/**
 * The `[enforce]` table (docs/enforcement.md): off by default; "dry-run" says on each finding
 * what would have been done; "on" does it. A rule's own mode overrides the table's.
 */
import { z } from "zod";
import { OptionError } from "../errors.js";

export const ENFORCE_MODES = ["off", "dry-run", "on"] as const;
export type EnforceMode = (typeof ENFORCE_MODES)[number];

const mode = z.enum(ENFORCE_MODES, { errorMap: () => ({ message: 'must be "off", "dry-run" or "on"' }) });

/** Rules whose verdicts stay at zero on the benign corpus (test/kernel/benign.test.ts): the table's mode applies to them as it is. */
export const ENFORCEABLE_RULES: readonly string[] = ["TRC-101", "RELAY-001", "RELAY-002"];

const allowEntry = z
  .object({
    label: z.string().min(1),
    /** The process's executable, as the finding's process.executable gives it. */
    executable: z.string().min(1).optional(),
    /** The process's name (ECS process.name). */
    name: z.string().min(1).optional(),
  })
  .strict()
  .refine((e) => e.executable !== undefined || e.name !== undefined, { message: "needs executable or name" });

export const enforceConfigSchema = z
  .object({
    mode: mode.default("off"),
    /** Per rule id: its own mode, over the table's. Rules not in ENFORCEABLE_RULES go no further than dry-run unless named here. */
    rules: z.record(z.string().min(1), mode).default({}),
    /** Programs reported, never killed from userspace. */
    allow: z.array(allowEntry).default([]),
    budget: z
      .object({
        /** Userspace kills per uid within window_s; past it that uid falls back to dry-run, with a SENSOR-002 finding. */
        kills_per_uid: z.number().int().min(1).max(100_000).default(10),
        window_s: z.number().int().min(1).max(86_400).default(60),
      })
      .strict()
      .default({}),
  })
  .strict();

export type EnforceConfig = z.infer<typeof enforceConfigSchema>;

/** What the --enforce flag's value stands for: bare --enforce is "on". */
export function enforceModeOfFlag(value: string | true): EnforceMode {
  const v = value === true ? "on" : value;
  if ((ENFORCE_MODES as readonly string[]).includes(v)) return v as EnforceMode;
  throw new OptionError(`--enforce must be --enforce, --enforce=dry-run, --enforce=on or --enforce=off, not --enforce=${v}`);
}

/** The mode a rule's findings get: its own, else the table's, held at dry-run for rules not measured on the benign corpus. */
export function modeForRule(config: EnforceConfig, ruleId: string): EnforceMode {
  const own = config.rules[ruleId];
  if (own !== undefined) return own;
  if (config.mode === "on" && !ENFORCEABLE_RULES.includes(ruleId)) return "dry-run";
  return config.mode;
}
