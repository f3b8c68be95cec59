/**
 * The daemon's side of the SIGKILL test, in its own process: spools findings for a NATS
 * server that is down, prints "spooled", and waits to be killed.
 */
import { NatsOutput } from "../../../src/index.js";
import { numberedFindings } from "./fixtures.js";

const [port, spool, count] = process.argv.slice(2);
const output = new NatsOutput({ servers: [`nats://127.0.0.1:${port}`], spool: { dir: spool! } });
await output.open();
for (const finding of numberedFindings(Number(count))) output.write([finding]);
process.stdout.write("spooled\n");
setInterval(() => {}, 1000);
