/**
 * Credentials in findings. A finding carries command lines (the shell's, its parent's, a
 * relay's), and command lines carry secrets: `--password=...`, `curl -H 'Authorization: ...'`,
 * `AWS_SECRET_ACCESS_KEY=... cmd`, `https://user:pass@host`, `?access_token=...`. A SIEM keeps
 * what it is sent for months and shows it to many people, so they are cut out before a finding
 * leaves the host: the name stays (it is evidence), the value becomes [REDACTED].
 *
 * Command lines are the attacker's to choose, so the scan is linear in their length: words are
 * split on whitespace once and each is looked at with indexOf and fixed word lists, never with
 * a backtracking regular expression.
 */

export const REDACTED = "[REDACTED]";

/** A name (option, variable, query parameter, header) containing one of these holds a secret. */
const SECRET_WORDS = ["password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key", "accesskey", "access_key", "access-key", "privatekey", "private_key", "private-key", "credential"];
const SIGNATURE_WORDS = ["sig", "signature"];
/** Header names whose whole value is a credential. */
const CREDENTIAL_HEADERS = new Set(["authorization:", "proxy-authorization:"]);
const COOKIE_HEADERS = new Set(["cookie:", "set-cookie:"]);
/** Authorization schemes: the word stays, the credential after it goes. */
const AUTH_SCHEMES = new Set(["bearer", "basic", "token", "digest", "negotiate", "aws4-hmac-sha256"]);
/** Token prefixes that say what they are wherever they stand. */
const TOKEN_PREFIXES = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "glpat-"];

/** The quotes a word ends with (manual: a regex anchored at the end would backtrack). */
function trailingQuotes(word: string): string {
  let i = word.length;
  while (i > 0 && (word[i - 1] === "'" || word[i - 1] === '"')) i--;
  return word.slice(i);
}

function namesSecret(name: string, words: readonly string[] = SECRET_WORDS): boolean {
  const lower = name.toLowerCase();
  return words.some((w) => lower.includes(w));
}

/** A value that is a path or already redacted is left: `--password-file=/etc/x` is evidence. */
function isSecretValue(value: string): boolean {
  return value.length > 0 && !value.startsWith("/") && value !== REDACTED && !value.startsWith(REDACTED);
}

