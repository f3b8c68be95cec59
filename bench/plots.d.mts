// Types of bench/plots.mjs for the TypeScript that imports it (its unit test).

/** One plot (`file` is its name in the output folder): written to `path`, or skipped with the reason (its part did not run). */
export type PlotOutcome =
  | { file: string; title: string; caption: string; path: string; skipped?: undefined }
  | { file: string; title: string; caption: string; skipped: string; path?: undefined };

/** Writes each plot `results` (the object bench/run.mjs writes to results.json) has data for into `outDir`. */
export function renderPlots(results: object, outDir: string): Promise<PlotOutcome[]>;
