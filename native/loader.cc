// Feature probe, candidate choice, load and attach.
//
// One table, kCapabilities, drives it: each capability with its candidate programs in order
// of preference and its policy (style.md: Falco's table of candidates; Tetragon's "it must
// load AND attach before we trust it"). The BPF object holds every candidate; before each load
// attempt the ones not chosen are switched off with bpf_program__set_autoload. A candidate
// that fails to load or attach is recorded with its reason and the next one is tried on a
// fresh object, so the sensor never fails whole because the best candidate is refused (this
// host refuses LSM and fentry: docs/design.md §1).
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <malloc.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "sockeye.skel.h"
#include "sockeye_events.h"

namespace sockeye {
namespace {

// What a candidate needs beyond loading and attaching, checked before it is tried.
enum class Need {
  kNothing,
  // bpf among the active LSMs. A kernel built with CONFIG_BPF_LSM but booted without bpf on its
  // LSM list loads and attaches an lsm/ program and never runs it: the capability would be
  // silently blind (seen in the VM tier with lsm= lacking bpf).
  kActiveBpfLsm,
  kIa32Syscalls,
  // cgroup/ socket programs: a cgroup v2 hierarchy mounted at its root (they attach to its
  // root cgroup), and CAP_NET_ADMIN or CAP_SYS_ADMIN, without which the kernel refuses to load
  // a socket program whatever CAP_BPF allows.
  kCgroupSockAddr,
};

// BPF helpers a candidate calls beyond those every supported kernel (5.8+) has.
enum class Helper { kCurrentTaskBtf, kTaskPtRegs };

struct Candidate {
  const char* program;  // what reports and LoadOptions::skip_candidates call it
  std::vector<const char*> bpf_programs;
  Need need = Need::kNothing;
  // Load-time settings that go with this candidate, applied when it is the one tried.
  void (*configure)(sockeye_bpf* skel) = nullptr;
  std::vector<Helper> helpers = {};
};

enum class Policy {
  kRequired,  // the sensor does not start without it
  kOptIn,     // loaded only when its option asks; then the sensor does not start without it
};

struct OptIn {
  bool LoadOptions::*option = nullptr;
  const char* name = nullptr;        // the option, as errors name it
  const char* off_reason = nullptr;  // the report's reason while it is off
  // Why this kernel gives the capability nothing to watch (then it stays off even when asked,
  // since it would cost for nothing), or nullptr.
  const char* (*not_needed)(const KernelFeatures&) = nullptr;
};

struct Capability {
  const char* name;
  Policy policy;
  // In order of preference: the first that loads and attaches serves the capability. Where
  // there is more than one, a refused candidate is passed over with its reason (and
  // skip_candidates applies); a capability's only candidate is refused with the sensor.
  std::vector<Candidate> candidates;
  OptIn opt_in = {};
};

#if defined(__x86_64__)
constexpr const char* kCompatOff =
    "off: ia32 syscalls (32-bit binaries, int $0x80) can put a socket on stdio unseen (dups; connects too where "
    "connect runs on its tracepoint); sensor.compat_syscalls = true watches them at one more program on every "
    "syscall";
#else
constexpr const char* kCompatOff =
    "off: 32-bit (compat) syscalls go unseen on this architecture; sockeye watches them on x86-64 only";
#endif

// Some kernel builds refuse ia32 syscalls at run time although built with them: no ia32
// syscall can put a socket on stdio there.
const char* compat_not_needed(const KernelFeatures& f) {
  return f.ia32 == Ia32Syscalls::refused
             ? "not needed: this kernel refuses ia32 syscalls (an int $0x80 from a test process died with SIGSEGV), "
               "so none can put a socket on stdio"
             : nullptr;
}

// The syscall tracepoints skip ia32 syscalls (LSM and fentry do not): with connect on its
// tracepoint, the ia32 program reports ia32 connects as well.
void ia32_connects_in_compat(sockeye_bpf* skel) { skel->rodata->compat_connect = 1; }

// task_access: how every program reaches the current task and the arguments of its syscall
// (bpf/common.bpf.h). Before 5.15 there is no bpf_task_pt_regs, so a syscall's arguments are
// gone at its exit tracepoint: enter programs stash them. Before 5.11 there is no
// bpf_get_current_task_btf either, so the current task is read field by field with
// bpf_probe_read_kernel. The helpers the BPF side does not call never reach the verifier.
constexpr const char* kStashPrograms[] = {"handle_connect_enter", "handle_dup_enter", "handle_dup2_enter",
                                          "handle_dup3_enter", "handle_fcntl_enter"};
// Nothing stashes: the map need not hold more than one entry.
void syscall_args_in_regs(sockeye_bpf* skel) { bpf_map__set_max_entries(skel->maps.stashed_syscalls, 1); }
void syscall_args_stashed(sockeye_bpf* skel) { skel->rodata->use_task_pt_regs = 0; }
void task_read_by_helper(sockeye_bpf* skel) {
  skel->rodata->use_task_pt_regs = 0;
  skel->rodata->use_current_task_btf = 0;
}

// Enforcement (bpf/enforce.bpf.c): the exec is denied by the BPF LSM where it is active, else
// killed at sched_process_exec; the dup that completes the shape inside an interpreter is
// killed at its syscall's exit in both.
constexpr const char* kEnforceOff =
    "off: [enforce] mode is not \"on\" (dry-run reports from userspace and loads nothing in the kernel)";

// Every capability, its candidates and its policy: a new capability is one row here (and its
// programs in bpf/).
const std::vector<Capability> kCapabilities = {
    {"connect",
     Policy::kRequired,
     {{"lsm/socket_connect", {"handle_connect_lsm"}, Need::kActiveBpfLsm},
      {"fentry/security_socket_connect", {"handle_connect_fentry"}},
      {"tp/syscalls/sys_exit_connect", {"handle_connect_exit"}, Need::kNothing, ia32_connects_in_compat}}},
    {"socket_dup",
     Policy::kRequired,
     {{"tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}",
       {"handle_dup_exit", "handle_dup2_exit", "handle_dup3_exit", "handle_fcntl_exit"}}}},
    {"accept", Policy::kRequired, {{"tp/syscalls/sys_exit_accept{,4}", {"handle_accept_exit", "handle_accept4_exit"}}}},
    {"task_access",
     Policy::kRequired,
     {{"bpf_get_current_task_btf + bpf_task_pt_regs",
       {},
       Need::kNothing,
       syscall_args_in_regs,
       {Helper::kCurrentTaskBtf, Helper::kTaskPtRegs}},
      {"bpf_get_current_task_btf + tp/syscalls/sys_enter_{connect,dup,dup2,dup3,fcntl}",
       {std::begin(kStashPrograms), std::end(kStashPrograms)},
       Need::kNothing,
       syscall_args_stashed,
       {Helper::kCurrentTaskBtf}},
      {"bpf_get_current_task + tp/syscalls/sys_enter_{connect,dup,dup2,dup3,fcntl}",
       {std::begin(kStashPrograms), std::end(kStashPrograms)},
       Need::kNothing,
       task_read_by_helper}}},
    {"process",
     Policy::kRequired,
     {{"tp_btf/sched_process_{exec,fork,exit}", {"handle_exec", "handle_fork", "handle_exit"}}}},
    // Outbound TCP connects on fds past stdio: who could be relaying a shell (bpf/relay.bpf.c).
    {"relay", Policy::kRequired, {{"tp/syscalls/sys_exit_connect (outbound)", {"handle_outbound_connect_exit"}}}},
    // UDP sockets that send without connecting (sendto with an address): the first send of
    // each is an outbound record like a connected one's (bpf/relay.bpf.c). cgroup programs
    // need no trampoline, so they load where LSM and fentry are refused; a host without a
    // cgroup v2 mount, or a kernel that refuses them, keeps the sensor up on the empty
    // candidate, and the report says why.
    {"udp_send",
     Policy::kRequired,
     {{"cgroup/sendmsg{4,6}", {"handle_sendmsg4", "handle_sendmsg6"}, Need::kCgroupSockAddr},
      {"none: UDP sockets that send without connecting go unseen (a relay over one is not reported)", {}}}},
    // uid/gid/session changes, Elastic's uid_change rules read them (bpf/process.bpf.c). A
    // kernel without these tracepoints loses only those documents: the empty candidate after
    // it keeps the sensor up and the report says why.
    {"cred_change",
     Policy::kRequired,
     {{"tp/syscalls/sys_{enter,exit}_set{,re,res}{u,g}id + sys_exit_setsid",
       {"handle_setuid_enter", "handle_setuid_exit", "handle_setreuid_enter", "handle_setreuid_exit",
        "handle_setresuid_enter", "handle_setresuid_exit", "handle_setgid_enter", "handle_setgid_exit",
        "handle_setregid_enter", "handle_setregid_exit", "handle_setresgid_enter", "handle_setresgid_exit",
        "handle_setsid_exit"}},
      {"none: uid, gid and session changes go unseen", {}}}},
    // Opt-in because it runs on every syscall of the host (bpf/compat.bpf.c).
    {"compat",
     Policy::kOptIn,
     {{"tp_btf/sys_exit (ia32 syscalls)", {"handle_compat_exit"}, Need::kIa32Syscalls}},
     {&LoadOptions::compat_syscalls, "compat_syscalls", kCompatOff, compat_not_needed}},
    {"enforce",
     Policy::kOptIn,
     {{"lsm/bprm_check_security + tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}",
       {"enforce_bprm_check", "enforce_dup_exit", "enforce_dup2_exit", "enforce_dup3_exit", "enforce_fcntl_exit"},
       Need::kActiveBpfLsm},
      {"tp_btf/sched_process_exec + tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}",
       {"enforce_exec", "enforce_dup_exit", "enforce_dup2_exit", "enforce_dup3_exit", "enforce_fcntl_exit"}}},
     {&LoadOptions::enforce, "enforce", kEnforceOff}},
};

// libbpf's log: kept per load attempt to explain a refusal, printed only when asked.
thread_local std::string* libbpf_log_capture = nullptr;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  static const bool debug = getenv("SOCKEYE_DEBUG_LIBBPF") != nullptr;
  if (level == LIBBPF_DEBUG && !debug) return 0;
  // Sized to the message: libbpf hands over a whole verifier log in one "%s", and the
  // refusal is at its end (a fixed 1 KiB buffer cut it off).
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string line(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), format, args);
  line.resize(static_cast<size_t>(n));
  if (libbpf_log_capture) libbpf_log_capture->append(line);
  if (debug) fputs(line.c_str(), stderr);
  return n;
}