function looksLikeToken(word: string): boolean {
  const unquoted = word.slice(0, word.length - trailingQuotes(word).length);
  const bare = unquoted.replace(/^['"]+/, "");
  if (TOKEN_PREFIXES.some((p) => bare.startsWith(p) && bare.length >= p.length + 16)) return true;
  // A JWT: three base64url parts, the first two JSON objects ("eyJ" is "{\"").
  const parts = bare.split(".");
  return parts.length === 3 && parts[0]!.startsWith("eyJ") && parts[1]!.startsWith("eyJ") && parts.every((p) => p.length >= 10);
}

/** One word without whitespace; `count` is bumped per secret cut out. */
function redactWord(word: string, counter: { count: number }): string {
  if (looksLikeToken(word)) {
    counter.count++;
    return REDACTED;
  }
  let out = word;
  // scheme://user:password@host
  const scheme = out.indexOf("://");
  if (scheme > 0) {
    const start = scheme + 3;
    const slash = out.indexOf("/", start);
    const at = out.lastIndexOf("@", slash === -1 ? out.length : slash);
    const colon = out.indexOf(":", start);
    if (at > start && colon > start && colon < at && isSecretValue(out.slice(colon + 1, at))) {
      counter.count++;
      out = `${out.slice(0, colon + 1)}${REDACTED}${out.slice(at)}`;
    }
  }
  // ?access_token=x&sig=y: each query parameter whose name is a secret's.
  const query = out.indexOf("?");
  if (query !== -1) {
    const params = out.slice(query + 1).split("&");
    let changed = false;
    const kept = params.map((param) => {
      const eq = param.indexOf("=");
      if (eq <= 0) return param;
      const name = param.slice(0, eq);
      const end = param.search(/[#'"]/);
      const value = end === -1 ? param.slice(eq + 1) : param.slice(eq + 1, end);
      if (!(namesSecret(name) || namesSecret(name, SIGNATURE_WORDS)) || !isSecretValue(value)) return param;
      counter.count++;
      changed = true;
      return `${name}=${REDACTED}${end === -1 ? "" : param.slice(end)}`;
    });
    if (changed) return `${out.slice(0, query + 1)}${kept.join("&")}`;
    return out;
  }
  // --password=x, AWS_SECRET_ACCESS_KEY=x, token:x (not an URL: those are above)
  if (scheme === -1) {
    const eq = out.indexOf("=");
    const colon = out.indexOf(":");
    const sep = eq === -1 ? colon : colon === -1 ? eq : Math.min(eq, colon);
    if (sep > 0) {
      const name = out.slice(0, sep);
      const value = out.slice(sep + 1).replace(/^['"]/, "");
      if (namesSecret(name) && isSecretValue(value)) {
        counter.count++;
        const quote = out[sep + 1] === "'" || out[sep + 1] === '"' ? out[sep + 1]! : "";
        return `${out.slice(0, sep + 1)}${quote}${REDACTED}${quote}`;
      }
    }
  }
  return out;
}

/** An option that names a secret and takes it as the next word: `--password x`, `-token x`. */
function isSecretOption(word: string): boolean {
  const bare = word.replace(/^['"]+/, "");
  return bare.startsWith("-") && !bare.includes("=") && namesSecret(bare);
}

/**
 * One string (an argument, or a whole command line) with every secret value replaced, and
 * how many were. Whitespace is kept as it was.
 */
export function redactString(value: string): { value: string; count: number } {
  const counter = { count: 0 };
  const pieces = value.split(/(\s+)/);
  // What the words before this one make of it: the value of an option or a header.
  let pending: "value" | "header" | "rest" | undefined;
  for (let i = 0; i < pieces.length; i += 2) {
    const word = pieces[i]!;
    if (word === "") continue;
    const lower = word.replace(/^['"]+/, "").toLowerCase();
    if (pending === "rest") {
      counter.count += isSecretValue(word) ? 1 : 0;
      pieces[i] = isSecretValue(word) ? REDACTED : word;
      continue;
    }
    if (pending === "header" && AUTH_SCHEMES.has(lower)) continue;
    if (pending !== undefined) {
      pending = undefined;
      if (isSecretValue(word) && !word.startsWith("-")) {
        counter.count++;
        const closing = trailingQuotes(word);
        pieces[i] = `${REDACTED}${closing}`;
        continue;
      }
    }
    // A header name, alone or glued to its option (--header=Authorization:).
    const header = lower.slice(lower.lastIndexOf("=") + 1);
    if (CREDENTIAL_HEADERS.has(header) || (header.startsWith("x-") && header.endsWith(":") && namesSecret(header, [...SECRET_WORDS, "key", "auth"]))) {
      pending = "header";
      continue;
    }
    if (COOKIE_HEADERS.has(header)) {
      pending = "rest";
      continue;
    }
    if (isSecretOption(word)) {
      pending = "value";
      continue;
    }
    pieces[i] = redactWord(word, counter);
  }
  return { value: pieces.join(""), count: counter.count };
}

/**
 * A copy of `value` (a finding, or any part of it) with every string redacted; in arrays (argv)
 * an option that names a secret also redacts the element after it (`--password`, `x`), and a
 * header name its value (`-H`, `Authorization: Bearer x` is one element and redacted as one).
 * Objects holding nothing to redact are returned as they are, not copied.
 */
export function redactSecrets<T>(value: T): { value: T; count: number } {
  let count = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") {
      const r = redactString(v);
      count += r.count;
      return r.count > 0 ? r.value : v;
    }
    if (Array.isArray(v)) {
      let changed = false;
      const out = v.map((item: unknown, i) => {
        const previous: unknown = i > 0 ? v[i - 1] : undefined;
        if (typeof item === "string" && typeof previous === "string" && isSecretOption(previous) && isSecretValue(item) && !item.startsWith("-")) {
          count++;
          changed = true;
          return REDACTED;
        }
        const w = walk(item);
        if (w !== item) changed = true;
        return w;
      });
      return changed ? out : v;
    }
    if (typeof v === "object" && v !== null) {
      let copy: Record<string, unknown> | undefined;
      for (const [key, item] of Object.entries(v)) {
        const w = walk(item);
        if (w !== item) (copy ??= { ...(v as Record<string, unknown>) })[key] = w;
      }
      return copy ?? v;
    }
    return v;
  };
  const out = walk(value) as T;
  return { value: out, count };
}
