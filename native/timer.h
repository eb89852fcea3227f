// A one-shot timer on the Node event loop with microsecond resolution.
//
// Node's setTimeout counts whole milliseconds from the loop's cached time
// (libuv timers, uv_now): a deadline 29.3 ms away fires anywhere from about
// 28 to 31 ms later, and epoll_wait's millisecond timeout adds up to one more
// millisecond. At 2–10 ms heartbeats that lateness is a visible share of the
// failover time. This timer is a CLOCK_MONOTONIC timerfd (timerfd_create(2))
// watched by a uv_poll_t: the kernel wakes epoll at the exact expiry, and the
// callback runs in the poll phase of that loop iteration.
//
// JS API (see lib/native.ts NativeTimer):
//   new Timer(callback)     callback() on expiry, on the JS thread
//   start(delayMs)          (re)arms, relative, fractional ms; <= 0 fires at once
//   stop()                  disarms; an armed timer keeps the loop alive
//   close()                 closes the fd; also on GC and environment teardown
#pragma once

#include <napi.h>
#include <uv.h>

#include "fd.h"
#include "poll.h"

namespace vipa {

class Timer : public Napi::ObjectWrap<Timer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Timer(const Napi::CallbackInfo& info);
  ~Timer() override;

  // Stops polling, closes the poll handle and the fd. Idempotent.
  void CloseNow();

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events);
  void Fire();
  void StartPolling(Napi::Env env);
  void StopPolling();
  void Disarm();
  void RequireOpen(Napi::Env env, const char* op);

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  UniqueFd fd_;
  Napi::Env env_;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* async_context_ = nullptr;
  PollHandle* poll_ = nullptr;  // from the first start() to close()
  bool armed_ = false;         // armed: handle referenced, object Ref()ed
};

}  // namespace vipa
