// Feature probe, candidate choice, load and attach.
//
// Each capability has an ordered list of candidate programs (style.md: Falco's table of
// candidates; Tetragon's "it must load AND attach before we trust it"). The BPF object holds
// every candidate; before each load attempt the ones not chosen are switched off with
// bpf_program__set_autoload. A candidate that fails to load or attach is recorded with its
// reason and the next one is tried on a fresh object, so the sensor never fails whole
// because the best candidate is refused (this host refuses LSM and fentry: design.md §1).
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
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

struct Candidate {
  const char* capability;
  const char* program;  // what reports and --skip options call it
  std::vector<const char*> bpf_programs;
};

// Order is preference: the first that loads and attaches serves the capability.
const std::vector<Candidate>& connect_candidates() {
  static const std::vector<Candidate> list = {
      {"connect", "lsm/socket_connect", {"handle_connect_lsm"}},
      {"connect", "fentry/security_socket_connect", {"handle_connect_fentry"}},
      {"connect", "tp/syscalls/sys_exit_connect", {"handle_connect_exit"}},
  };
  return list;
}

// Capabilities with one candidate: without them there is no sensor.
const std::vector<Candidate>& required_programs() {
  static const std::vector<Candidate> list = {
      {"socket_dup", "tp/syscalls/sys_exit_{dup,dup2,dup3,fcntl}",
       {"handle_dup_exit", "handle_dup2_exit", "handle_dup3_exit", "handle_fcntl_exit"}},
      {"accept", "tp/syscalls/sys_exit_accept{,4}", {"handle_accept_exit", "handle_accept4_exit"}},
      {"process", "tp_btf/sched_process_{exec,fork,exit}", {"handle_exec", "handle_fork", "handle_exit"}},
  };
  return list;
}

// Optional: ia32 syscalls, only when LoadOptions::compat_syscalls asks (it costs every syscall).
const Candidate& compat_program() {
  static const Candidate c{"compat", "tp_btf/sys_exit (ia32 syscalls)", {"handle_compat_exit"}};
  return c;
}
#if defined(__x86_64__)
constexpr const char* kCompatOff =
    "off: ia32 syscalls (32-bit binaries, int $0x80) can put a socket on stdio unseen (dups; connects too where "
    "connect runs on its tracepoint); sensor.compat_syscalls = true watches them at one more program on every "
    "syscall";
#else
constexpr const char* kCompatOff =
    "off: 32-bit (compat) syscalls go unseen on this architecture; sockeye watches them on x86-64 only";
#endif
constexpr const char* kCompatRefused =
    "not needed: this kernel refuses ia32 syscalls (an int $0x80 from a test process died with SIGSEGV), so none "
    "can put a socket on stdio";

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
};

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool exists(const char* path) { return access(path, F_OK) == 0; }

std::string errno_text(int err) { return std::string(strerror(err)) + " (errno " + std::to_string(err) + ")"; }

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

// One attempt: a fresh object with only `chosen` among the connect candidates.
struct Attempt {
  sockeye_bpf* skel = nullptr;
  std::vector<bpf_link*> links;
  ~Attempt() { release(); }
  void release() {
    for (auto* l : links) bpf_link__destroy(l);
    links.clear();
    if (skel) sockeye_bpf__destroy(skel);
    skel = nullptr;
  }
};

bpf_program* program(sockeye_bpf* skel, const char* name) {
  return bpf_object__find_program_by_name(skel->obj, name);
}

// Attaches every program of `c`; on failure returns the reason, links made so far stay in a.
std::string attach_all(Attempt& a, const Candidate& c) {
  for (const char* name : c.bpf_programs) {
    bpf_link* link = bpf_program__attach(program(a.skel, name));
    if (!link) return std::string("attach of ") + name + " failed: " + errno_text(errno);
    a.links.push_back(link);
  }
  return "";
}

}  // namespace

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

  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
    f.cap_sys_admin = caps & (1ull << 21);
    f.cap_perfmon = caps & (1ull << 38);
    f.cap_bpf = caps & (1ull << 39);
  }
  f.ia32 = probe_ia32_syscalls();
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
#if !defined(__x86_64__)
  if (options.compat_syscalls)
    throw SensorFailure{"BAD_OPTION", EINVAL, "compat_syscalls: only x86-64 has ia32 syscalls; turn it off here"};
