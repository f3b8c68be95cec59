// Decode cost per exec record by shape, over dist/ (no kernel, no root): what one record costs
// the event loop in decodeBatch, for argv an attacker chooses against an ordinary command.
// Usage: node bench/decode-cost.mjs [RECORDS]   (after npm run build:ts)
// Prints one JSON line: µs per record (median of 11 rounds) and bytes of argv kept per record, by shape.
import { decodeBatch } from "../dist/sensor/decode.js";
import { EventKindCode, LAYOUT } from "../dist/sensor/layout.js";

const records = Number(process.argv[2] ?? 2000);
const X = LAYOUT.exec_event;

/** One exec record as the kernel writes it: header, then filename and argv in data[]. */
function execRecord(filename, argv) {
  const name = Buffer.from(filename);
  const args = Buffer.from(argv.map((a) => `${a}\0`).join(""));
  const size = X.data + name.length + args.length;
  const record = Buffer.alloc((size + 7) & ~7);
  record.writeUInt16LE(EventKindCode.exec, 0);
  record.writeUInt16LE(size, 2);
  record.writeUInt16LE(name.length, X.filename_len);
  record.writeUInt16LE(args.length, X.args_len);
  record.write("bash", X.task + LAYOUT.task_context.comm);
  // Root's capability sets, as most execs on a server carry them (absent from older layouts).
  if (X.caps !== undefined) {
    record.writeUInt8(1, X.caps_known);
    record.writeBigUInt64LE(0x1ffffffffffn, X.caps + LAYOUT.cap_sets.effective);
    record.writeBigUInt64LE(0x1ffffffffffn, X.caps + LAYOUT.cap_sets.permitted);
  }
  name.copy(record, X.data);
  args.copy(record, X.data + name.length);
  return record;
}

const shapes = {
  "ls -la /tmp": execRecord("/bin/ls", ["ls", "-la", "/tmp"]),
  "4,095 one-byte arguments": execRecord("/bin/true", ["/bin/true", ...Array.from({ length: 4094 }, () => "a")]),
  "one 8,000-byte argument": execRecord("/bin/true", ["/bin/true", "x".repeat(8000)]),
};

const result = {};
for (const [shape, record] of Object.entries(shapes)) {
  const batch = Buffer.concat(Array.from({ length: records }, () => record));
  const buffer = batch.buffer.slice(batch.byteOffset, batch.byteOffset + batch.length);
  for (let i = 0; i < 5; i++) decodeBatch(buffer, 0); // warm up the JIT
  const rounds = [];
  let kept = 0;
  for (let round = 0; round < 11; round++) {
    const start = process.hrtime.bigint();
    const { events } = decodeBatch(buffer, 0);
    rounds.push(Number(process.hrtime.bigint() - start) / 1e3 / records);
    const first = events[0];
    if (first?.kind !== "exec") throw new Error("decode-cost: the batch did not decode to exec events");
    kept = first.args.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
  }
  rounds.sort((a, b) => a - b);
  result[shape] = { usPerRecord: Number(rounds[5].toFixed(2)), argvBytesKept: kept, recordBytes: record.length };
}
console.log(JSON.stringify(result));
