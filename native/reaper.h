// The reaper: a child process that deletes this process's addresses when it
// dies, however it dies (SIGKILL, crash, OOM kill).
//
// A kernel address outlives the process that added it; keepalived leaves its
// virtual address on a host whose daemon was killed, so two hosts answer for
// it. vipa forks a small child at start. The parent keeps it informed of the
// RTM_DELADDR requests that would remove everything it holds (encoded in
// TypeScript; this file only moves bytes). The child waits on a pipe; when
// the parent's end closes without a "quit" (the kernel closes it when the
// parent dies), the child sends those requests on a netlink socket it opened
// in the right namespace before the fork, then sends the last "notify"
// datagram (a pre-signed leave message) to each listed peer over UDP, so
// peers take over at once instead of waiting to detect the death, and exits.
// With a lead time (in the notify payload) the child notifies first, waits
// the lead while the next holder adds and announces, then deletes: clients
// see no gap, two hosts answer for at most the lead.
//
// After fork(2) in a multithreaded process the child may only call
// async-signal-safe functions (fork(2), signal-safety(7)): it uses read,
// sendto, close_range, sigaction, prctl, sched_setscheduler and clock_nanosleep (raw syscalls) and
// _exit on memory mapped before the fork, nothing else.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include "fd.h"

namespace vipa {

class Reaper : public Napi::ObjectWrap<Reaper> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Reaper(const Napi::CallbackInfo& info);
  ~Reaper() override;

  // Closes the pipe without "quit": the child deletes the addresses. Used on
  // environment teardown (the engine is gone) and by the destructor.
  void Abandon();

 private:
  Napi::Value Arm(const Napi::CallbackInfo& info);
  Napi::Value Notify(const Napi::CallbackInfo& info);
  Napi::Value Quit(const Napi::CallbackInfo& info);
  Napi::Value GetPid(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  void WriteFrame(Napi::Env env, uint8_t type, const uint8_t* data, uint32_t length);
  void Reap(bool block);

  UniqueFd pipe_;
  pid_t pid_ = -1;
  size_t max_bytes_ = 0;
  Napi::Env env_;
};

}  // namespace vipa
