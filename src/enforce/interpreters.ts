/**
 * The interpreters the kernel path knows (bpf/enforce.bpf.c): by name, the rules' list
 * (src/rules/stdio/interpreters.ts) and the versioned names found on this host, and by the
 * device and inode of each interpreter executable found in the usual program folders, so a
 * hard link or a bind mount under another name is still known. Read once at start.
 */
import { readdirSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { INTERPRETER_NAMES, isVersionedInterpreterName } from "../rules/stdio/interpreters.js";

const PROGRAM_FOLDERS = ["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/usr/local/sbin"];
/** The kernel keeps 15 bytes of a name (comm). */
const COMM_MAX = 15;

export interface KernelInterpreters {
  names: string[];
  /** [kernel dev_t, inode] of each interpreter executable found. */
  exes: [number, number][];
}

/** The kernel's dev_t (MAJOR << 20 | MINOR) of a device number as stat(2) gives it (glibc's encoding). */
export function kernelDev(dev: bigint): number {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return Number((major << 20n) | minor);
}

/** Allow entries scoped by systemd unit or cgroup path: the kernel path cannot honour them. */
export function scopedAllowEntries<E extends { label: string; unit?: string | undefined; cgroup?: string | undefined }>(allow: readonly E[]): string[] {
  return allow.filter((e) => e.unit !== undefined || e.cgroup !== undefined).map((e) => e.label);
}

/** The identities of the allowlist's executables that exist here, and the names it allows (kept from the kernel's name list). */
export function allowedIdentities(
  allow: readonly { executable?: string | undefined; name?: string | undefined; unit?: string | undefined; cgroup?: string | undefined }[],
): { exes: [number, number][]; names: Set<string> } {
  const exes: [number, number][] = [];
  const names = new Set<string>();
  for (const entry of allow) {
    // An entry scoped to a unit or cgroup spares nothing everywhere: the kernel path cannot see
    // cgroup paths, and run.ts keeps it out while such entries exist (scopedAllowEntries).
    if (entry.unit !== undefined || entry.cgroup !== undefined) continue;
    if (entry.executable === undefined) {
      if (entry.name !== undefined) names.add(entry.name);
      continue;
    }
    try {
      const st = statSync(entry.executable, { bigint: true });
      if (st.isFile()) exes.push([kernelDev(st.dev), Number(st.ino)]);
    } catch {
      // not on this host: nothing to spare
    }
  }
  return { exes: exes.slice(0, 256), names };
}

/**
 * The allowlist with each executable's resolved path added as an entry of its own: a finding
 * names the program the process runs (/usr/bin/python3.11), a user the link (/usr/bin/python3).
 */
export function withResolvedExecutables<E extends { label: string; executable?: string | undefined }>(allow: readonly E[]): E[] {
  const out = [...allow];
  for (const entry of allow) {
    if (entry.executable === undefined) continue;
    try {
      const real = realpathSync(entry.executable);
      if (real !== entry.executable) out.push({ ...entry, executable: real });
    } catch {
      // not on this host
    }
  }
  return out;
}

export function findKernelInterpreters(folders: readonly string[] = PROGRAM_FOLDERS, allowedNames: ReadonlySet<string> = new Set()): KernelInterpreters {
  const known = new Set(INTERPRETER_NAMES);
  const names = new Set(INTERPRETER_NAMES.filter((n) => n.length <= COMM_MAX && !allowedNames.has(n)));
  const exes = new Map<string, [number, number]>();
  // A name the allowlist spares spares its file too, under every name it has (python3 ->
  // python3.11): the kernel matches by name or by identity.
  const spared = new Set<string>();
  for (const folder of folders) {
    let entries: string[];
    try {
      entries = readdirSync(folder);
    } catch {
      continue; // a folder this host does not have
    }
    for (const entry of entries) {
      if (!known.has(entry) && !isVersionedInterpreterName(entry)) continue;
      if (entry.length <= COMM_MAX && !allowedNames.has(entry)) names.add(entry);
      try {
        const st = statSync(join(folder, entry), { bigint: true }); // follows links: /bin/sh -> dash
        if (!st.isFile()) continue;
        const key: [number, number] = [kernelDev(st.dev), Number(st.ino)];
        if (allowedNames.has(entry)) spared.add(key.join(":"));
        exes.set(key.join(":"), key);
      } catch {
        // a dangling link
      }
    }
  }
  for (const key of spared) exes.delete(key);
  return { names: [...names].slice(0, 128), exes: [...exes.values()].slice(0, 256) };
}
