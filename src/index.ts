/**
 * sockeye's public API: `import { openSensor, ... } from "sockeye"`.
 * Each section is owned by one stage; keep exports grouped by stage.
 */

// --- sensor: kernel events -------------------------------------------------------------
export * from "./sensor/events.js";

// --- engine: rules, process table, findings ---------------------------------------------
export * from "./engine/rule.js";

// --- elastic: detection-rules TOML and EQL ----------------------------------------------