struct LogCapture {
  std::string text;
  LogCapture() {
    libbpf_set_print(libbpf_print);
    libbpf_log_capture = &text;
  }
  ~LogCapture() { libbpf_log_capture = nullptr; }
  // The most telling line libbpf printed for a program, else "".
  std::string about(const char* bpf_program) const {
    std::istringstream lines(text);
    std::string line, best;
    const std::string tag = std::string("prog '") + bpf_program + "'";
    while (std::getline(lines, line)) {
      if (line.find(tag) == std::string::npos) continue;
      auto colon = line.find("': ");
      std::string said = colon == std::string::npos ? line : line.substr(colon + 3);
      // libbpf says the kernel's verdict first ("BPF program load failed: ..."), then echoes it.
      if (best.empty() || said.find("load failed") != std::string::npos) best = said;
      if (said.find("load failed") != std::string::npos) break;
    }
    return best;
  }
  // The same for the first of a candidate's programs that libbpf named.
  std::string about(const Candidate& c) const {
    for (const char* name : c.bpf_programs) {
      std::string said = about(name);
      if (!said.empty()) return said;
    }
    return "";
  }
};

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool exists(const char* path) { return access(path, F_OK) == 0; }

std::string errno_text(int err) { return std::string(strerror(err)) + " (errno " + std::to_string(err) + ")"; }

