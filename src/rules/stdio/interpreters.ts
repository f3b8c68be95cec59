/**
 * Command interpreters, and whether one started with given arguments reads its commands
 * from stdin. What runs on a socket decides whether a socket on stdio is a shell: a shell
 * reading stdin runs what the other end sends; `sh -c CMD`, a script file, `cat` or a
 * service binary do not.
 */
import { basename } from "node:path";
import { SHELL_NAMES } from "../../sensor/shells.js";
import type { HostView } from "../../host/host-view.js";

export type InterpreterFamily = "shell" | "python" | "perl" | "ruby" | "php" | "node" | "lua" | "tcl";

/** Names a program runs under (base name of the executable or argv[0]). */
const FAMILY_BY_NAME: ReadonlyMap<string, InterpreterFamily> = new Map([
  ...SHELL_NAMES.map((n) => [n, "shell"] as const),
  ...["python", "python2", "python3", "pypy", "pypy3"].map((n) => [n, "python"] as const),
  ...["perl"].map((n) => [n, "perl"] as const),
  ...["ruby", "irb"].map((n) => [n, "ruby"] as const),
  ...["php", "php-cli"].map((n) => [n, "php"] as const),
  ...["node", "nodejs", "deno", "bun"].map((n) => [n, "node"] as const),
  ...["lua", "luajit"].map((n) => [n, "lua"] as const),
  ...["tclsh", "wish", "expect"].map((n) => [n, "tcl"] as const),
]);

/** Versioned interpreter names (python3.11, ...), for enforcement's scan of the host. */
export const isVersionedInterpreterName = (name: string): boolean => VERSIONED.test(name);

/** Every interpreter name above (enforcement hands them to the kernel, src/enforce/interpreters.ts). */
export const INTERPRETER_NAMES: readonly string[] = [...FAMILY_BY_NAME.keys()];

/** Versioned names: python3.11, perl5.36.0, php8.2, lua5.4, tclsh8.6. */
const VERSIONED = /^(python|pypy|perl|ruby|php|lua|tclsh)[0-9.]+$/;

/** The interpreter family a program name belongs to, if any. A login shell's argv[0] is "-bash". */
export function interpreterFamilyOfName(name: string): InterpreterFamily | undefined {
  const bare = basename(name.startsWith("-") ? name.slice(1) : name);
  const direct = FAMILY_BY_NAME.get(bare);
  if (direct !== undefined) return direct;
  const versioned = VERSIONED.exec(bare);
  return versioned !== null ? FAMILY_BY_NAME.get(versioned[1]!) : undefined;
}

/**
 * Options after which the next argument (or the rest of this one) is code to run, not a
 * command stream on stdin: `sh -c`, `python -c/-m`, `perl -e/-E`, `ruby -e`, `php -r`,
 * `node -e/-p`, `lua -e`.
 */
const CODE_OPTIONS: Readonly<Record<InterpreterFamily, readonly string[]>> = {
  shell: ["c"],
  python: ["c", "m"],
  perl: ["e", "E"],
  ruby: ["e"],
  php: ["r", "B", "R", "E", "F"],
  node: ["e", "p", "eval", "print"],
  lua: ["e"],
  tcl: [],
};

/** Options that take a value, so the value is not mistaken for a script operand. */
const VALUE_OPTIONS: Readonly<Record<InterpreterFamily, readonly string[]>> = {
  shell: ["o", "O"],
  python: ["W", "X", "Q"],
  perl: ["I", "M", "m", "x"],
  ruby: ["I", "r", "C", "E", "x"],
  php: ["c", "d", "z", "t"],
  node: ["r", "require", "import", "input-type", "loader", "experimental-loader", "conditions", "C", "title"],
  lua: ["l"],
  tcl: ["encoding"],
};

/**
 * Whether an interpreter started with `args` (argv, argv[0] included) reads commands from
 * stdin: no code option (`-c`, `-e`, ...) and no script operand, or an explicit `-i`/`-s`
 * (interactive, or commands from stdin) or `-` operand.
 */
