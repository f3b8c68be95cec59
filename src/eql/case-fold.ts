/**
 * Case-insensitive comparison one code point at a time, as Lucene's automata fold case
 * (Unicode simple case folding): `K`, `k` and the Kelvin sign are one class, `İ` is a class of
 * its own, and folding never changes a string's length in code points. `toLowerCase()` on the
 * whole string does neither (`"İ".toLowerCase()` is two code points, so `?` no longer matched it).
 */

/** Members of a fold class that upper- and lower-casing its key do not reach, by key (from V8's Unicode data). */
const IRREGULAR_MEMBERS: ReadonlyMap<number, readonly number[]> = new Map([
  [0x6b, [0x212a]], [0x73, [0x17f]], [0x3bc, [0xb5]], [0xe5, [0x212b]], [0xdf, [0x1e9e]], [0x1c6, [0x1c5]], [0x1c9, [0x1c8]],
  [0x1cc, [0x1cb]], [0x1f3, [0x1f2]], [0x3b9, [0x345, 0x1fbe]], [0x3b2, [0x3d0]], [0x3b5, [0x3f5]], [0x3b8, [0x3d1, 0x3f4]],
  [0x3ba, [0x3f0]], [0x3c0, [0x3d6]], [0x3c1, [0x3f1]], [0x3c3, [0x3c2]], [0x3c6, [0x3d5]], [0x3c9, [0x2126]], [0x432, [0x1c80]],
  [0x434, [0x1c81]], [0x43e, [0x1c82]], [0x441, [0x1c83]], [0x442, [0x1c84, 0x1c85]], [0x44a, [0x1c86]], [0x463, [0x1c87]],
  [0xa64b, [0x1c88]], [0x1e61, [0x1e9b]],
  ...[0x1f80, 0x1f90, 0x1fa0].flatMap((base) => Array.from({ length: 8 }, (_, k): [number, number[]] => [base + k, [base + 8 + k]])),
  [0x1fb3, [0x1fbc]], [0x1fc3, [0x1fcc]], [0x1ff3, [0x1ffc]],
]);

function single(text: string): number | undefined {
  const cp = text.codePointAt(0);
  return cp !== undefined && text.length === (cp > 0xffff ? 2 : 1) ? cp : undefined;
}

/** The one code point whose upper case's lower case is outside its class: dotless ı (I folds to i). */
const DOTLESS_I = 0x131;
/** Fold keys kept for reuse; past this the cache starts over (a value's code points are the attacker's choice). */
const MAX_CACHED_KEYS = 4096;
const keys = new Map<number, number>();

/**
 * The key of `cp`'s fold class: the lower case of its upper case, else its lower case, where
 * that is one code point (checked against the `iu` RegExp flags' folding over every code point).
 */
export function foldCodePoint(cp: number): number {
  if (cp < 0x80) return cp >= 65 && cp <= 90 ? cp + 32 : cp;
  let key = keys.get(cp);
  if (key !== undefined) return key;
  key = cp;
  if (cp !== DOTLESS_I) {
    const ch = String.fromCodePoint(cp);
    const upper = single(ch.toUpperCase());
    const lowerOfUpper = upper !== undefined ? single(String.fromCodePoint(upper).toLowerCase()) : undefined;
    key = lowerOfUpper ?? single(ch.toLowerCase()) ?? cp;
  }
  if (keys.size >= MAX_CACHED_KEYS) keys.clear();
  keys.set(cp, key);
  return key;
}

/** `text` with every code point replaced by its fold key. */
export function foldCase(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return text.toLowerCase();
  let out = "";
  for (const ch of text) out += String.fromCodePoint(foldCodePoint(ch.codePointAt(0)!));
  return out;
}

/** Every code point in `cp`'s fold class, `cp` included. */
export function caseVariants(cp: number): number[] {
  const key = foldCodePoint(cp);
  const ch = String.fromCodePoint(key);
  const out = new Set([cp, key, ...(IRREGULAR_MEMBERS.get(key) ?? [])]);
  for (const other of [single(ch.toUpperCase()), single(ch.toLowerCase())]) {
    if (other !== undefined && foldCodePoint(other) === key) out.add(other);
  }
  return [...out];
}
