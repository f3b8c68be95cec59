// Preloaded (`node --import`) by import-opens-nothing.test.ts: records every call of node's fs
// functions that name a path, and every native addon loaded, in globalThis.fsCalls.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";

const calls = [];
const record = (target, names, prefix) => {
  for (const name of names) {
    const original = target[name];
    target[name] = function (...args) {
      calls.push(`${prefix}${name} ${String(args[0])}`);
      return original.apply(this, args);
    };
  }
};
record(fs, ["openSync", "readFileSync", "readdirSync", "readlinkSync", "statSync", "lstatSync", "realpathSync", "existsSync", "accessSync", "opendirSync", "open", "readFile", "readdir", "stat", "opendir"], "");
record(fs.promises, ["open", "readFile", "readdir", "stat", "opendir"], "promises.");
const dlopen = process.dlopen.bind(process);
process.dlopen = (...args) => {
  calls.push(`dlopen ${String(args[1])}`);
  return dlopen(...args);
};
syncBuiltinESMExports();
globalThis.fsCalls = calls;