struct Refusal {
  std::string reason;  // empty: no refusal
  int err = 0;
};

// Every `const volatile` of the BPF object with the value it gets before each load; a chosen
// candidate's configure() then changes its own (task_access, compat_connect). One list, so
// settings_coverage() can hold it against the object's BTF.
#define SOCKEYE_RODATA_SETTINGS(X)                                              \
  X(stdio_fd_max, options.stdio_fd_max)                                         \
  X(connect_all_fds, options.connect_all_fds ? 1 : 0)                           \
  X(wakeup_interval_ns, uint64_t(options.wakeup_interval_us) * 1000)            \
  X(use_current_task_btf, 1)                                                    \
  X(use_task_pt_regs, 1)                                                        \
  X(detection_pressure_eighths, SOCKEYE_DETECTION_PRESSURE_EIGHTHS)             \
  X(detection_repeat_window_ns, SOCKEYE_DETECTION_REPEAT_WINDOW_NS)             \
  X(detection_large_eighths, SOCKEYE_DETECTION_LARGE_EIGHTHS)                   \
  X(detection_source_eighths, SOCKEYE_DETECTION_SOURCE_EIGHTHS)                 \
  X(compat_connect, 0)                                                          \
  X(process_wakeup_eighths, SOCKEYE_CONTEXT_WAKEUP_EIGHTHS)                     \
  X(accept_records, options.accept_records ? 1 : 0)                             \
  X(relay_wakeup_eighths, SOCKEYE_CONTEXT_WAKEUP_EIGHTHS)

void write_settings(sockeye_bpf* skel, const LoadOptions& options) {
#define SOCKEYE_WRITE(name, value) skel->rodata->name = value;
  SOCKEYE_RODATA_SETTINGS(SOCKEYE_WRITE)
#undef SOCKEYE_WRITE
}

// Ring sizes; false when the kernel's rules for them (a power of two, at least a page) are not met.
bool size_rings(sockeye_bpf* skel, const LoadOptions& options) {
  return bpf_map__set_max_entries(skel->maps.detection_events, options.detection_ring_bytes) == 0 &&
         bpf_map__set_max_entries(skel->maps.process_events, options.process_ring_bytes) == 0 &&
         bpf_map__set_max_entries(skel->maps.relay_events, options.relay_ring_bytes) == 0;
}

// Fills wakeup_shells (a comm is at most 15 bytes and NUL-padded: the key the BPF side builds),
// then freezes it: nothing changes the list while the programs run.
Refusal fill_wakeup_shells(sockeye_bpf* skel, const LoadOptions& options) {
  int fd = bpf_map__fd(skel->maps.wakeup_shells);
  const uint8_t yes = 1;
  for (const std::string& name : options.wakeup_shells) {
    char key[SOCKEYE_COMM_LEN] = {};
    memcpy(key, name.data(), std::min(name.size(), sizeof(key) - 1));
    if (bpf_map_update_elem(fd, key, &yes, BPF_ANY) != 0)
      return {"could not fill wakeup_shells: " + errno_text(errno), errno};
  }
  if (bpf_map_freeze(fd) != 0) return {"could not freeze wakeup_shells: " + errno_text(errno), errno};
  return {};
}

