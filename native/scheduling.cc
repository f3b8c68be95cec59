#include "scheduling.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

namespace sockeye {

std::string describe_realtime_result(int err) {
  return err == 0 ? "SCHED_RR 1" : std::string("normal (SCHED_RR refused: ") + strerror(err) + ")";
}

EventLoopPriority::EventLoopPriority() : tid_(pid_t(syscall(SYS_gettid))) {
  have_clock_ = pthread_getcpuclockid(pthread_self(), &cpu_clock_) == 0;
  if (!have_clock_) {
    refused_ = "normal (its CPU clock is unreadable)";
    return;
  }
  if (!set_realtime(true)) refused_ = describe_realtime_result(errno);
}

bool EventLoopPriority::set_realtime(bool on) {
  // sched_setscheduler with a thread id changes that thread alone, from any thread.
  sched_param param{};
  param.sched_priority = on ? 1 : 0;
  if (sched_setscheduler(tid_, (on ? SCHED_RR : SCHED_OTHER) | SCHED_RESET_ON_FORK, &param) != 0) return false;
  realtime_.store(on);
  return true;
}

void EventLoopPriority::release() {
  if (refused_.empty() && realtime_.load()) set_realtime(false);
  refused_ = "normal (released)";
}

uint64_t EventLoopPriority::thread_cpu_ns() const {
  timespec ts{};
  if (clock_gettime(cpu_clock_, &ts) != 0) return last_cpu_ns_;
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

void EventLoopPriority::tick(uint64_t now_ns) {
  if (!refused_.empty()) return;
  if (last_check_ns_ == 0) {
    last_check_ns_ = calm_since_ns_ = now_ns;
    last_cpu_ns_ = thread_cpu_ns();
    return;
  }
  if (now_ns - last_check_ns_ < kCheckIntervalNs) return;
  uint64_t cpu = thread_cpu_ns();
  double share = double(cpu - last_cpu_ns_) / double(now_ns - last_check_ns_);
  last_check_ns_ = now_ns;
  last_cpu_ns_ = cpu;
  if (share >= kCalmShare) calm_since_ns_ = now_ns;
  if (realtime_.load()) {
    if (share > kBusyShare && set_realtime(false)) demotions_.fetch_add(1);
  } else if (now_ns - calm_since_ns_ >= kCalmNs) {
    set_realtime(true);
  }
}

std::string EventLoopPriority::describe() const {
  if (!refused_.empty()) return refused_;
  if (realtime_.load()) return "SCHED_RR 1 while calm";
  return "normal: busy (" + std::to_string(demotions_.load()) + " times so far)";
}

}  // namespace sockeye