export function readsCommandsFromStdin(family: InterpreterFamily, args: readonly string[]): boolean {
  const code = CODE_OPTIONS[family];
  const takesValue = VALUE_OPTIONS[family];
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-" || arg === "-i" || (family === "shell" && arg === "-s")) return true;
    if (arg === "--") return i + 1 >= args.length || args[i + 1] === "-";
    if (arg.startsWith("--")) {
      const name = arg.slice(2).split("=")[0]!;
      if (code.includes(name)) return false;
      if (name === "interactive") return true;
      if (takesValue.includes(name) && !arg.includes("=")) i++;
      continue;
    }
    if (arg.startsWith("-") || (family === "shell" && arg.startsWith("+"))) {
      // Clustered short options: `bash -ic`, `sh -ec`, `python -uc`.
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const letter = letters[j]!;
        if (letter === "i" || (family === "shell" && letter === "s")) return true;
        if (code.includes(letter)) return false;
        if (takesValue.includes(letter)) {
          if (j === letters.length - 1) i++;
          break;
        }
      }
      continue;
    }
    return false; // a script file
  }
  return true;
}

/** Which evidence named the interpreter (`sockeye.verdict.identified_by` on findings). */
export type IdentifiedBy = "name" | "argv0" | "applet" | "loader" | "build_id" | "content";

export interface ProgramIdentity {
  family: InterpreterFamily | undefined;
  by: IdentifiedBy | "none";
  /**
   * The interpreter's own argv, to read its options from: the applet's for `busybox sh -i`,
   * the loaded program's for `ld.so /bin/sh -i`, else the exec's.
   */
  args: readonly string[];
}

/** What a program file's content says it is: a build-id or digest of an installed interpreter. */
export type ContentIdentity = { family: InterpreterFamily; by: "build_id" | "content" };

/**
 * Looks at a file's content: `undefined` means the process's own program (its
 * /proc/<pid>/exe), a path is as the process names it (an ld.so operand).
 */
export type ContentLook = (path: string | undefined) => ContentIdentity | undefined;

/** The dynamic loaders, which run the program named by their first operand. */
const LOADER = /^(ld-linux(-[a-z0-9_-]+)?\.so\.[0-9]+|ld\.so|ld-musl-[a-z0-9_]+\.so\.[0-9]+)$/;
/** ld.so options that take a value (ld.so(8)): the operand is the first argument after them. */
const LOADER_VALUE_OPTIONS = new Set(["--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0", "--glibc-hwcaps-prefix", "--glibc-hwcaps-mask"]);

/**
 * Identifies a program, cheapest evidence first: the executable's base name; for busybox the
 * applet run (argv[0]'s base name, or the first argument when argv[0] is busybox itself); for
 * ld.so the program it loads; argv[0] (busybox runs `sh` as /proc/self/exe with argv[0] "sh");
 * then, when `content` is given, the program's content as the process sees it (a copied,
 * renamed or padded interpreter, a memfd, a file in another mount namespace).
 */
export function identifyProgram(executable: string, args: readonly string[], content?: ContentLook): ProgramIdentity {
  const name = basename(executable);
  const byName = name !== "" ? interpreterFamilyOfName(name) : undefined;
  if (byName !== undefined) return { family: byName, by: "name", args };
  if (isBusybox(name) || (args.length > 0 && isBusybox(basename(args[0]!)))) return identifyApplet(args);
  if (LOADER.test(name)) return identifyLoaded(args, content);
  const byArgv0 = args.length > 0 ? interpreterFamilyOfName(args[0]!) : undefined;
  if (byArgv0 !== undefined) return { family: byArgv0, by: "argv0", args };
  const byContent = content?.(undefined);
  if (byContent !== undefined) return { ...byContent, args };
  return { family: undefined, by: "none", args };
}

/** Busybox runs its own applet dispatcher for any argv[0] that starts with "busybox" (`busybox-x sh`). */
const isBusybox = (name: string): boolean => name.startsWith("busybox");

/** `busybox sh -i` runs the applet named by its first argument, `sh -i` (argv[0] "sh") by argv[0]. */
function identifyApplet(args: readonly string[]): ProgramIdentity {
  const appletArgs = args.length > 0 && isBusybox(basename(args[0]!)) ? args.slice(1) : args;
  const family = appletArgs.length > 0 ? interpreterFamilyOfName(appletArgs[0]!) : undefined;
  return family !== undefined ? { family, by: "applet", args: appletArgs } : { family: undefined, by: "none", args };
}

