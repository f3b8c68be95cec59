/** An event as EQL queries see it: nested objects, fields reached by dotted paths. */
export type EqlDocument = Record<string, unknown>;
