// Sizes and offsets of the shared records, straight from bpf/sockeye_events.h, so the unit
// tier can check that src/sensor/layout.ts (the decoder's twin of that header) agrees.
#include <napi.h>

#include <cstddef>

#include "sockeye_events.h"

namespace sockeye {

#define FIELD(obj, type, field) obj.Set(#field, Napi::Number::New(env, offsetof(type, field)))

Napi::Object layout_to_js(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  auto add = [&](const char* name, size_t size) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("sizeof", Napi::Number::New(env, size));
    out.Set(name, o);
    return o;
  };
  Napi::Object h = add("event_header", sizeof(event_header));
  FIELD(h, event_header, kind); FIELD(h, event_header, size); FIELD(h, event_header, cpu); FIELD(h, event_header, time_ns);
  Napi::Object t = add("task_context", sizeof(task_context));
  FIELD(t, task_context, pid); FIELD(t, task_context, tid); FIELD(t, task_context, ppid); FIELD(t, task_context, uid);
  FIELD(t, task_context, gid); FIELD(t, task_context, cgroup_id); FIELD(t, task_context, start_ns);
  FIELD(t, task_context, comm); FIELD(t, task_context, parent_comm); FIELD(t, task_context, ns_pid);
  FIELD(t, task_context, pid_ns); FIELD(t, task_context, mnt_ns); FIELD(t, task_context, net_ns);
  Napi::Object ep = add("sock_endpoint", sizeof(sock_endpoint));
  FIELD(ep, sock_endpoint, addr); FIELD(ep, sock_endpoint, port);
  Napi::Object c = add("connect_event", sizeof(connect_event));
  FIELD(c, connect_event, task); FIELD(c, connect_event, fd); FIELD(c, connect_event, result);
  FIELD(c, connect_event, family); FIELD(c, connect_event, sock_type); FIELD(c, connect_event, protocol);
  FIELD(c, connect_event, source); FIELD(c, connect_event, remote); FIELD(c, connect_event, unix_path);
  FIELD(c, connect_event, sock_ino); FIELD(c, connect_event, stdio);
  Napi::Object sb = add("stdio_brief", sizeof(stdio_brief));
  FIELD(sb, stdio_brief, ino); FIELD(sb, stdio_brief, type);
  Napi::Object d = add("socket_dup_event", sizeof(socket_dup_event));
  FIELD(d, socket_dup_event, task); FIELD(d, socket_dup_event, oldfd); FIELD(d, socket_dup_event, newfd);
  FIELD(d, socket_dup_event, syscall); FIELD(d, socket_dup_event, family); FIELD(d, socket_dup_event, sock_type);
  FIELD(d, socket_dup_event, protocol); FIELD(d, socket_dup_event, origin); FIELD(d, socket_dup_event, state);
  FIELD(d, socket_dup_event, local); FIELD(d, socket_dup_event, remote); FIELD(d, socket_dup_event, sock_ino);
  FIELD(d, socket_dup_event, stdio);
  Napi::Object sf = add("stdio_fd", sizeof(stdio_fd));
  FIELD(sf, stdio_fd, kind); FIELD(sf, stdio_fd, origin); FIELD(sf, stdio_fd, state); FIELD(sf, stdio_fd, flags);
  FIELD(sf, stdio_fd, family); FIELD(sf, stdio_fd, sock_type); FIELD(sf, stdio_fd, ino); FIELD(sf, stdio_fd, dev);
  FIELD(sf, stdio_fd, tty_index); FIELD(sf, stdio_fd, peer_ino); FIELD(sf, stdio_fd, local); FIELD(sf, stdio_fd, remote);
  Napi::Object x = add("exec_event", sizeof(exec_event));
  FIELD(x, exec_event, task); FIELD(x, exec_event, filename_len); FIELD(x, exec_event, args_len);
  FIELD(x, exec_event, filename_truncated); FIELD(x, exec_event, args_truncated); FIELD(x, exec_event, caps_known);
  FIELD(x, exec_event, sid_known); FIELD(x, exec_event, sid);
  FIELD(x, exec_event, loginuid); FIELD(x, exec_event, caps); FIELD(x, exec_event, stdio); FIELD(x, exec_event, data);
  Napi::Object cs = add("cap_sets", sizeof(cap_sets));
  FIELD(cs, cap_sets, effective); FIELD(cs, cap_sets, permitted);
  Napi::Object f = add("fork_event", sizeof(fork_event));
  FIELD(f, fork_event, task);
  Napi::Object e = add("exit_event", sizeof(exit_event));
  FIELD(e, exit_event, task); FIELD(e, exit_event, exit_code);
  Napi::Object o = add("outbound_event", sizeof(outbound_event));
  FIELD(o, outbound_event, task); FIELD(o, outbound_event, fd); FIELD(o, outbound_event, result);
  FIELD(o, outbound_event, sock_ino); FIELD(o, outbound_event, family); FIELD(o, outbound_event, state);
  FIELD(o, outbound_event, protocol);
  FIELD(o, outbound_event, local); FIELD(o, outbound_event, remote);
  Napi::Object ac = add("accept_event", sizeof(accept_event));
  FIELD(ac, accept_event, task); FIELD(ac, accept_event, fd); FIELD(ac, accept_event, sock_ino);
  FIELD(ac, accept_event, family); FIELD(ac, accept_event, state); FIELD(ac, accept_event, local);
  FIELD(ac, accept_event, remote);
  Napi::Object cc = add("cred_change_event", sizeof(cred_change_event));
  FIELD(cc, cred_change_event, task); FIELD(cc, cred_change_event, syscall); FIELD(cc, cred_change_event, changed);
  FIELD(cc, cred_change_event, sid); FIELD(cc, cred_change_event, euid); FIELD(cc, cred_change_event, suid);
  FIELD(cc, cred_change_event, egid); FIELD(cc, cred_change_event, sgid); FIELD(cc, cred_change_event, old_uid);
  FIELD(cc, cred_change_event, old_euid); FIELD(cc, cred_change_event, old_suid); FIELD(cc, cred_change_event, old_gid);
  FIELD(cc, cred_change_event, old_egid); FIELD(cc, cred_change_event, old_sgid); FIELD(cc, cred_change_event, caps_known);
  FIELD(cc, cred_change_event, caps);
  Napi::Object k = Napi::Object::New(env);
  k.Set("COMM_LEN", SOCKEYE_COMM_LEN);
  k.Set("UNIX_PATH_LEN", SOCKEYE_UNIX_PATH_LEN);
  k.Set("FILENAME_MAX", SOCKEYE_FILENAME_MAX);
  k.Set("ARGS_MAX", SOCKEYE_ARGS_MAX);
  k.Set("STDIO_FDS", SOCKEYE_STDIO_FDS);
  k.Set("HOOK_COUNT", static_cast<int>(SOCKEYE_HOOK_COUNT));
  k.Set("RING_COUNT", static_cast<int>(SOCKEYE_RING_COUNT));
  k.Set("DROP_REASON_COUNT", static_cast<int>(SOCKEYE_DROP_REASON_COUNT));
  out.Set("constants", k);
  return out;
}

}  // namespace sockeye
