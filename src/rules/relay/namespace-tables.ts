/**
 * The TCP tables one relay evaluation reads, per network namespace. A socket a chain reaches
 * that no connect record names (io_uring's IORING_OP_CONNECT, a record lost or forgotten at
 * the socket bound, a socket older than the sensor in a namespace other than the sensor's) is
 * in the table of the namespace it was made in, which /proc/net/tcp (the sensor's own) does
 * not show for a container or any other netns. Where it was made is not known, so the tables
 * are read in the order a socket most likely sits: the namespace of the process holding it,
 * the shell's, then the sensor's own (a socket connected on the host by a process that moved
 * to another namespace afterwards: `unshare -n` after the connect).
 *
 * Each read walks the kernel's whole TCP hash table, whichever namespace it shows (~11 ms on a
 * 24 GiB host), so a namespace is read at most once per evaluation (keyed by its inode, one
 * readlink per pid), only when a socket is not found in the tables read so far, and at most
 * `maxTables` namespaces per evaluation: a look that needs more is cut and counted incomplete
 * (SENSOR-001) by the caller, never a silent "not outbound". In the common case (everything
 * in one namespace) that is the one read the rule made before namespaces were looked at.
 */
import type { ExistingTcpSocket, HostView } from "../../host/host-view.js";

export class NamespaceTcpTables {
  /** Namespace keys whose tables were read in this evaluation. */
  private readonly read = new Set<string>();
  /** Every socket of the tables read, by inode (socket inodes are unique across namespaces). */
  private readonly sockets = new Map<number, ExistingTcpSocket>();
  /** The unix sockets of the namespaces looked at, and which those were (HostView.unixSocketInodes). */
  private readonly unixSockets = new Set<number>();
  private readonly unixRead = new Set<string>();
  private readonly nsOfPid = new Map<number, string | undefined>();
  /** A socket was not found and another namespace's table was past `maxTables`. */
  cut = false;

  constructor(
    private readonly host: HostView,
    private readonly maxTables: number,
  ) {}

  /** How many tables this evaluation read. */
  get reads(): number {
    return this.read.size;
  }

  /**
   * The socket `ino` as the tables of the namespaces of `pids` (in order), then the sensor's
   * own, show it; undefined when none of them has it. A socket found is returned whatever its
   * origin (the caller keeps only outbound ones): found, the later tables are not read.
   */
  find(ino: number, pids: readonly number[]): ExistingTcpSocket | undefined {
    const seen = this.sockets.get(ino);
    if (seen !== undefined) return seen;
    // A unix socket (a parent's IPC channel, a service's stdio) is in no TCP table: told from
    // the namespaces' unix lists first, a fraction of a TCP table read each, so the chains that
    // reach one (every look from a shell whose ancestors hold some) read no TCP table for it.
    if (this.isUnix(ino, pids)) return undefined;
    for (const pid of pids) {
      const key = this.keyOf(pid);
      if (key === undefined) continue;
      if (this.readTable(key, pid)) {
        const found = this.sockets.get(ino);
        if (found !== undefined) return found;
      }
    }
    const own = this.host.netNamespace?.();
    if (this.readTable(own === undefined ? "self" : `net:${own}`, undefined)) return this.sockets.get(ino);
    return undefined;
  }

  /** Whether `ino` is a unix socket of the namespace of one of `pids`, or of the sensor's own. */
  private isUnix(ino: number, pids: readonly number[]): boolean {
    const host = this.host;
    if (host.unixSocketInodes === undefined) return false;
    if (this.unixSockets.has(ino)) return true;
    const read = (key: string, pid: number | undefined): boolean => {
      if (this.unixRead.has(key)) return false;
      this.unixRead.add(key);
      for (const inode of host.unixSocketInodes!(pid)) this.unixSockets.add(inode);
      return this.unixSockets.has(ino);
    };
    for (const pid of pids) {
      const key = this.keyOf(pid);
      if (key !== undefined && read(key, pid)) return true;
    }
    const own = host.netNamespace?.();
    return read(own === undefined ? "self" : `net:${own}`, undefined);
  }

  /** Reads the table of namespace `key` through `pid` unless read already; false when past the budget or read before. */
  private readTable(key: string, pid: number | undefined): boolean {
    if (this.read.has(key)) return false;
    if (this.read.size >= this.maxTables) {
      this.cut = true;
      return false;
    }
    this.read.add(key);
    for (const s of this.host.tcpSockets(pid)) this.sockets.set(s.ino, s);
    return true;
  }

  /**
   * The namespace `pid` is in now. Where it cannot be told (a host view without netNamespace,
   * or a link the sensor may not read: /proc/<pid>/ns/* asks for ptrace access, /proc/<pid>/net
   * does not), the pid is its own key: its table is still read, perhaps twice for one
   * namespace, within the same budget. A gone process's read finds no file and costs nothing.
   */
  private keyOf(pid: number): string | undefined {
    if (pid <= 0) return undefined;
    if (!this.nsOfPid.has(pid)) {
      const ns = this.host.netNamespace?.(pid);
      this.nsOfPid.set(pid, ns === undefined ? `pid:${pid}` : `net:${ns}`);
    }
    return this.nsOfPid.get(pid);
  }
}
