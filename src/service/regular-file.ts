/**
 * Reading the files a user names (the config, rule files, a capture) so that a wrong path
 * gives one line instead of a hang or a memory blow-up: a FIFO is opened without waiting for
 * a writer and refused, a device such as /dev/zero is refused before it is read, and a text
 * file is read up to a bound.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { EXIT_BAD_INPUT, SockeyeError } from "../errors.js";

/** A file that cannot be read as asked; the message is `<path>: <problem>`. */
export class FileReadError extends SockeyeError {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`, "SOCKEYE_FILE_READ", EXIT_BAD_INPUT);
  }
}

/** "a FIFO", "a character device", ...; undefined for a regular file. */
export function nonRegularKind(stats: Stats): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "something";
}

/** An fd open for reading on `path`, a regular file; the caller closes it. */
export function openRegularFileSync(path: string): number {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new FileReadError(path, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const kind = nonRegularKind(fstatSync(fd));
  if (kind !== undefined) {
    closeSync(fd);
    throw new FileReadError(path, `is ${kind}, not a regular file`);
  }
  return fd;
}

/**
 * The text of a regular file of at most `maxBytes`. Read until end of file, not to the size
 * fstat gives: /proc and some FUSE files say 0, and a file may grow while it is read.
 */
export function readRegularTextFile(path: string, maxBytes: number): string {
  return readRegularText(path, maxBytes).text;
}

/** The text of a regular file and the stats of what was read (its owner and mode, for checks). */
export function readRegularText(path: string, maxBytes: number): { text: string; stats: Stats } {
  const fd = openRegularFileSync(path);
  try {
    const stats = fstatSync(fd);
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        throw new FileReadError(path, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw new FileReadError(path, `larger than ${maxBytes / 1024} KiB: is this the right file?`);
    }
    return { text: buffer.toString("utf8", 0, length), stats };
  } finally {
    closeSync(fd);
  }
}