/** `ld.so [options] PROGRAM [args]` runs PROGRAM: its name, else its content, decides. */
function identifyLoaded(args: readonly string[], content: ContentLook | undefined): ProgramIdentity {
  let i = 1;
  while (i < args.length && args[i]!.startsWith("--")) i += LOADER_VALUE_OPTIONS.has(args[i]!) ? 2 : 1;
  const program = args[i];
  if (program === undefined) return { family: undefined, by: "none", args };
  const programArgs = args.slice(i);
  const family = interpreterFamilyOfName(program) ?? content?.(program)?.family;
  return family !== undefined ? { family, by: "loader", args: programArgs } : { family: undefined, by: "none", args };
}

/**
 * Recognises a copied, renamed or padded interpreter by its content. First its GNU build-id,
 * read from the file's first pages and compared with those of the interpreters installed on
 * this host: it survives appended bytes and renames, and costs one small read per file
 * identity. A file with a build-id that is no interpreter's is not one: an identical copy
 * would carry the same build-id, so hashing it cannot say otherwise. Only a file without the
 * note is hashed whole (SHA-256 against the installed interpreters). Neither catches a shell
 * rebuilt from source or one whose note was rewritten: that is behaviour's to see.
 * The installed interpreters are found on the usual paths once, lazily. Busybox is left out:
 * its content is every applet at once, and its shell is recognised by the applet run.
 */
export class InterpreterContents {
  private known: { digests: Map<string, InterpreterFamily>; buildIds: Map<string, InterpreterFamily> } | undefined;
  private incomplete = 0;

  constructor(private readonly searchDirs: readonly string[] = ["/usr/bin", "/bin", "/usr/local/bin"]) {}

  /** The family whose installed interpreter this file is, and by which evidence. */
  identify(path: string, host: HostView): ContentIdentity | undefined {
    const known = this.knownInterpreters(host);
    const note = host.buildId(path);
    if (note.status === "found") {
      const family = known.buildIds.get(note.buildId);
      return family !== undefined ? { family, by: "build_id" } : undefined;
    }
    if (note.status === "incomplete") this.incomplete++;
    if (note.status === "unreadable") return undefined;
    const look = host.fileDigest(path);
    if (look.status === "incomplete") this.incomplete++;
    const family = look.status === "complete" ? known.digests.get(look.sha256) : undefined;
    return family !== undefined ? { family, by: "content" } : undefined;
  }

  /** The content look for a process: its own program, or a path as it names it, read through /proc. */
  lookFor(task: { pid: number; startNs: number }, host: HostView): ContentLook {
    return (path) => {
      const found = this.identify(host.pathSeenBy(task.pid, path), host);
      // Confirmed after the read, and only when it names an interpreter: nearly every look
      // (a program in a pipeline) names none and costs one stat of a cached file identity.
      return found !== undefined && host.liveFacts(task.pid, task.startNs) !== undefined ? found : undefined;
    };
  }

  /** Files whose build-id or digest lay past a look's budget (never a silent "not an interpreter": counted). */
  get incompleteLooks(): number {
    return this.incomplete;
  }

  private knownInterpreters(host: HostView): NonNullable<InterpreterContents["known"]> {
    if (this.known !== undefined) return this.known;
    const known = { digests: new Map<string, InterpreterFamily>(), buildIds: new Map<string, InterpreterFamily>() };
    const seen = new Set<string>();
    for (const dir of this.searchDirs) {
      for (const [name, family] of FAMILY_BY_NAME) {
        const real = host.regularFile(`${dir}/${name}`);
        if (real === undefined || seen.has(real) || basename(real) === "busybox") continue;
        seen.add(real);
        const note = host.buildId(real);
        if (note.status === "found") {
          known.buildIds.set(note.buildId, family);
          continue;
        }
        // Only a file without a build-id can be a copy of one without: hash those alone.
        const look = host.fileDigest(real);
        if (look.status === "complete") known.digests.set(look.sha256, family);
      }
    }
    this.known = known;
    return known;
  }
}
