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

export interface ProgramIdentity {
  family: InterpreterFamily | undefined;
  /** How the family was found: by the executable's name, argv[0], or its content. */
  by: "executable" | "argv0" | "content" | "none";
}

/**
 * Identifies a program by the names it runs under: the executable's base name, then
 * argv[0] (busybox runs `sh` as /proc/self/exe with argv[0] "sh"), then, when `content` is
 * given, the executable's content (a copied or renamed shell).
 */
export function identifyProgram(executable: string, args: readonly string[], content?: (executable: string) => InterpreterFamily | undefined): ProgramIdentity {
  const byExe = executable !== "" ? interpreterFamilyOfName(executable) : undefined;
  if (byExe !== undefined) return { family: byExe, by: "executable" };
  const byArgv0 = args.length > 0 ? interpreterFamilyOfName(args[0]!) : undefined;
  if (byArgv0 !== undefined) return { family: byArgv0, by: "argv0" };
  const byContent = content !== undefined && executable !== "" ? content(executable) : undefined;
  if (byContent !== undefined) return { family: byContent, by: "content" };
  return { family: undefined, by: "none" };
}

/**
 * Recognises a copied or renamed interpreter by its content: the SHA-256 of the file is
 * compared with those of the interpreters installed on this host (found on the usual paths
 * once, lazily). Files are hashed only when asked, which happens only for a program that
 * starts with a socket on stdin under a name that is no interpreter's; the host keeps digests
 * by file identity. Busybox is left out: its content is every applet at once, and its shell is
 * recognised by argv[0].
 */
export class InterpreterContents {
  private known: Map<string, InterpreterFamily> | undefined;
  private incomplete = 0;

  constructor(private readonly searchDirs: readonly string[] = ["/usr/bin", "/bin", "/usr/local/bin"]) {}

  /** The family whose installed interpreter has this file's content, if any. */
  family(path: string, host: HostView): InterpreterFamily | undefined {
    const digest = this.digest(path, host);
    return digest !== undefined ? this.knownDigests(host).get(digest) : undefined;
  }

  /** Files too large to hash in one look (never a silent "not an interpreter": counted). */
  get incompleteLooks(): number {
    return this.incomplete;
  }

  private digest(path: string, host: HostView): string | undefined {
    const look = host.fileDigest(path);
    if (look.status === "incomplete") this.incomplete++;
    return look.status === "complete" ? look.sha256 : undefined;
  }

  private knownDigests(host: HostView): Map<string, InterpreterFamily> {
    if (this.known !== undefined) return this.known;
    const known = new Map<string, InterpreterFamily>();
    const seen = new Set<string>();
    for (const dir of this.searchDirs) {
      for (const [name, family] of FAMILY_BY_NAME) {
        const real = host.regularFile(`${dir}/${name}`);
        if (real === undefined || seen.has(real) || basename(real) === "busybox") continue;
        seen.add(real);
        const look = host.fileDigest(real);
        if (look.status === "complete") known.set(look.sha256, family);
      }
    }
    this.known = known;
    return known;
  }
}
