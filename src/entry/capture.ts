/** `sockeye/capture`: recorded events as JSON lines, read and written (`sockeye run --capture`). */
export { CaptureLineError, readCapture, type MalformedLine, type ReadCaptureOptions } from "../capture/reader.js";
export { CaptureWriter, captureLine, openCaptureFile, type CaptureFileOptions } from "../capture/writer.js";
