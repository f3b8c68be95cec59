/**
 * The daemon's side of the webhook's SIGKILL test, in its own process: spools findings for
 * a webhook that is down, prints "spooled", and waits to be killed.
 */
import { SpooledWebhookOutput } from "../../../src/index.js";
import { numberedFindings } from "./fixtures.js";

const [url, spool, count] = process.argv.slice(2);
const output = new SpooledWebhookOutput({ url: url!, spool: { dir: spool! } });
await output.open();
for (const finding of numberedFindings(Number(count))) output.write([finding]);
process.stdout.write("spooled\n");
setInterval(() => {}, 1000);
