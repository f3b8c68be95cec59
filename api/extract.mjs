// The public API report: API Extractor reads the declarations of each entry point in
// package.json `exports` and compares them with the checked-in api/<entry>.api.md.
//
//   node api/extract.mjs            fails when the public surface differs from the report (npm run lint)
//   node api/extract.mjs --update   rewrites the reports after a deliberate change (npm run api:update)
//
// The declarations are emitted fresh from src/ into build/api/ first, so a stale dist/ cannot
// hide a change (inside the project, so the reports name stable paths; not under
// node_modules/, where API Extractor would take them for another package's).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Extractor, ExtractorConfig, ExtractorLogLevel } from "@microsoft/api-extractor";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const update = process.argv.includes("--update");
const work = join(root, "build", "api");
const dts = join(work, "dts");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const tsc = spawnSync(
  process.execPath,
  [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json"), "--emitDeclarationOnly", "--sourceMap", "false", "--outDir", dts],
  { stdio: "inherit" },
);
if (tsc.status !== 0) {
  console.error("api: the declarations did not compile (see above)");
  process.exit(1);
}

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const entries = Object.entries(pkg.exports)
  .filter(([, target]) => typeof target === "object")
  .map(([subpath, target]) => ({
    report: subpath === "." ? "sockeye" : `sockeye-${subpath.slice(2)}`,
    declarations: join(dts, target.types.replace(/^\.\/dist\//, "")),
  }));

let failed = false;
for (const entry of entries) {
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: entry.declarations,
      bundledPackages: [],
      compiler: { overrideTsconfig: { compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022"], types: ["node"], strict: true, skipLibCheck: true }, include: [dts] } },
      apiReport: { enabled: true, reportFolder: join(root, "api"), reportTempFolder: join(work, "temp"), reportFileName: `${entry.report}.api.md` },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Error } },
        extractorMessageReporting: {
          default: { logLevel: ExtractorLogLevel.Warning },
          // Release tags (@public/@beta) are not used: what an entry exports is public.
          "ae-missing-release-tag": { logLevel: ExtractorLogLevel.None },
          // A public member whose type is not exported: the report lists it, so it shows in
          // review (a subpath's may be the root's own, such as SensorEvent).
          "ae-forgotten-export": { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
          // The report records the surface; documentation is reviewed with the code.
          "ae-undocumented": { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
        },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      },
    },
    configObjectFullPath: undefined,
    packageJsonFullPath: join(root, "package.json"),
  });
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false });
  if (!result.succeeded) {
    failed = true;
    if (result.apiReportChanged) {
      console.error(`api: the public API of ${entry.report} differs from api/${entry.report}.api.md: if the change is meant, run 'npm run api:update' and commit the report`);
    } else {
      console.error(`api: ${entry.report}: ${result.errorCount} error(s), ${result.warningCount} warning(s) (see above)`);
    }
  }
}
process.exit(failed ? 1 : 0);
