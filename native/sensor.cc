// The JavaScript face of the kernel side: one Sensor object per loaded set of programs.
//
// Batches travel from the reader thread to the event loop through one thread-safe
// function; each becomes one ArrayBuffer that owns the batch's memory (no copy), and one
// JS call. The daemon decides with ref()/unref() whether a live sensor keeps Node alive.
#include <napi.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>

#include "loader.h"
#include "ring_reader.h"
#include "sockeye_events.h"

namespace sockeye {

// Per-environment state (no statics: style.md): the SensorError class JS registered.
struct AddonData {
  Napi::FunctionReference sensor_error;
};

Napi::Error make_sensor_error(Napi::Env env, const std::string& code, int err, const std::string& message) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->sensor_error.IsEmpty()) {
    Napi::Object e = data->sensor_error.New(
        {Napi::String::New(env, message), Napi::String::New(env, code), Napi::Number::New(env, err)});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

namespace {

LoadOptions parse_options(const Napi::Value& value) {
  LoadOptions o;
  if (!value.IsObject()) return o;
  Napi::Object obj = value.As<Napi::Object>();
  if (obj.Has("stdioFdMax")) o.stdio_fd_max = obj.Get("stdioFdMax").As<Napi::Number>().Int32Value();
  if (obj.Has("connectAllFds")) o.connect_all_fds = obj.Get("connectAllFds").ToBoolean();
  if (obj.Has("acceptRecords")) o.accept_records = obj.Get("acceptRecords").ToBoolean();
  if (obj.Has("compatSyscalls")) o.compat_syscalls = obj.Get("compatSyscalls").ToBoolean();
  if (obj.Has("detectionRingBytes"))
    o.detection_ring_bytes = obj.Get("detectionRingBytes").As<Napi::Number>().Uint32Value();
  if (obj.Has("wakeupIntervalUs"))
    o.wakeup_interval_us = obj.Get("wakeupIntervalUs").As<Napi::Number>().Uint32Value();
  if (obj.Has("processRingBytes")) o.process_ring_bytes = obj.Get("processRingBytes").As<Napi::Number>().Uint32Value();
  if (obj.Has("relayRingBytes")) o.relay_ring_bytes = obj.Get("relayRingBytes").As<Napi::Number>().Uint32Value();
  if (obj.Has("wakeupShells")) {
    Napi::Array list = obj.Get("wakeupShells").As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) o.wakeup_shells.push_back(list.Get(i).ToString());
  }
  if (obj.Has("enforce")) o.enforce = obj.Get("enforce").ToBoolean();
  if (obj.Has("enforceNames")) {
    Napi::Array list = obj.Get("enforceNames").As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) o.enforce_names.push_back(list.Get(i).ToString());
  }
  auto exe_list = [&](const char* name, std::vector<std::pair<uint64_t, uint64_t>>& into) {
    if (!obj.Has(name)) return;
    Napi::Array list = obj.Get(name).As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Array pair = list.Get(i).As<Napi::Array>();
      into.emplace_back(static_cast<uint64_t>(pair.Get(0u).As<Napi::Number>().Int64Value()),
                        static_cast<uint64_t>(pair.Get(1u).As<Napi::Number>().Int64Value()));
    }
  };
  exe_list("enforceExes", o.enforce_exes);
  exe_list("enforceAllowed", o.enforce_allowed);
  if (obj.Has("skipCandidates")) {
    Napi::Array list = obj.Get("skipCandidates").As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) o.skip_candidates.push_back(list.Get(i).ToString());
  }
  return o;
}

Napi::Object features_to_js(Napi::Env env, const KernelFeatures& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kernelRelease", f.kernel_release);
  o.Set("btf", f.btf);
  o.Set("lsmList", f.lsm_list);
  o.Set("bpfLsm", f.lsm_list.find("bpf") != std::string::npos);
  o.Set("lockdown", f.lockdown);
  o.Set("tracefsPath", f.tracefs_path);
  o.Set("capBpf", f.cap_bpf);
  o.Set("capPerfmon", f.cap_perfmon);
  o.Set("capSysAdmin", f.cap_sys_admin);
  Napi::Array actions = Napi::Array::New(env, f.actions.size());
  for (size_t i = 0; i < f.actions.size(); i++) actions.Set(i, f.actions[i]);
  o.Set("actions", actions);
  o.Set("ia32Syscalls", ia32_syscalls_name(f.ia32));
  Napi::Object helpers = Napi::Object::New(env);
  helpers.Set("bpf_get_current_task_btf", helper_support_name(f.current_task_btf));
  helpers.Set("bpf_task_pt_regs", helper_support_name(f.task_pt_regs));
  o.Set("helpers", helpers);
  return o;
}

