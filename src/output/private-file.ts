/**
 * Files sockeye appends to, often as root (the findings file, the capture), opened so that
 * whatever a local user plants at the path cannot redirect them (a symlink to /etc/shadow, a
 * hard link to it, a folder on the way swapped: trusted-path.ts), widen them (an existing
 * 0666 file), hand them to another user (a file of theirs) or block the daemon's start (a
 * FIFO with no reader). Findings name users, commands and addresses: the file is kept 0600.
 */
import { constants, type Stats } from "node:fs";
import { lstat, open, type FileHandle } from "node:fs/promises";
import { EXIT_REFUSED, SockeyeError } from "../errors.js";
import { nonRegularKind } from "../service/regular-file.js";
import { daemonUid, untrustedParent } from "./trusted-path.js";

export const PRIVATE_FILE_MODE = 0o600;

/** The path cannot be written safely (not a regular file of the daemon's own, or an untrusted folder above it); the message is `<path> <problem>`. */
export class UntrustedFileError extends SockeyeError {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path} ${problem}`, "SOCKEYE_UNTRUSTED_FILE", EXIT_REFUSED);
  }
}

function notRegular(path: string, kind: string, consequence = ""): UntrustedFileError {
  if (kind === "a symbolic link") return new UntrustedFileError(path, `is a symbolic link; give the path of the file itself${consequence}`);
  return new UntrustedFileError(path, `is ${kind}, not a regular file${consequence}`);
}

/** Whether `path` exists; throws UntrustedFileError (with `consequence` appended) when it is not a regular file. */
export async function isRegularFile(path: string, consequence = ""): Promise<boolean> {
  let stats: Stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  const kind = nonRegularKind(stats);
  if (kind !== undefined) throw notRegular(path, kind, consequence);
  return true;
}

/**
 * Opens `path` for appending, creating it 0600 and making an existing file 0600. Rejects
 * with an UntrustedFileError when a folder above it is not trusted, or it is a symlink, a
 * device, a FIFO or anything but a regular file (without opening a device it can tell
 * beforehand), another user's file or a file with more than one link.
 */
export async function openPrivateAppendFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  const parent = untrustedParent(path);
  if (parent !== undefined) throw new UntrustedFileError(path, `is under ${parent.folder}, which ${parent.problem}`);
  await isRegularFile(path);
  let handle: FileHandle;
  try {
    // What is planted between the check and the open: O_NOFOLLOW fails a symlink (ELOOP)
    // instead of following it, O_NONBLOCK fails a FIFO with no reader (ENXIO) instead of
    // waiting for one; fstat below refuses the rest.
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK, PRIVATE_FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP") throw notRegular(path, "a symbolic link");
    throw error;
  }
  try {
    const stats = await handle.stat();
    const kind = nonRegularKind(stats);
    if (kind !== undefined) throw notRegular(path, kind);
    const uid = daemonUid();
    if (stats.uid !== uid) throw new UntrustedFileError(path, `is owned by uid ${stats.uid}, not by the daemon (uid ${uid}); remove it or give another path`);
    if (stats.nlink > 1) throw new UntrustedFileError(path, `has ${stats.nlink} links: its lines would also reach the other names; give a path of its own`);
    if ((stats.mode & 0o7777) !== PRIVATE_FILE_MODE) await handle.chmod(PRIVATE_FILE_MODE);
    return { handle, size: stats.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
