/**
 * An output seen through the secret redactor (redact.ts): what it delivers has credentials in
 * command lines cut out. Every output of a set shares one redactor, which remembers each batch
 * it redacted, so a batch is scanned once however many outputs take it.
 */
import type { Finding } from "../engine/finding.js";
import type { FindingOutput, FlushResult, OutputStats } from "./output.js";
import { redactSecrets } from "./redact.js";

export class SecretRedactor {
  private lastBatch: readonly Finding[] | undefined;
  private lastRedacted: readonly Finding[] = [];
  /** Secrets cut out so far, for the stats. */
  redacted = 0;

  apply(findings: readonly Finding[]): readonly Finding[] {
    if (findings === this.lastBatch) return this.lastRedacted;
    const out = findings.map((f) => {
      const r = redactSecrets(f);
      this.redacted += r.count;
      return r.value;
    });
    this.lastBatch = findings;
    this.lastRedacted = out;
    return out;
  }
}

export class RedactingOutput implements FindingOutput {
  readonly name: string;
  readonly type: string;

  constructor(
    private readonly inner: FindingOutput,
    private readonly redactor: SecretRedactor,
  ) {
    this.name = inner.name;
    this.type = inner.type;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  write(findings: readonly Finding[]): void {
    this.inner.write(this.redactor.apply(findings));
  }

  flush(timeoutMs?: number): Promise<FlushResult> {
    return this.inner.flush(timeoutMs);
  }

  close(timeoutMs?: number): Promise<FlushResult> {
    return this.inner.close(timeoutMs);
  }

  stats(): OutputStats {
    return this.inner.stats();
  }
}
