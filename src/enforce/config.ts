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
    /**
     * The systemd unit the process runs in, matched against the outermost `.service` or
     * `.scope` of its cgroup path (enforcer.ts `outermostUnit`): units below it sit in a
     * subtree its owner may create cgroups in and name at will.
     */
    unit: z
      .string()
      .regex(/^[^/]+\.(service|scope)$/, { message: 'must name a .service or .scope unit, like "gitlab-runner.service" (for a slice, use cgroup = "/machine.slice")' })
      .optional(),
    /** A cgroup path (v2, from the hierarchy's root) the process is in or under; `*` matches within one path component. */
    cgroup: z.string().regex(/^\//, { message: 'must be a cgroup path from the hierarchy\'s root, like "/system.slice/ci.service"' }).optional(),
  })
  .strict()
  .refine((e) => e.executable !== undefined || e.name !== undefined || e.unit !== undefined || e.cgroup !== undefined, {
    message: "needs executable, name, unit or cgroup",
  });

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
        /**
         * Userspace kills per process tree (the outermost systemd unit of the shell's cgroup, else
         * its cgroup: enforcer.ts `treeOf`) within window_s; past it that tree falls back to
         * dry-run, so decoys forked in one tree cannot spend their uid's budget (root's, a
         * container's) for the others. Below kills_per_uid to mean anything.
         */
        kills_per_tree: z.number().int().min(1).max(100_000).default(5),
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