// Fills the enforcing programs' interpreter maps, then freezes them; before attach, so no
// program runs on an empty list. Does nothing when enforcement is off.
Refusal fill_enforce_maps(sockeye_bpf* skel, const LoadOptions& options) {
  if (!options.enforce) return {};
  int names = bpf_map__fd(skel->maps.enforce_names);
  int exes = bpf_map__fd(skel->maps.enforce_exes);
  const uint8_t yes = 1;
  for (const std::string& name : options.enforce_names) {
    char key[SOCKEYE_COMM_LEN] = {};
    memcpy(key, name.data(), std::min(name.size(), sizeof(key) - 1));
    if (bpf_map_update_elem(names, key, &yes, BPF_ANY) != 0)
      return {"could not fill enforce_names: " + errno_text(errno), errno};
  }
  for (const auto& exe : options.enforce_exes) {
    uint64_t key[2] = {exe.first, exe.second};
    if (bpf_map_update_elem(exes, key, &yes, BPF_ANY) != 0)
      return {"could not fill enforce_exes: " + errno_text(errno), errno};
  }
  int allowed = bpf_map__fd(skel->maps.enforce_allowed);
  for (const auto& exe : options.enforce_allowed) {
    uint64_t key[2] = {exe.first, exe.second};
    if (bpf_map_update_elem(allowed, key, &yes, BPF_ANY) != 0)
      return {"could not fill enforce_allowed: " + errno_text(errno), errno};
  }
  if (bpf_map_freeze(names) != 0 || bpf_map_freeze(exes) != 0 || bpf_map_freeze(allowed) != 0)
    return {"could not freeze the enforce maps: " + errno_text(errno), errno};
  return {};
}

void mount_if_missing(const char* marker, const char* target, const char* fstype, KernelFeatures& f) {
  if (exists(marker)) return;
  if (mount(fstype, target, fstype, 0, nullptr) == 0) {
    f.actions.push_back(std::string("mounted ") + fstype + " at " + target);
  } else {
    f.actions.push_back(std::string("could not mount ") + fstype + " at " + target + ": " + errno_text(errno));
  }
}

// Whether `name` is one of the comma-separated entries of /sys/kernel/security/lsm.
bool lsm_listed(const std::string& list, const std::string& name) {
  std::istringstream entries(list);
  std::string entry;
  while (std::getline(entries, entry, ','))
    if (entry == name) return true;
  return false;
}

bool skipped(const LoadOptions& o, const Candidate& c) {
  for (const auto& s : o.skip_candidates)
    if (s == c.program) return true;
  return false;
}

// Why the kernel does not give `c` a helper it calls, or "".
std::string missing_helper(const Candidate& c, const KernelFeatures& f) {
  for (Helper h : c.helpers) {
    bool btf = h == Helper::kCurrentTaskBtf;
    HelperSupport s = btf ? f.current_task_btf : f.task_pt_regs;
    const char* name = btf ? "bpf_get_current_task_btf (5.11+)" : "bpf_task_pt_regs (5.15+)";
    // A helper that could not be probed is not relied on: the last candidate needs none.
    if (s == HelperSupport::no) return std::string("this kernel has no ") + name;
    if (s == HelperSupport::unknown) return std::string("could not probe for ") + name;
  }
  return "";
}

// Why `need` is not met on this kernel, or "" when it is.
std::string unmet(Need need, const KernelFeatures& f) {
  switch (need) {
    case Need::kNothing:
      return "";
    case Need::kActiveBpfLsm:
      // An unreadable list tells nothing: then trying is all there is.
      if (f.lsm_list.empty() || lsm_listed(f.lsm_list, "bpf")) return "";
      return "bpf is not an active LSM (" + f.lsm_list + "): boot with lsm=" + f.lsm_list + ",bpf to use it";
    case Need::kIa32Syscalls:
#if defined(__x86_64__)
      return "";
#else
      return "only x86-64 has ia32 syscalls";
#endif
    case Need::kCgroupSockAddr:
      if (f.cgroup2_path.empty() && !f.cgroup2_problem.empty()) return f.cgroup2_problem;
      if (f.cgroup2_path.empty())
        return "no cgroup v2 hierarchy is mounted at its root (/proc/self/mountinfo lists no cgroup2 mount of /): "
               "mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) to see unconnected UDP sends";
      if (!f.cap_net_admin && !f.cap_sys_admin)
        return "missing CAP_NET_ADMIN (or CAP_SYS_ADMIN): the kernel loads cgroup socket programs only with it; "
               "grant it (systemd AmbientCapabilities) to see unconnected UDP sends";
      return "";
  }
  return "";
}

// One attempt: a fresh object with only the chosen candidate of each capability.
struct Attempt {
  sockeye_bpf* skel = nullptr;
  std::vector<bpf_link*> links;
  std::vector<const char*> link_programs;  // the program of each link
  ~Attempt() { release(); }
  void release() {
    for (auto* l : links) bpf_link__destroy(l);
    links.clear();
    link_programs.clear();
    if (skel) sockeye_bpf__destroy(skel);
    skel = nullptr;
  }
};

bpf_program* program(sockeye_bpf* skel, const char* name) {
  return bpf_object__find_program_by_name(skel->obj, name);
}