Napi::Array report_to_js(Napi::Env env, const std::vector<CandidateReport>& report) {
  Napi::Array out = Napi::Array::New(env, report.size());
  for (size_t i = 0; i < report.size(); i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("capability", report[i].capability);
    r.Set("program", report[i].program);
    r.Set("live", report[i].live);
    r.Set("reason", report[i].reason);
    out.Set(i, r);
  }
  return out;
}

// onBatch(buffer, records, waitedMs): waitedMs is how long the batch sat in the queue before
// the event loop took it. Measured per batch rather than by a periodic timer, which woke an
// idle daemon 100 times a second (about 6 ms of CPU a second) to learn the same thing.
void deliver_to_js(Napi::Env env, Napi::Function on_batch, std::nullptr_t*, Batch* raw) {
  std::unique_ptr<Batch> batch(raw);
  if (env == nullptr) return;  // environment shutting down: the batch is freed
  const uint64_t now = monotonic_ns();
  const double waited_ms = now > batch->queued_ns ? static_cast<double>(now - batch->queued_ns) / 1e6 : 0.0;
  Batch* owned = batch.release();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, owned->bytes.data(), owned->bytes.size(), [](Napi::Env, void*, Batch* b) { delete b; }, owned);
  on_batch.Call({buffer, Napi::Number::New(env, owned->records), Napi::Number::New(env, waited_ms)});
}

using BatchFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, deliver_to_js>;

// Batches allowed to wait for the event loop; past this the reader blocks and the kernel
// counts what it cannot store.
constexpr size_t kMaxQueuedBatches = 64;

