/**
 * A host view for rule tests: who holds what is a map the test changes as its sequence goes
 * on, written as the relay graph's endpoint keys; everything else shows nothing.
 */
import { OFFLINE_HOST, type ExistingTcpSocket, type Holding, type HostView, type OpenFile, type OpenObject } from "sockeye";

export interface FakeHost extends HostView {
  /** pid → what it holds now; a pid not in it is gone. */
  readonly world: Map<number, Holding[]>;
}

export function fakeHost(options: { existing?: ExistingTcpSocket[]; maxFdsPerLook?: number } = {}): FakeHost {
  const world = new Map<number, Holding[]>();
  const max = options.maxFdsPerLook ?? Infinity;
  return {
    ...OFFLINE_HOST,
    world,
    openFiles: (pid) => {
      const held = world.get(pid);
      if (held === undefined) return { status: "gone" };
      const files = held.slice(0, max).map(openFile);
      return held.length > max ? { status: "incomplete", files, reason: "fd_budget" } : { status: "complete", files };
    },
    // A process in the world is alive (its ids are not what these tests look at).
    liveFacts: (pid) => (world.has(pid) ? { euid: 0, egid: 0, sid: pid, pgid: pid, ttyNr: 0 } : undefined),
    tcpSockets: () => options.existing ?? [],
  };
}

function openFile(h: Holding): OpenFile {
  const [kind, ...numbers] = h.key.split(":");
  const n = numbers.map(Number);
  const objects: Record<string, () => OpenObject> = {
    pipe: () => ({ kind: "pipe", ino: n[0]! }),
    sock: () => ({ kind: "socket", ino: n[0]! }),
    fifo: () => ({ kind: "fifo", major: n[0]!, minor: n[1]!, ino: n[2]! }),
    ptm: () => ({ kind: "pty_master", index: n[0]! }),
    pts: () => ({ kind: "pty_slave", index: n[0]! }),
  };
  const object = objects[kind!];
  if (object === undefined) throw new Error(`fake host: no open file for key ${h.key}`);
  return { fd: h.fd, object: object(), access: h.access };
}