// Attaches every program of `c`; links made so far stay in `a` either way. cgroup programs
// have no automatic attach point: they go on the root of the cgroup v2 hierarchy, as a BPF
// link (BPF_LINK_CREATE), which the kernel runs alongside any other program there
// (BPF_F_ALLOW_MULTI semantics: nobody else's program is replaced or blocked) and detaches when
// its fd closes, so a sensor that dies leaves nothing attached.
Refusal attach_all(Attempt& a, const Candidate& c, const KernelFeatures& f) {
  for (const char* name : c.bpf_programs) {
    bpf_program* prog = program(a.skel, name);
    bpf_link* link = nullptr;
    if (bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK_ADDR) {
      int cg = open(f.cgroup2_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (cg < 0) {
        int err = errno;
        return {std::string("could not open the cgroup v2 root ") + f.cgroup2_path + ": " + errno_text(err), err};
      }
      link = bpf_program__attach_cgroup(prog, cg);
      int err = errno;
      close(cg);  // the link holds the cgroup
      errno = err;
    } else {
      link = bpf_program__attach(prog);
    }
    if (!link) {
      int err = errno;
      return {std::string("attach of ") + name + " failed: " + errno_text(err), err};
    }
    a.links.push_back(link);
    a.link_programs.push_back(name);
  }
  return {};
}

// Which candidate each capability is on (indices follow kCapabilities), and the candidates
// passed over on the way with their reasons.
class Choice {
 public:
  Choice(const LoadOptions& options, const KernelFeatures& features)
      : options_(options), features_(features), at_(kCapabilities.size(), 0), passed_(kCapabilities.size()) {
    for (size_t i = 0; i < kCapabilities.size(); i++)
      if (active(i)) settle(i);
  }

  bool active(size_t i) const {
    const Capability& cap = kCapabilities[i];
    return cap.policy == Policy::kRequired || (options_.*cap.opt_in.option && not_needed(cap) == nullptr);
  }
  static bool has_alternatives(size_t i) { return kCapabilities[i].candidates.size() > 1; }
  const Candidate& chosen(size_t i) const { return kCapabilities[i].candidates[at_[i]]; }

  // Passes over the chosen candidate of capability i; throws when it has no other.
  void pass_over(size_t i, const std::string& reason) {
    passed_[i].push_back({kCapabilities[i].name, chosen(i).program, false, reason});
    at_[i]++;
    settle(i);
  }

  // Per capability the candidates passed over, then the live one (or, off, why); last, the
  // candidates after a live one, never tried.
  std::vector<CandidateReport> report() const {
    std::vector<CandidateReport> out;
    for (size_t i = 0; i < kCapabilities.size(); i++) {
      const Capability& cap = kCapabilities[i];
      out.insert(out.end(), passed_[i].begin(), passed_[i].end());
      if (active(i)) {
        out.push_back({cap.name, chosen(i).program, true, ""});
      } else {
        for (const Candidate& c : cap.candidates) out.push_back({cap.name, c.program, false, off_reason(cap)});
      }
    }
    for (size_t i = 0; i < kCapabilities.size(); i++) {
      if (!active(i)) continue;
      const auto& candidates = kCapabilities[i].candidates;
      for (size_t k = at_[i] + 1; k < candidates.size(); k++)
        out.push_back({kCapabilities[i].name, candidates[k].program, false, "not needed: a preferred candidate is live"});
    }
    return out;
  }

 private:
  const char* not_needed(const Capability& cap) const {
    return cap.opt_in.not_needed != nullptr ? cap.opt_in.not_needed(features_) : nullptr;
  }
  // Why an opt-in capability is off: not needed on this kernel, else not asked for.
  const char* off_reason(const Capability& cap) const {
    const char* why = not_needed(cap);
    return why != nullptr ? why : cap.opt_in.off_reason;
  }

  // Moves capability i to its first candidate from at_[i] on that is neither skipped nor
  // lacking what it needs.
  void settle(size_t i) {
    const Capability& cap = kCapabilities[i];
    for (; at_[i] < cap.candidates.size(); at_[i]++) {
      const Candidate& c = cap.candidates[at_[i]];
      std::string why = has_alternatives(i) && skipped(options_, c) ? "skipped by option" : unmet(c.need, features_);
      if (why.empty()) why = missing_helper(c, features_);
      if (why.empty()) return;
      passed_[i].push_back({cap.name, c.program, false, why});
    }
    std::string reasons, code = cap.name;
    for (const auto& r : passed_[i]) reasons += (reasons.empty() ? "" : "; ") + r.program + ": " + r.reason;
    for (char& ch : code) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    throw SensorFailure{"NO_" + code + "_HOOK", 0,
                        std::string("no ") + cap.name + " hook could be loaded and attached (" + reasons + ")"};
  }

  const LoadOptions& options_;
  const KernelFeatures& features_;
  std::vector<size_t> at_;
  std::vector<std::vector<CandidateReport>> passed_;
};

// A mountinfo field with its octal escapes (\040 for a space, ...) undone.
std::string unescape_mount_field(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Where the cgroup v2 hierarchy's root is mounted, from /proc/self/mountinfo: a cgroup2 mount
// whose root (field 4) is "/", the whole hierarchy as this process's cgroup namespace sees it.
// Hosts differ: /sys/fs/cgroup (unified), /sys/fs/cgroup/unified (hybrid, this machine kind),
// or none (v1 only).
std::string find_cgroup2_root(std::string& partial) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    // id parent dev root mountpoint options [optional...] - fstype source superoptions
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || dash + 1 == f.end()) continue;
    if (*(dash + 1) != "cgroup2") continue;
    if (f[3] == "/") return unescape_mount_field(f[4]);
    // A part of the hierarchy (a container's cgroup, or "/.." from inside a cgroup namespace).
    if (partial.empty())
      partial = "the only cgroup v2 mount (" + unescape_mount_field(f[4]) + ") shows part of the hierarchy (" + unescape_mount_field(f[3]) +
                "), not its root: attached there, the programs would see only that part's sends; run in the host's cgroup "
                "namespace with the host's cgroup v2 mount";
  }
  return "";
}

