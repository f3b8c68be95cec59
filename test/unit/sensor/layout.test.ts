import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadBinding } from "../../../src/sensor/binding.js";
import {
  ARGS_MAX, COMM_LEN, ConnectSourceCode, CredChanged, CredSyscallCode, DupSyscallCode, EventKindCode, FdKindCode, FILENAME_MAX, HOOKS, LAYOUT,
  DROP_REASONS, RINGS, SocketOriginCode, STDIO_FDS, UNIX_PATH_LEN,
} from "../../../src/sensor/layout.js";

// Both directions. The header's text names every struct, field and enum member (so one added
// to bpf/sockeye_events.h alone fails here); the addon's offsetof()/sizeof(), compiled from the
// same header, gives every number (so a TS offset that drifts fails).
const header = readFileSync(new URL("../../../bpf/sockeye_events.h", import.meta.url), "utf8")
  .replace(/\/\*[\s\S]*?\*\//g, "")
  .replace(/\/\/.*$/gm, "");

/** struct name → its field names in declaration order, padding and a record's leading
 * `hdr` (struct event_header, at offset 0 by the header's rules) left out. */
function headerStructs(): Map<string, string[]> {
  const structs = new Map<string, string[]>();
  for (const [, name, body] of header.matchAll(/^struct (\w+) \{([\s\S]*?)^\};/gm)) {
    const fields = [...body!.matchAll(/(\w+)\s*(?:\[[^\]]*\])?\s*;/g)].map((m) => m[1]!).filter((f) => !/^pad\d*$/.test(f) && f !== "hdr");
    structs.set(name!, fields);
  }
  return structs;
}

/** enum name → member → value. */
function headerEnum(name: string): Map<string, number> {
  const body = new RegExp(`^enum ${name} \\{([\\s\\S]*?)^\\};`, "m").exec(header)?.[1];
  if (body === undefined) throw new Error(`enum ${name} not found in bpf/sockeye_events.h`);
  return new Map([...body.matchAll(/(\w+)\s*=\s*(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** An enum of the header as { lowercase name without prefix: value }, with the TS side's renames. */
function enumAsCodes(name: string, prefix: string, renames: Record<string, string> = {}): Record<string, number> {
  return Object.fromEntries([...headerEnum(name)].map(([member, value]) => {
    const short = member.slice(prefix.length).toLowerCase();
    return [renames[short] ?? short, value];
  }));
}

describe("layout: src/sensor/layout.ts and bpf/sockeye_events.h agree both ways", () => {
  const native = loadBinding().layout;
  const structs = headerStructs();

  it("the header parse found its structs (guards the parser itself)", () => {
    expect(structs.get("event_header")).toEqual(["kind", "size", "cpu", "time_ns"]);
    expect(structs.size).toBeGreaterThanOrEqual(12);
  });

  it("every struct in the header is in layout.ts and in the addon's table, and no other", () => {
    const names = [...structs.keys()].filter((s) => s !== "hook_counter").sort();
    expect(Object.keys(LAYOUT).sort()).toEqual(names);
    expect(Object.keys(native).filter((k) => k !== "constants").sort()).toEqual(names);
  });

  for (const [struct, fields] of Object.entries(LAYOUT)) {
    it(`${struct}: every field of the header, and every size and offset the addon compiled`, () => {
      expect(Object.keys(fields).filter((f) => f !== "sizeof").sort()).toEqual([...(structs.get(struct) ?? [])].sort());
      expect(native[struct]).toBeDefined();
      expect(fields).toEqual(native[struct]);
    });
  }

  it("hook_counter (read by the addon, not decoded) is three u64 counters", () => {
    expect(structs.get("hook_counter")).toEqual(["emitted", "lost", "errors"]);
  });

  it("event kind codes", () => {
    expect(EventKindCode).toEqual(enumAsCodes("sockeye_event_kind", "SOCKEYE_EVENT_"));
  });

  it("stdio fd kinds, connect sources, dup syscalls, socket origins", () => {
    expect(FdKindCode).toEqual(enumAsCodes("sockeye_fd_kind", "SOCKEYE_FD_", { regular: "file" }));
    expect(ConnectSourceCode).toEqual(enumAsCodes("sockeye_connect_source", "SOCKEYE_CONNECT_"));
    expect(DupSyscallCode).toEqual(enumAsCodes("sockeye_dup_syscall", "SOCKEYE_DUP_"));
    expect(SocketOriginCode).toEqual(enumAsCodes("sockeye_socket_origin", "SOCKEYE_ORIGIN_"));
    expect(CredSyscallCode).toEqual(enumAsCodes("sockeye_cred_syscall", "SOCKEYE_CRED_"));
  });

  it("cred_change_event.changed bits", () => {
    const bits = Object.fromEntries([...header.matchAll(/^#define SOCKEYE_CHANGED_(\w+) (0x[0-9a-f]+)/gm)].map((m) => [m[1]!.toLowerCase(), Number(m[2])]));
    expect(CredChanged).toEqual(bits);
  });

  /** A list twin of a counted enum: its members in order, then the count. */
  const listOf = (name: string, prefix: string, renames: Record<string, string> = {}) => {
    const { count, ...named } = enumAsCodes(name, prefix, renames);
    return { names: Object.entries(named).sort((a, b) => a[1] - b[1]).map(([n]) => n), count };
  };

  it("rings and drop reasons, in the order of their counters", () => {
    expect(listOf("sockeye_ring", "SOCKEYE_RING_")).toEqual({ names: [...RINGS], count: RINGS.length });
    expect(listOf("sockeye_drop_reason", "SOCKEYE_DROP_", { reason_count: "count" })).toEqual({ names: [...DROP_REASONS], count: DROP_REASONS.length });
  });

  it("every enum of the header has a twin checked here", () => {
    const checked = ["sockeye_event_kind", "sockeye_fd_kind", "sockeye_connect_source", "sockeye_dup_syscall", "sockeye_socket_origin",
      "sockeye_cred_syscall", "sockeye_hook", "sockeye_ring", "sockeye_drop_reason"];
    expect([...header.matchAll(/^enum (\w+) \{/gm)].map((m) => m[1]).sort()).toEqual(checked.sort());
  });

  it("hooks, in the order of their counters", () => {
    const hooks = enumAsCodes("sockeye_hook", "SOCKEYE_HOOK_", { dup: "socket_dup" });
    const { count, ...named } = hooks;
    expect(Object.fromEntries(HOOKS.map((h, i) => [h, i]))).toEqual(named);
    expect(count).toBe(HOOKS.length);
  });

  it("constants", () => {
    expect(native.constants).toEqual({
      COMM_LEN, UNIX_PATH_LEN, FILENAME_MAX, ARGS_MAX, STDIO_FDS, HOOK_COUNT: HOOKS.length, RING_COUNT: RINGS.length,
      DROP_REASON_COUNT: DROP_REASONS.length,
    });
  });

  it("every struct is a multiple of 8 bytes (no implicit tail padding between records)", () => {
    for (const [struct, fields] of Object.entries(LAYOUT)) expect([struct, fields.sizeof % 8]).toEqual([struct, 0]);
  });
});