class Sensor : public Napi::ObjectWrap<Sensor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sensor",
                       {
                           InstanceMethod<&Sensor::Start>("start"),
                           InstanceMethod<&Sensor::Close>("close"),
                           InstanceMethod<&Sensor::Counters>("counters"),
                           InstanceMethod<&Sensor::RingDrops>("ringDrops"),
                           InstanceMethod<&Sensor::EnforceActions>("enforceActions"),
                           InstanceMethod<&Sensor::CheckAttached>("checkAttached"),
                           InstanceMethod<&Sensor::Report>("report"),
                           InstanceMethod<&Sensor::Features>("features"),
                           InstanceMethod<&Sensor::Ref>("ref"),
                           InstanceMethod<&Sensor::Unref>("unref"),
                           InstanceMethod<&Sensor::DroppedAtClose>("droppedAtClose"),
                           InstanceMethod<&Sensor::Scheduling>("scheduling"),
                       });
  }

  // new Sensor(options, onBatch(buffer, records))
  explicit Sensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sensor>(info) {
    Napi::Env env = info.Env();
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "Sensor: onBatch must be a function");
    try {
      loaded_ = LoadedSensor::open(parse_options(info[0]));
    } catch (const SensorFailure& f) {
      throw make_sensor_error(env, f.code, f.err, f.message);
    }
    // readerRealtime: on unless false; eventLoopRealtime: off unless true (the event loop is
    // the host application's thread).
    if (info[0].IsObject()) {
      Napi::Object o = info[0].As<Napi::Object>();
      if (o.Has("readerRealtime")) reader_realtime_ = o.Get("readerRealtime").ToBoolean();
      if (o.Has("eventLoopRealtime")) event_loop_realtime_ = o.Get("eventLoopRealtime").ToBoolean();
    }
    on_batch_ = BatchFunction::New(env, info[1].As<Napi::Function>(), "sockeye-batches", kMaxQueuedBatches, 1);
    napi_add_env_cleanup_hook(env, &Sensor::OnEnvTeardown, this);
    hook_env_ = env;
  }

  ~Sensor() override { Shutdown(); }

  static void OnEnvTeardown(void* self) { static_cast<Sensor*>(self)->Shutdown(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (!loaded_) throw make_sensor_error(info.Env(), "CLOSED", 0, "the sensor is closed");
    if (reader_) return info.Env().Undefined();
    BatchFunction fn = on_batch_;
    std::atomic<uint64_t>* dropped = &records_dropped_at_close_;
    const std::atomic<bool>* shutting_down = &shutting_down_;
    try {
      reader_ = std::make_unique<RingReader>(
          loaded_->detection_ring_fd(), loaded_->process_ring_fd(), loaded_->relay_ring_fd(), loaded_->wakeup_interval_us(),
          reader_realtime_, event_loop_realtime_,
          [fn, dropped, shutting_down](std::unique_ptr<Batch> batch, bool closing,
                                       const std::function<void()>& waiting) mutable {
            // Never BlockingCall: close() joins this thread from the main thread, which is the
            // only one that empties the queue, so a reader blocked on a full queue at that
            // moment deadlocks (seen on a host flooded with other processes' execs). Wait for
            // room in short steps instead, and give up once close has begun.
            // Stamped before any wait for room: a full queue is JavaScript's lag too.
            batch->queued_ns = monotonic_ns();
            napi_status status = fn.NonBlockingCall(batch.get());
            while (status == napi_queue_full && !closing && !shutting_down->load()) {
              waiting();  // a JavaScript stuck with the queue full is still demoted
              std::this_thread::sleep_for(std::chrono::milliseconds(1));
              status = fn.NonBlockingCall(batch.get());
            }
            if (status == napi_ok)
              batch.release();
            else
              dropped->fetch_add(batch->records);
          });
    } catch (const std::exception& e) {
      throw make_sensor_error(info.Env(), "RING_FAILED", errno, e.what());
    }
    return info.Env().Undefined();
  }

  // Flushes the last batch, detaches every program, frees the maps. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    std::lock_guard<std::mutex> lock(shutdown_mutex_);
    shutting_down_.store(true);
    // Programs first: once none runs, the reader's last drain takes everything there is, so
    // no record is counted emitted and then neither delivered nor counted lost.
    if (loaded_) loaded_->detach_programs();
    if (reader_) {
      remember_scheduling();  // as it ran, before stop() releases the event loop
      reader_->stop();
    }
    reader_.reset();
    if (loaded_) {
      // The totals outlive the maps: a daemon reports them after the last batch.
      final_counters_ = loaded_->counters();
      final_ring_drops_ = loaded_->ring_drops();
      final_enforce_actions_ = loaded_->enforce_actions();
      loaded_->detach();
      loaded_.reset();
      on_batch_.Release();
      napi_remove_env_cleanup_hook(hook_env_, &Sensor::OnEnvTeardown, this);
    }
  }

  // Flat array: per hook (enum sockeye_hook order) emitted, lost, errors.
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint64_t> values = loaded_ ? loaded_->counters() : final_counters_;
    Napi::Array out = Napi::Array::New(env, values.size());
    for (size_t i = 0; i < values.size(); i++) out.Set(i, Napi::Number::New(env, double(values[i])));
    return out;
  }

  // Flat array: per ring (enum sockeye_ring) the drops per reason (enum sockeye_drop_reason).
  Napi::Value RingDrops(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint64_t> values = loaded_ ? loaded_->ring_drops() : final_ring_drops_;
    Napi::Array out = Napi::Array::New(env, values.size());
    for (size_t i = 0; i < values.size(); i++) out.Set(i, Napi::Number::New(env, double(values[i])));
    return out;
  }

  // [exec denied, exec killed, dup killed, signal failed] by the enforcing programs.
  Napi::Value EnforceActions(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint64_t> values = loaded_ ? loaded_->enforce_actions() : final_enforce_actions_;
    Napi::Array out = Napi::Array::New(env, values.size());
    for (size_t i = 0; i < values.size(); i++) out.Set(i, Napi::Number::New(env, double(values[i])));
    return out;
  }

  // [{ program, problem }] per attached program ("" while attached); empty once closed.
  Napi::Value CheckAttached(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<AttachState> states = loaded_ ? loaded_->check_attached() : std::vector<AttachState>{};
    Napi::Array out = Napi::Array::New(env, states.size());
    for (size_t i = 0; i < states.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("program", states[i].program);
      o.Set("problem", states[i].problem);
      out.Set(i, o);
    }
    return out;
  }

  Napi::Value Report(const Napi::CallbackInfo& info) {
    if (!loaded_) return Napi::Array::New(info.Env());
    return report_to_js(info.Env(), loaded_->report());
  }

  Napi::Value Features(const Napi::CallbackInfo& info) {
    if (!loaded_) return info.Env().Null();
    return features_to_js(info.Env(), loaded_->features());
  }

  // Records of batches that found the queue to JavaScript full once close had begun.
  Napi::Value DroppedAtClose(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(records_dropped_at_close_.load()));
  }

  // { reader, eventLoop }: how the two threads run; null before start() (the reader starts
  // with the first subscriber). Kept after close.
  Napi::Value Scheduling(const Napi::CallbackInfo& info) {
    if (reader_) remember_scheduling();
    if (reader_scheduling_.empty()) return info.Env().Null();
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("reader", reader_scheduling_);
    out.Set("eventLoop", event_loop_scheduling_);
    return out;
  }

  void remember_scheduling() {
    reader_scheduling_ = reader_->scheduling();
    event_loop_scheduling_ = reader_->event_loop_scheduling();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (loaded_) on_batch_.Ref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (loaded_) on_batch_.Unref(info.Env());
    return info.Env().Undefined();
  }

  std::unique_ptr<LoadedSensor> loaded_;
  std::unique_ptr<RingReader> reader_;
  BatchFunction on_batch_;
  napi_env hook_env_ = nullptr;
  std::atomic<uint64_t> records_dropped_at_close_{0};
  // Counters read just before the maps were freed at close (empty until then).
  std::vector<uint64_t> final_counters_;
  std::vector<uint64_t> final_ring_drops_;
  std::vector<uint64_t> final_enforce_actions_ = std::vector<uint64_t>(4, 0);
  std::atomic<bool> shutting_down_{false};
  bool reader_realtime_ = true;
  bool event_loop_realtime_ = false;
  std::string reader_scheduling_, event_loop_scheduling_;  // kept after close
  std::mutex shutdown_mutex_;
};