HelperSupport probe_helper(enum bpf_func_id id) {
  // A tracepoint program: every program that calls these helpers is one, or a tracing one,
  // which gets the same helpers.
  int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, id, nullptr);
  return r > 0 ? HelperSupport::yes : r == 0 ? HelperSupport::no : HelperSupport::unknown;
}

}  // namespace

const char* helper_support_name(HelperSupport v) {
  switch (v) {
    case HelperSupport::yes:
      return "yes";
    case HelperSupport::no:
      return "no";
    case HelperSupport::unknown:
      return "unknown";
  }
  return "unknown";
}

KernelFeatures probe_features(bool mount_missing) {
  KernelFeatures f;
  utsname u{};
  if (uname(&u) == 0) f.kernel_release = u.release;
  f.btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;

  if (mount_missing) {
    // tp/ programs attach through tracefs event ids; libbpf looks in both places.
    if (!exists("/sys/kernel/tracing/events") && !exists("/sys/kernel/debug/tracing/events"))
      mount_if_missing("/sys/kernel/tracing/events", "/sys/kernel/tracing", "tracefs", f);
    mount_if_missing("/sys/kernel/security/lsm", "/sys/kernel/security", "securityfs", f);
  }
  if (exists("/sys/kernel/debug/tracing/events"))
    f.tracefs_path = "/sys/kernel/debug/tracing";
  else if (exists("/sys/kernel/tracing/events"))
    f.tracefs_path = "/sys/kernel/tracing";
  f.lsm_list = read_first_line("/sys/kernel/security/lsm");
  f.lockdown = read_first_line("/sys/kernel/security/lockdown");
  f.cgroup2_path = find_cgroup2_root(f.cgroup2_problem);
  // In a cgroup namespace of its own (a container without the host's), the root this process
  // sees is its namespace's: programs attached there would see only the container's sends, a
  // blindness nobody would notice. With the host's pid namespace, pid 1's cgroup then reads
  // as a path above that root ("/.."). (Without it, pid 1 is the container's own: not told.)
  if (!f.cgroup2_path.empty()) {
    std::ifstream init_cgroup("/proc/1/cgroup");
    std::string entry;
    while (std::getline(init_cgroup, entry))
      if (entry.rfind("0::/..", 0) == 0) {
        f.cgroup2_problem = "the cgroup v2 root this process sees is its cgroup namespace's, not the host's (pid 1's cgroup "
                            "is outside it): attached there, the programs would see only this container's sends; run with "
                            "the host's cgroup namespace";
        f.cgroup2_path.clear();
      }
  }

  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
    f.cap_sys_admin = caps & (1ull << 21);
    f.cap_net_admin = caps & (1ull << 12);
    f.cap_perfmon = caps & (1ull << 38);
    f.cap_bpf = caps & (1ull << 39);
  }
  f.ia32 = probe_ia32_syscalls();
  f.current_task_btf = probe_helper(BPF_FUNC_get_current_task_btf);
  f.task_pt_regs = probe_helper(BPF_FUNC_task_pt_regs);
  return f;
}

