/**
 * A start in steps, each with its undo: when a step fails, every step that succeeded is
 * undone, newest first, so a refused start leaves no lock held, no port bound and no file
 * half-written. Once started, stop() undoes them all the same way.
 */
export class StartSequence {
  private readonly undo: (() => unknown)[] = [];

  async step<T>(start: () => Promise<T>, stop: (value: T) => unknown): Promise<T> {
    try {
      const value = await start();
      this.undo.unshift(() => stop(value));
      return value;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    for (const undoStep of this.undo.splice(0)) await undoStep();
  }
}
