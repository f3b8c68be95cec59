// Loads a local user chooses the cost of (issue 25), as python3 programs: the kernel tier's
// robustness tests and bench/event-loop-lag.mjs run the same ones. Each takes its duration in
// seconds as its first argument, prints "ready" once set up, stops by itself, and prints
// what it did as its last line (a count). Nothing reaches anything but 127.0.0.1.

// A parent holding FDS fds (dups of two pipe ends: the count is the cost, not the objects)
// runs `cat | sh | cat` relays in a loop, so RELAY-001 looks at its open files for every
// shell. It raises its own RLIMIT_NOFILE: with CAP_SYS_RESOURCE up to fs.nr_open; without it
// (a container's root) to the hard limit, and forks a chain of holders, each inheriting the
// fd table, until the relays' ancestors hold FDS between them. Says the total: "ready N".
export const FD_HOLDER = `
import os, resource, subprocess, sys, time
seconds, want = float(sys.argv[1]), int(sys.argv[2])
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want + 64, want + 64)); each = want
except (ValueError, OSError):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)); each = hard - 64
r, w = os.pipe()
held = [os.dup(r if i % 2 else w) for i in range(each - 2)]
total = each
while total < want:
    child = os.fork()
    if child:
        os.waitpid(child, 0); os._exit(0)
    total += each
print("ready", total, flush=True)
end = time.time() + seconds; relays = 0
while time.time() < end:
    a = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    s = subprocess.Popen(["sh"], stdin=a.stdout, stdout=subprocess.PIPE)
    b = subprocess.Popen(["cat"], stdin=s.stdout, stdout=subprocess.DEVNULL)
    a.stdout.close(); s.stdout.close()
    a.stdin.write(b"echo hi\\n"); a.stdin.close()
    a.wait(); s.wait(); b.wait(); relays += 1
print(relays, flush=True)
`;

// A 64 MiB copy of dash started again and again with a socket on stdio and a new mtime
// (nc.traditional -e: a program that is no interpreter dups the socket, then execs the copy),
// so TRC-101 hashes its content each time. Arguments: seconds, the copy's path, a port on
// 127.0.0.1 that answers "exit".
export const BIG_EXEC = `
import os, shutil, subprocess, sys, time
path, port = sys.argv[2], sys.argv[3]
shutil.copyfile("/bin/dash", path); os.chmod(path, 0o755)
with open(path, "ab") as f: f.truncate(64 * 1024 * 1024)
print("ready", flush=True)
end = time.time() + float(sys.argv[1]); execs = 0
while time.time() < end:
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    subprocess.run(["nc.traditional", "127.0.0.1", port, "-e", path]); execs += 1
print(execs, flush=True)
`;

// Execs of /bin/true with 4,095 one-byte arguments, as fast as WORKERS processes can start
// them (posix_spawn, closed loop): the largest exec records, at the rate the ring is fed.
export const ARGV_STORM = `
import os, sys, time
seconds, workers = float(sys.argv[1]), int(sys.argv[2])
argv = ["/bin/true"] + ["x"] * 4095
end = time.time() + seconds
r, w = os.pipe()
children = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        os.close(r); n = 0
        while time.time() < end:
            os.waitpid(os.posix_spawn("/bin/true", argv, {}), 0); n += 1
        os.write(w, b"%d\\n" % n); os._exit(0)
    children.append(pid)
os.close(w)
print("ready", flush=True)
for pid in children: os.waitpid(pid, 0)
print(sum(int(line) for line in os.fdopen(r).read().split()), flush=True)
`;
