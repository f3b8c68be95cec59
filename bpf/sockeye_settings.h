/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The defaults of every load-time setting, in one place: the BPF side's initial values and
 * ring sizes (the .bpf.c files) and the loader's LoadOptions (native/loader.h) both take them from
 * here, and the loader writes every `const volatile` of the object before load
 * (native/loader.cc write_settings; test/unit/sensor/kernel-settings.test.ts reads the object's
 * BTF for the list).
 */
#ifndef SOCKEYE_SETTINGS_H
#define SOCKEYE_SETTINGS_H

/* fds 0 to this are stdio for the connect and dup filters: the seed's 0, 1 and 2. */
#define SOCKEYE_DEFAULT_STDIO_FD_MAX 2

/*
 * Ring sizes, bytes, powers of two. libbpf maps a ring's data twice and the kernel maps every
 * page at once: a ring costs twice its size in RSS from the start.
 * Detections: the flood bench's detections stay 30/30 at 512 KiB.
 * Process records: 1 MiB keeps the exec + decoy flood bench at 30/30 with no exec, fork or
 * exit record lost (about 800 execs/s of 6 KiB argv); the reader is woken at a quarter full.
 * Relay records (outbound connects, 152 bytes): 128 KiB holds some 860 between two reads.
 */
#define SOCKEYE_DEFAULT_DETECTION_RING_BYTES (512u << 10)
#define SOCKEYE_DEFAULT_PROCESS_RING_BYTES (1u << 20)
#define SOCKEYE_DEFAULT_RELAY_RING_BYTES (128u << 10)

/* At most one reader wakeup per ring per CPU in this interval (ring.bpf.h submit_flags); the
 * reader polls a little longer than this after its last record (native/ring_reader.cc). */
#define SOCKEYE_DEFAULT_WAKEUP_INTERVAL_US 250

/* Context records (exec, fork, exit; outbound connects) wake the reader only once their ring
 * is this full, in eighths (ring.bpf.h context_submit_flags). */
#define SOCKEYE_CONTEXT_WAKEUP_EIGHTHS 2

/*
 * A detection ring fuller than this share (in eighths) admits only records whose (process, fd)
 * has not had one admitted in the last window: a process that floods matching dups cannot
 * fill the ring and push out another process's first detection. Three quarters, not half: the
 * reader may stall for a few ms on a busy host (a hypervisor's), and a steady stream of one
 * process's records must not be shed before the ring is really filling; the last quarter
 * (819 dup records at 512 KiB) still holds other processes' first records.
 */
#define SOCKEYE_DETECTION_PRESSURE_EIGHTHS 6
#define SOCKEYE_DETECTION_REPEAT_WINDOW_NS 1000000000ull

/*
 * Exec records with an inet socket on stdio are detections too, but large (up to 9 KB: 58 fill
 * a 512 KiB ring), and any local user can make them by the thousand. They may fill the
 * detection ring up to half (in eighths), so dup and connect records (176 and 256 bytes) keep
 * the other half whatever the flood; past a quarter, each uid gets one per repeat window, so
 * one user's flood leaves room for another's first record.
 */
#define SOCKEYE_DETECTION_LARGE_EIGHTHS 4

/*
 * Accept records (only while a rule reads accepted connections) share the process ring with
 * exec, fork and exit records, and any local user can accept loopback connections by the
 * thousand: they are admitted only while the ring is under this fill (in eighths), so an
 * accept flood leaves the other half to the process records detections are judged by.
 */
#define SOCKEYE_ACCEPT_PROCESS_EIGHTHS 4
#define SOCKEYE_DETECTION_SOURCE_EIGHTHS 2

#endif /* SOCKEYE_SETTINGS_H */
