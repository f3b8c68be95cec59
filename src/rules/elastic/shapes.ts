/**
 * The kinds of document sockeye gives Elastic rules, per EQL category: which sensor event
 * makes each, the fields it can carry and the values that never change on it. The catalog
 * asks whether a rule can ever fire; a rule asks which events it needs to see at all (most
 * process rules pin `event.action == "exec"`, and need no fork or exit event).
 */
import { canHold } from "../../eql/analysis.js";
import type { CompiledEql } from "../../eql/compile.js";
import type { EqlExpr } from "../../eql/parser.js";
import {
  ALREADY_RUNNING_ECS_CONSTANTS, ALREADY_RUNNING_ECS_FIELDS, END_ECS_CONSTANTS, END_ECS_FIELDS, EXEC_ECS_CONSTANTS, EXEC_ECS_FIELDS,
  FORK_ECS_CONSTANTS, FORK_ECS_FIELDS,
} from "./ecs-exec.js";
import { CHANGE_ACTIONS, CHANGE_ECS_CONSTANTS, CHANGE_ECS_FIELDS } from "./ecs-change.js";
import { ENTRY_TYPES } from "./ecs-entry-leader.js";
import { ACCEPT_ECS_CONSTANTS, ACCEPT_ECS_FIELDS, NETWORK_ECS_CONSTANTS, NETWORK_ECS_FIELDS } from "./ecs-network.js";

/** The event kinds whose documents Elastic rules read. */
export type ElasticEventKind = "exec" | "fork" | "exit" | "connect" | "outbound" | "accept" | "cred_change" | "already_running";

export interface DocumentShape {
  /** Sensor events that make this document. */
  kinds: readonly ElasticEventKind[];
  fields: ReadonlySet<string>;
  constants: Record<string, unknown>;
  /** Fields this shape fills with one of a few values only, beyond FIELD_DOMAINS. */
  domains?: Readonly<Record<string, readonly unknown[]>>;
}

const PROCESS_SHAPES: DocumentShape[] = [
  { kinds: ["exec"], fields: EXEC_ECS_FIELDS, constants: EXEC_ECS_CONSTANTS },
  { kinds: ["fork"], fields: FORK_ECS_FIELDS, constants: FORK_ECS_CONSTANTS },
  { kinds: ["exit"], fields: END_ECS_FIELDS, constants: END_ECS_CONSTANTS },
  { kinds: ["already_running"], fields: ALREADY_RUNNING_ECS_FIELDS, constants: ALREADY_RUNNING_ECS_CONSTANTS },
  { kinds: ["cred_change"], fields: CHANGE_ECS_FIELDS, constants: CHANGE_ECS_CONSTANTS, domains: { "event.action": CHANGE_ACTIONS } },
];
const NETWORK_SHAPES: DocumentShape[] = [
  { kinds: ["connect", "outbound"], fields: NETWORK_ECS_FIELDS, constants: NETWORK_ECS_CONSTANTS },
  // Only while the sensor reports accepts, which `sockeye run` asks for when a loaded rule reads them.
  { kinds: ["accept"], fields: ACCEPT_ECS_FIELDS, constants: ACCEPT_ECS_CONSTANTS },
];

export const SHAPES: Record<string, DocumentShape[]> = {
  process: PROCESS_SHAPES,
  network: NETWORK_SHAPES,
  any: [...PROCESS_SHAPES, ...NETWORK_SHAPES],
};

function leafPaths(value: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(value).flatMap(([key, child]) =>
    child !== null && typeof child === "object" && !Array.isArray(child) ? leafPaths(child as Record<string, unknown>, `${prefix}${key}.`) : [`${prefix}${key}`],
  );
}

const constantPaths = new Map<DocumentShape, Set<string>>();

/** Fields sockeye fills with one of a few values only (when it fills them at all). */
const FIELD_DOMAINS: Readonly<Record<string, readonly unknown[]>> = {
  // ecs-entry-leader.ts: Elastic's entry types, or missing.
  "process.entry_leader.entry_meta.type": ENTRY_TYPES,
};

/** Whether `expr` (a query's condition, or a part of one) can hold on some document of `shape`. */
function exprCanHoldOn(expr: EqlExpr, shape: DocumentShape): boolean {
  let constant = constantPaths.get(shape);
  if (constant === undefined) constantPaths.set(shape, (constant = new Set(leafPaths(shape.constants))));
  return canHold(expr, (field) => shape.fields.has(field) && !constant.has(field), shape.constants, shape.domains === undefined ? FIELD_DOMAINS : { ...FIELD_DOMAINS, ...shape.domains });
}

/** Whether `query` can hold on some document of `shape`. */
export function canHoldOn(query: CompiledEql, shape: DocumentShape): boolean {
  return exprCanHoldOn(query.where, shape);
}

/** Whether `part` of a query of `category` can hold on some document sockeye makes for it. */
export function partCanHold(category: string, part: EqlExpr): boolean {
  return (SHAPES[category] ?? []).some((shape) => exprCanHoldOn(part, shape));
}

/** The shapes of `query`'s category it can hold on. */
export function shapesFor(query: CompiledEql): DocumentShape[] {
  return (SHAPES[query.category] ?? []).filter((shape) => canHoldOn(query, shape));
}
