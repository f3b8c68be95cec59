// Kernel side of the addon, free of Node-API: feature probe, load with candidate choice,
// attach, counters. sensor.cc wraps it for JavaScript.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernel_checks.h"
#include "sockeye_settings.h"

struct sockeye_bpf;
struct bpf_link;

namespace sockeye {

// An expected failure, with the stable code SensorError carries into JavaScript.
struct SensorFailure {
  std::string code;  // EPERM_BPF, NO_BTF, NO_TRACEFS, LOAD_FAILED, ATTACH_FAILED, ...
  int err;           // errno, 0 when none applies
  std::string message;
};

// Defaults from bpf/sockeye_settings.h, where each is explained.
struct LoadOptions {
  int stdio_fd_max = SOCKEYE_DEFAULT_STDIO_FD_MAX;
  bool connect_all_fds = false;
  // Records of accepted inet sockets (bpf/accept.bpf.h emit_accept): only while a rule reads them.
  bool accept_records = false;
  uint32_t detection_ring_bytes = SOCKEYE_DEFAULT_DETECTION_RING_BYTES;
  uint32_t process_ring_bytes = SOCKEYE_DEFAULT_PROCESS_RING_BYTES;
  uint32_t relay_ring_bytes = SOCKEYE_DEFAULT_RELAY_RING_BYTES;
  // 0 = libbpf's default of a wakeup whenever the reader is idle.
  uint32_t wakeup_interval_us = SOCKEYE_DEFAULT_WAKEUP_INTERVAL_US;
  // Names (comm) of the shells whose exec wakes the reader at once (bpf/process.bpf.c
  // relay_candidate); the TypeScript side passes its list (src/sensor/shells.ts).
  std::vector<std::string> wakeup_shells;
  // Also watch ia32 syscalls (32-bit binaries, int $0x80), which syscall tracepoints skip:
  // one more program on every syscall of the host (bpf/compat.bpf.c handle_compat_exit).
  bool compat_syscalls = false;
  // Candidate programs not to try, by the name reports give them (e.g. "lsm/socket_connect"),
  // where a capability has more than one: lets tests and users force a fallback.
  std::vector<std::string> skip_candidates;
  // Enforcement in the kernel (bpf/enforce.bpf.c, docs/enforcement.md): loaded only when set.
  // Interpreters by name (comm) and by executable identity (kernel dev_t, inode).
  bool enforce = false;
  std::vector<std::string> enforce_names;
  std::vector<std::pair<uint64_t, uint64_t>> enforce_exes;
  // Allowlisted executables, never stopped in the kernel (same identity).
  std::vector<std::pair<uint64_t, uint64_t>> enforce_allowed;
};

// One candidate program for one capability, and what became of it.
struct CandidateReport {
  std::string capability;  // connect, socket_dup, accept, process, relay, udp_send, compat, task_access
  std::string program;     // e.g. "lsm/socket_connect" (loader.cc, kCapabilities)
  bool live = false;
  std::string reason;      // why it was passed over; empty when live
};

// One attached program and what the attach check found: `problem` is empty while it is
// still attached.
struct AttachState {
  std::string program;  // the BPF program's name, e.g. "handle_exec"
  std::string problem;
};

enum class HelperSupport { yes, no, unknown };
const char* helper_support_name(HelperSupport v);

struct KernelFeatures {
  std::string kernel_release;
  bool btf = false;
  std::string lsm_list;      // /sys/kernel/security/lsm, "" if unreadable
  std::string lockdown;      // e.g. "integrity"
  std::string tracefs_path;  // where tp/ programs find their events
  // Where the cgroup v2 hierarchy's root is mounted (/proc/self/mountinfo), "" when it is not:
  // cgroup/ programs attach there (udp_send).
  std::string cgroup2_path;
  // Why cgroup2_path is empty although a cgroup2 mount exists (a cgroup namespace's root), or "".
  std::string cgroup2_problem;
  bool cap_bpf = false;
  bool cap_perfmon = false;
  bool cap_sys_admin = false;
  bool cap_net_admin = false;  // cgroup socket programs (udp_send) need it, or CAP_SYS_ADMIN
  std::vector<std::string> actions;  // what sockeye did to the system, e.g. mounts
  Ia32Syscalls ia32 = Ia32Syscalls::unknown;
  // BPF helpers the programs prefer, as libbpf_probe_bpf_helper finds them for tracepoint
  // programs: yes, no, or unknown (the probe itself failed, e.g. without privileges).
  HelperSupport current_task_btf = HelperSupport::unknown;  // bpf_get_current_task_btf, 5.11+
  HelperSupport task_pt_regs = HelperSupport::unknown;      // bpf_task_pt_regs, 5.15+
};

// The .rodata variables of the BPF object, from its BTF, and the ones the loader writes
// before every load: test/unit/sensor/kernel-settings.test.ts wants them equal.
struct SettingsCoverage {
  std::vector<std::string> rodata;
  std::vector<std::string> written;
};
SettingsCoverage settings_coverage();

// Mounts tracefs and securityfs where they are missing (this host boots without them) and
// reads what the kernel offers. Never throws: missing things are reported as such.
KernelFeatures probe_features(bool mount_missing);

class LoadedSensor {
 public:
  ~LoadedSensor();
  LoadedSensor(const LoadedSensor&) = delete;
  LoadedSensor& operator=(const LoadedSensor&) = delete;

  int detection_ring_fd() const;
  int process_ring_fd() const;
  int relay_ring_fd() const;
  uint32_t wakeup_interval_us() const { return wakeup_interval_us_; }
  // Per-hook {emitted, lost, errors}, summed over CPUs; index = enum sockeye_hook.
  std::vector<uint64_t> counters() const;
  // Records dropped per ring and reason, summed over CPUs; index = ring * SOCKEYE_DROP_REASON_COUNT + reason.
  std::vector<uint64_t> ring_drops() const;
  // What the enforcing programs did, summed over CPUs: exec denied, exec killed, dup killed,
  // signal failed (bpf/enforce.bpf.c enum enforce_action_slot); zeros when they are not loaded.
  std::vector<uint64_t> enforce_actions() const;
  const std::vector<CandidateReport>& report() const { return report_; }
  const KernelFeatures& features() const { return features_; }
  // Whether every program is still attached: per link, one BPF_OBJ_GET_INFO_BY_FD that must
  // still name the link and program attach made (a closed or replaced fd, a released link,
  // another program on it, all show). A few µs for all of them: cheap enough to run every second.
  std::vector<AttachState> check_attached() const;
  // Destroys the links: no program runs any more, the maps (rings, counters) stay readable.
  void detach_programs();
  // detach_programs(), then frees the programs and maps.
  void detach();

  // Throws SensorFailure.
  static std::unique_ptr<LoadedSensor> open(const LoadOptions& options);

 private:
  LoadedSensor() = default;
  sockeye_bpf* skel_ = nullptr;
  uint32_t wakeup_interval_us_ = 0;
  // What attach made, for check_attached: the link, its program's name, the ids it had.
  struct Attached {
    bpf_link* link;
    std::string program;
    uint32_t link_id = 0;
    uint32_t prog_id = 0;
  };
  std::vector<Attached> links_;
  std::vector<CandidateReport> report_;
  KernelFeatures features_;
};

}  // namespace sockeye
