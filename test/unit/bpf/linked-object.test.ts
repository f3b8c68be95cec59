/**
 * The kernel side is one object linked from one per hook area (bpf/README.md). A map or
 * load-time setting defined in two areas (a __weak or static definition in a header, a copy
 * pasted into a second file) links without complaint and gives two maps, or one silently
 * chosen; these checks read the ELF symbol tables the build left in build/gen.
 */
import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";

const GEN = new URL("../../../build/gen/", import.meta.url);
const AREAS = new URL("bpf/", GEN);

interface ElfSymbol {
  name: string;
  section: string; // "" when undefined (an extern)
  global: boolean;
}

const SHT_SYMTAB = 2;
const STB_LOCAL = 0;

// Just enough of ELF64 little-endian (what clang -target bpf writes) to list symbols.
function symbols(path: URL): ElfSymbol[] {
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error(`${path.pathname}: not a 64-bit little-endian ELF`);
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const header = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: elf.readUInt32LE(at),
      type: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 24)),
      size: Number(elf.readBigUInt64LE(at + 32)),
      link: elf.readUInt32LE(at + 40),
      entsize: Number(elf.readBigUInt64LE(at + 56)),
    };
  };
  const cString = (table: { offset: number }, at: number) => {
    const start = table.offset + at;
    return elf.toString("latin1", start, elf.indexOf(0, start));
  };
  const sectionNames = header(elf.readUInt16LE(0x3e));
  const sectionName = (i: number) => cString(sectionNames, header(i).name);

  const out: ElfSymbol[] = [];
  for (let i = 0; i < shnum; i++) {
    const symtab = header(i);
    if (symtab.type !== SHT_SYMTAB) continue;
    const strings = header(symtab.link);
    for (let at = symtab.offset + symtab.entsize; at < symtab.offset + symtab.size; at += symtab.entsize) {
      const shndx = elf.readUInt16LE(at + 6);
      out.push({
        name: cString(strings, elf.readUInt32LE(at)),
        section: shndx === 0 || shndx >= 0xff00 ? "" : sectionName(shndx),
        global: elf[at + 4]! >> 4 !== STB_LOCAL,
      });
    }
  }
  return out;
}

// Maps live in .maps, load-time settings in .rodata.
const isMapOrSetting = (s: ElfSymbol) => (s.section === ".maps" || s.section === ".rodata") && s.name !== "";

function countBy(names: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return counts;
}
const repeated = (counts: Map<string, number>) => [...counts].filter(([, n]) => n !== 1);

describe("linked BPF object: every map and load-time setting exactly once", () => {
  const linked = symbols(new URL("sockeye.bpf.o", GEN)).filter(isMapOrSetting);
  const areaFiles = readdirSync(AREAS).filter((f) => f.endsWith(".bpf.o")).sort();
  const areas = areaFiles.map((f) => ({ file: f, symbols: symbols(new URL(f, AREAS)) }));
  const definitions = areas.flatMap((a) => a.symbols.filter(isMapOrSetting).map((s) => ({ ...s, file: a.file })));

  it("links one object per hook area", () => {
    expect(areaFiles).toEqual(["accept", "common", "compat", "connect", "dup", "enforce", "process", "relay"].map((a) => `${a}.bpf.o`));
  });

  it("the linked object names each map and setting once", () => {
    const maps = linked.filter((s) => s.section === ".maps").map((s) => s.name);
    expect(maps).toEqual(expect.arrayContaining(["detection_events", "process_events", "hook_counters"]));
    expect(repeated(countBy(linked.map((s) => `${s.section} ${s.name}`)))).toEqual([]);
  });

  it("each map and setting is defined in exactly one area's object", () => {
    const where = new Map<string, string[]>();
    for (const d of definitions) where.set(d.name, [...(where.get(d.name) ?? []), d.file]);
    expect([...where].filter(([, files]) => files.length !== 1)).toEqual([]);
  });

  it("what an area declares extern is defined by another, and the linked object holds what the areas define", () => {
    const defined = new Set(definitions.map((d) => d.name));
    const externs = areas.flatMap((a) => a.symbols.filter((s) => s.global && s.section === "" && s.name !== "").map((s) => s.name));
    expect(externs.filter((n) => !defined.has(n))).toEqual([]);
    expect(linked.map((s) => s.name).sort()).toEqual([...defined].sort());
  });

  it("shared maps and settings are defined in common.bpf.o, which links first (bpf/README.md)", () => {
    const externs = new Set(areas.flatMap((a) => a.symbols.filter((s) => s.global && s.section === "").map((s) => s.name)));
    const sharedElsewhere = definitions.filter((d) => externs.has(d.name) && d.file !== "common.bpf.o");
    expect(sharedElsewhere.map((d) => `${d.file}: ${d.name}`)).toEqual([]);
  });
});