std::unique_ptr<LoadedSensor> LoadedSensor::open(const LoadOptions& options) {
  SignalsBlocked quiet_load;
  std::unique_ptr<LoadedSensor> sensor(new LoadedSensor());
  sensor->features_ = probe_features(true);
  const KernelFeatures& f = sensor->features_;

  if (!f.cap_sys_admin && !(f.cap_bpf && f.cap_perfmon)) {
    std::string missing = !f.cap_bpf && !f.cap_perfmon ? "CAP_BPF and CAP_PERFMON"
                          : !f.cap_bpf                  ? "CAP_BPF"
                                                        : "CAP_PERFMON";
    throw SensorFailure{"EPERM_BPF", EPERM,
                        "missing " + missing +
                            " (or CAP_SYS_ADMIN) to load eBPF programs: run sockeye as root, or grant "
                            "them (systemd AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN)"};
  }
  if (!f.btf)
    throw SensorFailure{"NO_BTF", ENOENT,
                        "this kernel has no BTF at /sys/kernel/btf/vmlinux: sockeye's CO-RE programs need a "
                        "kernel built with CONFIG_DEBUG_INFO_BTF=y"};
  for (const Capability& cap : kCapabilities) {
    if (cap.policy != Policy::kOptIn || !(options.*cap.opt_in.option)) continue;
    // Refused only when no candidate can serve it (enforce falls back from the LSM).
    std::string why;
    for (const Candidate& c : cap.candidates) {
      why = unmet(c.need, f);
      if (why.empty()) break;
    }
    if (!why.empty()) throw SensorFailure{"BAD_OPTION", EINVAL, std::string(cap.opt_in.name) + ": " + why + "; turn it off here"};
  }
  if (f.tracefs_path.empty())
    throw SensorFailure{"NO_TRACEFS", ENOENT,
                        "tracefs is not mounted and could not be mounted: mount it with "
                        "'mount -t tracefs nodev /sys/kernel/tracing' and start again"};

  Choice choice(options, f);
  for (;;) {
    LogCapture log;
    Attempt a;
    a.skel = sockeye_bpf__open();
    if (!a.skel) throw SensorFailure{"OPEN_FAILED", errno, "could not open the embedded BPF object: " + errno_text(errno)};
    // Only the chosen candidates' programs load (two candidates may share one: switched
    // off as the other's, then on again as the chosen one's).
    for (size_t i = 0; i < kCapabilities.size(); i++)
      for (const Candidate& c : kCapabilities[i].candidates)
        for (const char* name : c.bpf_programs) bpf_program__set_autoload(program(a.skel, name), false);
    for (size_t i = 0; i < kCapabilities.size(); i++)
      if (choice.active(i))
        for (const char* name : choice.chosen(i).bpf_programs) bpf_program__set_autoload(program(a.skel, name), true);
    write_settings(a.skel, options);
    for (size_t i = 0; i < kCapabilities.size(); i++)
      if (choice.active(i) && choice.chosen(i).configure) choice.chosen(i).configure(a.skel);
    if (!size_rings(a.skel, options))
      throw SensorFailure{"BAD_OPTION", EINVAL, "ring buffer sizes must be powers of two of at least a page"};

    bool retry = false;
    int err = sockeye_bpf__load(a.skel);
    if (err) {
      // libbpf names the program the kernel refused. A candidate with alternatives is passed
      // over, an opt-in one fails naming its option; any other refusal no candidate can help.
      for (size_t i = 0; i < kCapabilities.size() && !retry; i++) {
        if (!choice.active(i)) continue;
        const Capability& cap = kCapabilities[i];
        std::string detail = log.about(choice.chosen(i));
        if (detail.empty()) continue;
        if (Choice::has_alternatives(i)) {
          choice.pass_over(i, "load failed: " + detail);
          retry = true;
        } else if (cap.policy == Policy::kOptIn) {
          throw SensorFailure{"LOAD_FAILED", -err,
                              std::string(cap.opt_in.name) + ": the kernel refused " + choice.chosen(i).program + ": " +
                                  detail + " (turn " + cap.opt_in.name + " off)"};
        }
      }
      if (retry) continue;
      throw SensorFailure{"LOAD_FAILED", -err,
                          "the kernel refused sockeye's BPF programs: " + errno_text(-err) +
                              " (run with SOCKEYE_DEBUG_LIBBPF=1 for the verifier log)"};
    }
    Refusal unfilled_enforce = fill_enforce_maps(a.skel, options);
    if (!unfilled_enforce.reason.empty()) throw SensorFailure{"LOAD_FAILED", unfilled_enforce.err, unfilled_enforce.reason};
    for (size_t i = 0; i < kCapabilities.size() && !retry; i++) {
      if (!choice.active(i)) continue;
      const Capability& cap = kCapabilities[i];
      Refusal refused = attach_all(a, choice.chosen(i), f);
      if (refused.reason.empty()) continue;
      if (Choice::has_alternatives(i)) {
        choice.pass_over(i, refused.reason);
        retry = true;
      } else if (cap.policy == Policy::kOptIn) {
        throw SensorFailure{"ATTACH_FAILED", refused.err,
                            std::string(cap.opt_in.name) + ": " + refused.reason + " (turn " + cap.opt_in.name + " off)"};
      } else {
        throw SensorFailure{"ATTACH_FAILED", refused.err, std::string(cap.name) + ": " + refused.reason};
      }
    }
    if (retry) continue;
    Refusal unfilled = fill_wakeup_shells(a.skel, options);
    if (!unfilled.reason.empty()) throw SensorFailure{"LOAD_FAILED", unfilled.err, unfilled.reason};

    sensor->report_ = choice.report();
    sensor->skel_ = a.skel;
    sensor->wakeup_interval_us_ = options.wakeup_interval_us;
    for (size_t i = 0; i < a.links.size(); i++) {
      bpf_link_info info{};
      uint32_t len = sizeof(info);
      LoadedSensor::Attached attached{a.links[i], a.link_programs[i]};
      if (bpf_link_get_info_by_fd(bpf_link__fd(a.links[i]), &info, &len) == 0) {
        attached.link_id = info.id;
        attached.prog_id = info.prog_id;
      }
      sensor->links_.push_back(attached);
    }
    a.links.clear();
    a.skel = nullptr;
    // Loading parsed the kernel's BTF (several MB) and freed it; glibc keeps freed heap
    // mapped. Handing it back cut the idle daemon's RSS by 11 MB (bench/README.md).
    malloc_trim(0);
    return sensor;
  }
}