// probe(options): load, attach and detach at once; what `sockeye probe` prints. Features are
// reported even when loading fails, with the failure alongside.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  try {
    auto loaded = LoadedSensor::open(parse_options(info[0]));
    out.Set("features", features_to_js(env, loaded->features()));
    out.Set("candidates", report_to_js(env, loaded->report()));
    out.Set("error", env.Null());
  } catch (const SensorFailure& f) {
    out.Set("features", features_to_js(env, probe_features(false)));
    out.Set("candidates", Napi::Array::New(env));
    Napi::Object e = Napi::Object::New(env);
    e.Set("code", f.code);
    e.Set("errno", f.err);
    e.Set("message", f.message);
    out.Set("error", e);
  }
  return out;
}

// killVerified(pid, startTicks): SIGKILL to the process `pid` only while it is still the one
// that started at `startTicks` (/proc/<pid>/stat field 22). The pidfd is opened first, then the
// start time read: a pidfd names one process for good, so a pid reused after the check is
// never signalled (pidfd_send_signal to an exited process fails with ESRCH).
// Returns "killed", "gone", "reused" or "error: <errno text>".
Napi::Value KillVerified(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = info[0].As<Napi::Number>().Int32Value();
  int64_t start_ticks = info[1].As<Napi::Number>().Int64Value();
  if (pid <= 1) return Napi::String::New(env, "error: refused pid " + std::to_string(pid));
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return Napi::String::New(env, errno == ESRCH ? "gone" : std::string("error: ") + strerror(errno));
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = fopen(path.c_str(), "re");
  std::string stat;
  if (f) {
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    stat.assign(buf, n);
    fclose(f);
  }
  // Field 22, counted after the comm's closing parenthesis (a comm may hold ") ").
  size_t close = stat.rfind(')');
  int64_t ticks = -1;
  if (close != std::string::npos) {
    size_t at = close + 2;  // field 3 starts here
    for (int field = 3; field < 22 && at != std::string::npos; field++) {
      at = stat.find(' ', at);
      if (at != std::string::npos) at++;
    }
    if (at != std::string::npos) ticks = strtoll(stat.c_str() + at, nullptr, 10);
  }
  std::string result;
  if (ticks < 0) {
    result = "gone";
  } else if (ticks != start_ticks) {
    result = "reused";
  } else if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0) {
    result = "killed";
  } else {
    result = errno == ESRCH ? "gone" : std::string("error: ") + strerror(errno);
  }
  ::close(pidfd);
  return Napi::String::New(env, result);
}

// { rodata, written }: see settings_coverage (loader.h).
Napi::Value KernelSettings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SettingsCoverage coverage = settings_coverage();
  auto to_js = [&](const std::vector<std::string>& names) {
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); i++) out.Set(i, names[i]);
    return out;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("rodata", to_js(coverage.rodata));
  out.Set("written", to_js(coverage.written));
  return out;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  auto* data = info.Env().GetInstanceData<AddonData>();
  data->sensor_error = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Object layout_to_js(Napi::Env env);

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  exports.Set("Sensor", Sensor::Define(env));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("layout", layout_to_js(env));
  exports.Set("killVerified", Napi::Function::New(env, KillVerified, "killVerified"));
  exports.Set("kernelSettings", Napi::Function::New(env, KernelSettings, "kernelSettings"));
  return exports;
}

}  // namespace sockeye

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return sockeye::Init(env, exports); }
NODE_API_MODULE(sockeye, InitAddon)