#endif
  if (f.tracefs_path.empty())
    throw SensorFailure{"NO_TRACEFS", ENOENT,
                        "tracefs is not mounted and could not be mounted: mount it with "
                        "'mount -t tracefs nodev /sys/kernel/tracing' and start again"};
  // On a kernel that refuses ia32 syscalls there is nothing for the compat program to see,
  // and it would cost every syscall of the host.
  const bool compat_refused = f.ia32 == Ia32Syscalls::refused;
  const bool load_compat = options.compat_syscalls && !compat_refused;

  for (const Candidate& chosen : connect_candidates()) {
    CandidateReport rep{chosen.capability, chosen.program, false, ""};
    if (skipped(options, chosen)) {
      rep.reason = "skipped by option";
      sensor->report_.push_back(rep);
      continue;
    }
    // A kernel built with CONFIG_BPF_LSM but booted without bpf on its LSM list loads and
    // attaches an lsm/ program, and never runs it: connect would be silently blind (seen in
    // the VM tier with lsm= lacking bpf). Pass it over when the list says so; when the list
    // cannot be read, trying is all there is.
    if (std::strncmp(chosen.program, "lsm/", 4) == 0 && !f.lsm_list.empty() && !lsm_listed(f.lsm_list, "bpf")) {
      rep.reason = "bpf is not an active LSM (" + f.lsm_list + "): boot with lsm=" + f.lsm_list + ",bpf to use it";
      sensor->report_.push_back(rep);
      continue;
    }
    LogCapture log;
    Attempt a;
    a.skel = sockeye_bpf__open();
    if (!a.skel) throw SensorFailure{"OPEN_FAILED", errno, "could not open the embedded BPF object: " + errno_text(errno)};
    for (const Candidate& other : connect_candidates())
      if (&other != &chosen)
        for (const char* name : other.bpf_programs) bpf_program__set_autoload(program(a.skel, name), false);
    a.skel->rodata->stdio_fd_max = options.stdio_fd_max;
    a.skel->rodata->connect_all_fds = options.connect_all_fds ? 1 : 0;
    // The ia32 program reports connects only where connect itself runs on a syscall tracepoint.
    a.skel->rodata->compat_connect = std::strncmp(chosen.program, "tp/", 3) == 0 ? 1 : 0;
    if (!load_compat)
      for (const char* name : compat_program().bpf_programs) bpf_program__set_autoload(program(a.skel, name), false);
    a.skel->rodata->wakeup_interval_ns = uint64_t(options.wakeup_interval_us) * 1000;
    int err = bpf_map__set_max_entries(a.skel->maps.detection_events, options.detection_ring_bytes);
    if (!err) err = bpf_map__set_max_entries(a.skel->maps.process_events, options.process_ring_bytes);
    if (err) throw SensorFailure{"BAD_OPTION", -err, "ring buffer sizes must be powers of two of at least a page"};

    err = sockeye_bpf__load(a.skel);
    if (err) {
      std::string detail = log.about(chosen.bpf_programs[0]);
      bool ours = !detail.empty();
      if (!ours && load_compat && !log.about(compat_program().bpf_programs[0]).empty())
        throw SensorFailure{"LOAD_FAILED", -err,
                            "compat_syscalls: the kernel refused " + std::string(compat_program().program) + ": " +
                                log.about(compat_program().bpf_programs[0]) + " (turn compat_syscalls off)"};
      if (!ours) {
        // The failure was in a program every attempt loads: no candidate can help.
        throw SensorFailure{"LOAD_FAILED", -err,
                            "the kernel refused sockeye's BPF programs: " + errno_text(-err) +
                                " (run with SOCKEYE_DEBUG_LIBBPF=1 for the verifier log)"};
      }
      rep.reason = "load failed: " + detail;
      sensor->report_.push_back(rep);
      continue;
    }
    std::string attach_error = attach_all(a, chosen);
    if (!attach_error.empty()) {
      rep.reason = attach_error;
      sensor->report_.push_back(rep);
      continue;
    }
    for (const Candidate& req : required_programs()) {
      std::string why = attach_all(a, req);
      if (!why.empty()) throw SensorFailure{"ATTACH_FAILED", errno, req.capability + std::string(": ") + why};
    }
    if (load_compat) {
      std::string why = attach_all(a, compat_program());
      if (!why.empty()) throw SensorFailure{"ATTACH_FAILED", errno, "compat_syscalls: " + why + " (turn compat_syscalls off)"};
    }
    rep.live = true;
    sensor->report_.push_back(rep);
    for (const Candidate& req : required_programs()) sensor->report_.push_back({req.capability, req.program, true, ""});
    sensor->report_.push_back({compat_program().capability, compat_program().program, load_compat,
                               load_compat ? "" : compat_refused ? kCompatRefused : kCompatOff});
    // Whatever was not tried after the winner is reported as such.
    bool after = false;
    for (const Candidate& c : connect_candidates()) {
      if (after) sensor->report_.push_back({c.capability, c.program, false, "not needed: a preferred candidate is live"});
      if (&c == &chosen) after = true;
    }
    sensor->skel_ = a.skel;
    sensor->wakeup_interval_us_ = options.wakeup_interval_us;
    sensor->links_ = std::move(a.links);
    a.skel = nullptr;
    // Loading parsed the kernel's BTF (several MB) and freed it; glibc keeps freed heap
    // mapped. Handing it back cut the idle daemon's RSS by 11 MB (bench/README.md).
    malloc_trim(0);
    return sensor;
  }
  std::string reasons;
  for (const auto& r : sensor->report_) reasons += (reasons.empty() ? "" : "; ") + r.program + ": " + r.reason;
  throw SensorFailure{"NO_CONNECT_HOOK", 0, "no connect hook could be loaded and attached (" + reasons + ")"};
}

LoadedSensor::~LoadedSensor() { detach(); }

void LoadedSensor::detach_programs() {
  for (auto* l : links_) bpf_link__destroy(l);
  links_.clear();
}

void LoadedSensor::detach() {
  detach_programs();
  if (skel_) sockeye_bpf__destroy(skel_);
  skel_ = nullptr;
}

int LoadedSensor::detection_ring_fd() const { return skel_ ? bpf_map__fd(skel_->maps.detection_events) : -1; }
int LoadedSensor::process_ring_fd() const { return skel_ ? bpf_map__fd(skel_->maps.process_events) : -1; }

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

}  // namespace sockeye
