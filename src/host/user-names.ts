/**
 * User and group names for ids, from this host's /etc/passwd and /etc/group (what ECS
 * `user.name` and `process.user.name` hold). The files are read on first use and again only
 * when their modification time changed, checked at most once per `recheckMs`: a lookup on
 * the exec stream costs a map read, and an account added later still gets its name.
 *
 * Names from NSS sources other than the files (LDAP, sssd) are not resolved; such ids have
 * no name, which a rule sees as a missing field, never a made-up one.
 */
import { readFileSync, statSync } from "node:fs";

export interface NameDatabaseOptions {
  passwdPath?: string;
  groupPath?: string;
  /** How often (ms) the files' modification times are looked at again. */
  recheckMs?: number;
  now?: () => number;
}

class IdFile {
  private names = new Map<number, string>();
  private mtimeMs = -1;
  private checkedAt = -Infinity;

  constructor(
    private readonly path: string,
    private readonly recheckMs: number,
    private readonly now: () => number,
  ) {}

  name(id: number): string | undefined {
    const t = this.now();
    if (t - this.checkedAt >= this.recheckMs) {
      this.checkedAt = t;
      this.reloadIfChanged();
    }
    return this.names.get(id);
  }

  private reloadIfChanged(): void {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
    } catch {
      this.names = new Map();
      this.mtimeMs = -1;
      return;
    }
    if (mtimeMs === this.mtimeMs) return;
    try {
      this.names = parseIdFile(readFileSync(this.path, "utf8"));
      this.mtimeMs = mtimeMs;
    } catch {
      // Unreadable right now (being replaced): keep the names we had, look again next time.
    }
  }
}

/**
 * `name:x:id:...` lines (passwd(5), group(5)) as id → name; the first line of an id wins,
 * as getpwuid(3) returns it. Comments, NIS `+`/`-` lines and malformed lines are skipped.
 */
export function parseIdFile(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#") || line.startsWith("+") || line.startsWith("-")) continue;
    const fields = line.split(":");
    if (fields.length < 3 || fields[0] === "" || !/^\d+$/.test(fields[2]!)) continue;
    const id = Number(fields[2]);
    if (!names.has(id)) names.set(id, fields[0]!);
  }
  return names;
}

export class NameDatabase {
  private readonly users: IdFile;
  private readonly groups: IdFile;

  constructor(options: NameDatabaseOptions = {}) {
    const recheckMs = options.recheckMs ?? 30_000;
    const now = options.now ?? Date.now;
    this.users = new IdFile(options.passwdPath ?? "/etc/passwd", recheckMs, now);
    this.groups = new IdFile(options.groupPath ?? "/etc/group", recheckMs, now);
  }

  userName(uid: number): string | undefined {
    return this.users.name(uid);
  }

  groupName(gid: number): string | undefined {
    return this.groups.name(gid);
  }
}