SettingsCoverage settings_coverage() {
  SettingsCoverage out;
#define SOCKEYE_NAME(name, value) out.written.push_back(#name);
  SOCKEYE_RODATA_SETTINGS(SOCKEYE_NAME)
#undef SOCKEYE_NAME
  sockeye_bpf* skel = sockeye_bpf__open();
  if (!skel) return out;
  const btf* types = bpf_object__btf(skel->obj);
  int id = types ? btf__find_by_name_kind(types, ".rodata", BTF_KIND_DATASEC) : -1;
  if (id > 0) {
    const btf_type* section = btf__type_by_id(types, id);
    const btf_var_secinfo* vars = btf_var_secinfos(section);
    for (int i = 0; i < btf_vlen(section); i++)
      out.rodata.push_back(btf__name_by_offset(types, btf__type_by_id(types, vars[i].type)->name_off));
  }
  sockeye_bpf__destroy(skel);
  return out;
}

LoadedSensor::~LoadedSensor() { detach(); }

void LoadedSensor::detach_programs() {
  for (auto& l : links_) bpf_link__destroy(l.link);
  links_.clear();
}

void LoadedSensor::detach() {
  detach_programs();
  if (skel_) sockeye_bpf__destroy(skel_);
  skel_ = nullptr;
}

std::vector<AttachState> LoadedSensor::check_attached() const {
  std::vector<AttachState> out;
  for (const Attached& l : links_) {
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    std::string problem;
    int fd = bpf_link__fd(l.link);
    if (l.link_id == 0) {
      // Before 5.15 libbpf attaches tp/ programs by perf event ioctl: no BPF link to ask, only
      // whether its perf event fd is still open.
      if (fcntl(fd, F_GETFD) == -1) problem = "its perf event fd is closed (" + errno_text(errno) + ")";
    } else if (bpf_link_get_info_by_fd(fd, &info, &len) != 0)
      problem = "its link is gone (" + errno_text(errno) + ")";
    else if (info.id != l.link_id)
      problem = "its link's fd now holds link " + std::to_string(info.id) + ", not " + std::to_string(l.link_id);
    else if (info.prog_id != l.prog_id)
      problem = "its link now runs program " + std::to_string(info.prog_id) + ", not " + std::to_string(l.prog_id);
    out.push_back({l.program, problem});
  }
  return out;
}

int LoadedSensor::detection_ring_fd() const { return skel_ ? bpf_map__fd(skel_->maps.detection_events) : -1; }
int LoadedSensor::process_ring_fd() const { return skel_ ? bpf_map__fd(skel_->maps.process_events) : -1; }
int LoadedSensor::relay_ring_fd() const { return skel_ ? bpf_map__fd(skel_->maps.relay_events) : -1; }

std::vector<uint64_t> LoadedSensor::counters() const {
  std::vector<uint64_t> out(SOCKEYE_HOOK_COUNT * 3, 0);
  if (!skel_) return out;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return out;
  std::vector<hook_counter> per_cpu(cpus);
  int fd = bpf_map__fd(skel_->maps.hook_counters);
  for (uint32_t hook = 0; hook < SOCKEYE_HOOK_COUNT; hook++) {
    if (bpf_map_lookup_elem(fd, &hook, per_cpu.data()) != 0) continue;
    for (const auto& c : per_cpu) {
      out[hook * 3] += c.emitted;
      out[hook * 3 + 1] += c.lost;
      out[hook * 3 + 2] += c.errors;
    }
  }
  return out;
}

std::vector<uint64_t> LoadedSensor::ring_drops() const {
  constexpr uint32_t slots = SOCKEYE_RING_COUNT * SOCKEYE_DROP_REASON_COUNT;
  std::vector<uint64_t> out(slots, 0);
  if (!skel_) return out;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return out;
  std::vector<uint64_t> per_cpu(cpus);
  int fd = bpf_map__fd(skel_->maps.ring_drops);
  for (uint32_t slot = 0; slot < slots; slot++) {
    if (bpf_map_lookup_elem(fd, &slot, per_cpu.data()) != 0) continue;
    for (uint64_t n : per_cpu) out[slot] += n;
  }
  return out;
}

std::vector<uint64_t> LoadedSensor::enforce_actions() const {
  constexpr uint32_t slots = 4;  // bpf/enforce.bpf.c ENFORCE_SLOTS
  std::vector<uint64_t> out(slots, 0);
  if (!skel_) return out;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return out;
  std::vector<uint64_t> per_cpu(cpus);
  int fd = bpf_map__fd(skel_->maps.enforce_actions);
  for (uint32_t slot = 0; slot < slots; slot++) {
    if (bpf_map_lookup_elem(fd, &slot, per_cpu.data()) != 0) continue;
    for (uint64_t n : per_cpu) out[slot] += n;
  }
  return out;
}

}  // namespace sockeye
