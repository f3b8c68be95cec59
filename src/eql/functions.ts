/**
 * The EQL functions Elastic's Linux rules call, with Elasticsearch's meaning. A function of
 * a missing value is missing (so a comparison on it is false, and `not` of that is true).
 * A field holding an array is taken element by element, like every other condition.
 */
import { foldCase } from "./case-fold.js";
import type { EqlDocument } from "./document.js";
import type { Literal } from "./parser.js";

/** The values an expression has in a document; undefined when missing. */
export type Values = readonly unknown[] | undefined;
type ValueFn = (doc: EqlDocument) => Values;

/**
 * Builds `name(args…)` (name lower-cased); `literals[i]` is argument i when it is a literal.
 * Returns a one-line problem instead when the call cannot be compiled.
 */
export function compileFunction(name: string, args: ValueFn[], literals: (Literal | undefined)[], caseInsensitive: boolean): ValueFn | string {
  const arity = (min: number, max: number): string | undefined =>
    args.length < min || args.length > max ? `${name}() takes ${min === max ? min : `${min} to ${max === Infinity ? "any number of" : max}`} arguments, got ${args.length}` : undefined;
  const fold = (s: string) => (caseInsensitive ? foldCase(s) : s);
  if (caseInsensitive && !["startswith", "endswith", "stringcontains"].includes(name)) return `${name}~() has no case-insensitive form`;
  switch (name) {
    case "cidrmatch": {
      const bad = arity(2, Infinity);
      if (bad !== undefined) return bad;
      const blocks: Cidr[] = [];
      for (const literal of literals.slice(1)) {
        const block = typeof literal === "string" ? parseCidr(literal) : undefined;
        if (block === undefined) return `cidrMatch() needs CIDR blocks as string literals, got ${JSON.stringify(literal ?? "a field")}`;
        blocks.push(block);
      }
      const ip = args[0]!;
      return (doc) => {
        const values = ip(doc);
        if (values === undefined) return undefined;
        return [values.some((v) => typeof v === "string" && inAnyBlock(v, blocks))];
      };
    }
    case "length": {
      const bad = arity(1, 1);
      if (bad !== undefined) return bad;
      const arg = args[0]!;
      return (doc) => present(arg(doc)?.flatMap((v) => (typeof v === "string" ? [[...v].length] : [])));
    }
    case "startswith":
    case "endswith":
    case "stringcontains": {
      const bad = arity(2, 2);
      if (bad !== undefined) return bad;
      const [source, part] = args as [ValueFn, ValueFn];
      const test =
        name === "startswith"
          ? (s: string, p: string) => s.startsWith(p)
          : name === "endswith"
            ? (s: string, p: string) => s.endsWith(p)
            : (s: string, p: string) => s.includes(p);
      return (doc) => {
        const sources = strings(source(doc));
        const parts = strings(part(doc));
        if (sources === undefined || parts === undefined) return undefined;
        return [sources.some((s) => parts.some((p) => test(fold(s), fold(p))))];
      };
    }
    case "number": {
      const bad = arity(1, 2);
      if (bad !== undefined) return bad;
      // Without a base, "0x…" is base 16 (Elasticsearch's number()).
      let base: number | undefined;
      if (args.length === 2) {
        const literal = literals[1];
        if (typeof literal !== "number" || !Number.isInteger(literal) || literal < 2 || literal > 36) return "number()'s base must be an integer literal from 2 to 36";
        base = literal;
      }
      const arg = args[0]!;
      return (doc) => present(arg(doc)?.flatMap((v) => {
        if (typeof v === "number") return [v];
        const n = typeof v === "string" ? parseNumber(v, base) : undefined;
        return n === undefined ? [] : [n];
      }));
    }
    case "concat": {
      const bad = arity(1, Infinity);
      if (bad !== undefined) return bad;
      return (doc) => {
        let out = "";
        for (const arg of args) {
          const value = arg(doc)?.[0];
          if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return undefined;
          out += String(value);
        }
        return [out];
      };
    }
    default:
      return `function ${name}() is not supported`;
  }
}

function present(values: unknown[] | undefined): Values {
  return values === undefined || values.length === 0 ? undefined : values;
}

function strings(values: Values): string[] | undefined {
  return present(values?.filter((v): v is string => typeof v === "string")) as string[] | undefined;
}

function parseNumber(text: string, givenBase: number | undefined): number | undefined {
  const s = text.trim();
  const base = givenBase ?? (/^[+-]?0x/i.test(s) ? 16 : 10);
  if (base === 10) return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : undefined;
  const body = base === 16 ? s.replace(/^([+-]?)0x/i, "$1") : s;
  const digits = "0123456789abcdefghijklmnopqrstuvwxyz".slice(0, base);
  if (!new RegExp(`^[+-]?[${digits}]+$`, "i").test(body)) return undefined;
  return Number.parseInt(body, base);
}

interface Cidr {
  bytes: Uint8Array;
  prefix: number;
}

/** "a.b.c.d", "a.b.c.d/n", an IPv6 address or block; IPv4-mapped IPv6 is taken as IPv4. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const bytes = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (bytes === undefined) return undefined;
  const bits = bytes.length * 8;
  if (slash < 0) return { bytes, prefix: bits };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  let prefix = Number(prefixText);
  // A mapped v4 block ("::ffff:10.0.0.0/104") counts its prefix from the v4 part.
  if (bytes.length === 4 && text.includes(":")) prefix -= 96;
  if (prefix < 0 || prefix > bits) return undefined;
  return { bytes, prefix };
}

function inAnyBlock(ip: string, blocks: readonly Cidr[]): boolean {
  const bytes = parseIp(ip);
  if (bytes === undefined) return false;
  return blocks.some((block) => block.bytes.length === bytes.length && prefixEquals(bytes, block.bytes, block.prefix));
}

function prefixEquals(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]!)) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    bytes[i] = n;
  }
  return bytes;
}

/** 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6; undefined when not an address. */
export function parseIp(text: string): Uint8Array | undefined {
  if (!text.includes(":")) return parseIpv4(text);
  const zone = text.indexOf("%");
  const address = (zone >= 0 ? text.slice(0, zone) : text).toLowerCase();
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (v4 === undefined) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-f]{1,4}$/.test(part)) return undefined;
      out.push(Number.parseInt(part, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}
