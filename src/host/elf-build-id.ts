/**
 * The GNU build-id of an ELF file, from its first bytes: the linker writes it into a PT_NOTE
 * segment right after the program headers, so it survives bytes appended to the file, a
 * rename and a copy, where a digest of the whole file does not.
 */

/** What the first bytes of a file say about its build-id. `beyond`: the note lies past them. */
export type BuildIdInHead = { status: "found"; buildId: string } | { status: "none" } | { status: "beyond" };

const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;
/** A note's name is "GNU\0": four bytes. */
const GNU = 0x00554e47;

export function buildIdOfElfHead(head: Uint8Array): BuildIdInHead {
  if (head.length < 52 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return { status: "none" };
  const wide = head[4] === 2;
  const little = head[5] === 1;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const u16 = (at: number) => view.getUint16(at, little);
  const u32 = (at: number) => view.getUint32(at, little);
  const word = (at: number) => (wide ? Number(view.getBigUint64(at, little)) : u32(at));
  if (wide && head.length < 64) return { status: "none" };
  const phoff = word(wide ? 32 : 28);
  const phentsize = u16(wide ? 54 : 42);
  const phnum = u16(wide ? 56 : 44);
  if (phentsize === 0 || phoff + phentsize * phnum > head.length) return phnum === 0 ? { status: "none" } : { status: "beyond" };
  let beyond = false;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(ph) !== PT_NOTE) continue;
    const offset = word(wide ? ph + 8 : ph + 4);
    const size = word(wide ? ph + 32 : ph + 16);
    if (offset + size > head.length) {
      beyond = true;
      continue;
    }
    const found = buildIdInNotes(view, offset, offset + size, little);
    if (found !== undefined) return { status: "found", buildId: found };
  }
  return beyond ? { status: "beyond" } : { status: "none" };
}

/** Notes are (namesz, descsz, type, name, desc), name and desc padded to 4 bytes. */
function buildIdInNotes(view: DataView, start: number, end: number, little: boolean): string | undefined {
  const pad = (n: number) => (n + 3) & ~3;
  for (let at = start; at + 12 <= end;) {
    const namesz = view.getUint32(at, little);
    const descsz = view.getUint32(at + 4, little);
    const type = view.getUint32(at + 8, little);
    const desc = at + 12 + pad(namesz);
    if (desc + descsz > end) return undefined;
    if (type === NT_GNU_BUILD_ID && namesz === 4 && view.getUint32(at + 12, true) === GNU && descsz > 0) {
      return Buffer.from(view.buffer, view.byteOffset + desc, descsz).toString("hex");
    }
    at = desc + pad(descsz);
  }
  return undefined;
}
