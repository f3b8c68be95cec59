/**
 * The namespace facts of a process found running, as /proc shows them: a namespace link's
 * inode and status's NSpid, parsed as the kernel's task context names them (pid_ns, mnt_ns,
 * net_ns: the inode; ns_pid: the pid in the innermost pid namespace).
 */
import { describe, expect, it } from "vitest";
import { innermostNsPid, namespaceInode } from "../../../src/host/proc-parse.js";

describe("namespaceInode", () => {
  it("reads the inode of a link of the kind asked for", () => {
    expect(namespaceInode("net:[4026531840]", "net")).toBe(4026531840);
    expect(namespaceInode("pid:[4026531836]", "pid")).toBe(4026531836);
    expect(namespaceInode("mnt:[4026532301]", "mnt")).toBe(4026532301);
  });

  it("refuses another kind's link, a malformed target and a zero inode", () => {
    // pid_for_children is not the pid namespace the task's pid lives in.
    expect(namespaceInode("pid_for_children:[4026531836]", "pid")).toBeUndefined();
    expect(namespaceInode("net:[4026531840]", "mnt")).toBeUndefined();
    expect(namespaceInode("net:4026531840", "net")).toBeUndefined();
    expect(namespaceInode("net:[]", "net")).toBeUndefined();
    expect(namespaceInode("net:[0]", "net")).toBeUndefined();
    expect(namespaceInode("", "net")).toBeUndefined();
  });
});

describe("innermostNsPid", () => {
  const status = (nspid: string) => `Name:\tsh\nTgid:\t4242\nPid:\t4242\nPPid:\t4240\n${nspid}NSpgid:\t4242\t1\nUid:\t0\t0\t0\t0\n`;

  it("takes the last pid of the NSpid line: the one inside the innermost namespace", () => {
    expect(innermostNsPid(status("NSpid:\t4242\n"))).toBe(4242); // the host's own namespace
    expect(innermostNsPid(status("NSpid:\t4242\t1\n"))).toBe(1); // a container's pid 1
    expect(innermostNsPid(status("NSpid:\t4242\t17\t3\n"))).toBe(3); // nested twice
  });

  it("is undefined without the line (before Linux 4.1) and for a malformed one, never a neighbour's number", () => {
    expect(innermostNsPid(status(""))).toBeUndefined();
    expect(innermostNsPid(status("NSpid:\t\n"))).toBeUndefined();
    expect(innermostNsPid(status("NSpid:\tx 1\n"))).toBeUndefined();
  });
});
