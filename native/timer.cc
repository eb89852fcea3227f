// See timer.h.
#include "timer.h"

#include <errno.h>
#include <sys/timerfd.h>

#include <cmath>
#include <cstdint>

#include "addon.h"

namespace vipa {

Napi::Function Timer::Init(Napi::Env env) {
  return DefineClass(env, "Timer",
                     {
                         InstanceMethod<&Timer::Start>("start"),
                         InstanceMethod<&Timer::Stop>("stop"),
                         InstanceMethod<&Timer::Close>("close"),
                     });
}

Timer::Timer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Timer>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "Timer(callback): callback must be a function");
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) throw MakeSystemError(env, errno, "timerfd_create", "timer");
  fd_.Reset(fd);
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  async_context_ = new Napi::AsyncContext(env, "vipa:timer");
  GetAddonData(env).open_timers.insert(this);
}

Timer::~Timer() {
  CloseNow();
  delete async_context_;
}

void Timer::RequireOpen(Napi::Env env, const char* op) {
  if (!fd_.Valid()) throw MakeSystemError(env, EBADF, op, "timer");
}

// start(delayMs): arms the timerfd `delayMs` from now (fractional ms, clamped
// to [1 ns, 1 day]) and watches it; re-arming replaces the previous expiry.
Napi::Value Timer::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "timerfd_settime");
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "start(delayMs): delayMs must be a number");
  double ms = info[0].As<Napi::Number>().DoubleValue();
  if (std::isnan(ms)) throw Napi::RangeError::New(env, "start(delayMs): delayMs must not be NaN");
  double ns = std::fmin(std::fmax(ms * 1e6, 1.0), 86400e9);
  int64_t total = static_cast<int64_t>(ns);
  struct itimerspec spec = {};
  spec.it_value.tv_sec = static_cast<time_t>(total / 1000000000);
  spec.it_value.tv_nsec = static_cast<long>(total % 1000000000);
  if (::timerfd_settime(fd_.Get(), 0, &spec, nullptr) != 0) throw MakeSystemError(env, errno, "timerfd_settime", "timer");
  if (poll_ == nullptr) StartPolling(env);
  if (!armed_) {
    armed_ = true;
    uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));  // an armed timer keeps the loop alive
    Ref();                                                  // and this object: the loop will call back into it
  }
  return env.Undefined();
}

// The poll handle lives from the first start() to close(): re-arming only
// calls timerfd_settime, and a disarmed timer is an unreferenced handle on
// an fd that never becomes readable.
void Timer::StartPolling(Napi::Env env) {
  poll_ = StartPoll(env, fd_.Get(), this, &Timer::OnReadable, "timer");
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
}

void Timer::OnReadable(uv_poll_t* handle, int /*status*/, int /*events*/) {
  if (Timer* owner = PollOwner<Timer>(handle)) owner->Fire();
}

void Timer::Fire() {
  uint64_t expirations = 0;
  // EAGAIN: re-armed between epoll and now; wait for the new expiry.
  if (::read(fd_.Get(), &expirations, sizeof expirations) != sizeof expirations) return;
  Napi::HandleScope scope(env_);
  Napi::Object self = Value();  // holds this object through the callback
  Disarm();                      // one-shot
  try {
    callback_.MakeCallback(self, {}, *async_context_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env_, e.Value());
  }
}

void Timer::Disarm() {
  if (!armed_) return;
  armed_ = false;
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  Unref();
}

void Timer::StopPolling() {
  StopPoll(poll_);
  poll_ = nullptr;
}

Napi::Value Timer::Stop(const Napi::CallbackInfo& info) {
  if (fd_.Valid()) {
    struct itimerspec off = {};
    ::timerfd_settime(fd_.Get(), 0, &off, nullptr);
  }
  Disarm();
  return info.Env().Undefined();
}

void Timer::CloseNow() {
  Disarm();
  StopPolling();  // the poll handle goes before its fd (libuv)
  if (fd_.Valid()) {
    fd_.Reset();
    GetAddonData(env_).open_timers.erase(this);
  }
}

Napi::Value Timer::Close(const Napi::CallbackInfo& info) {
  CloseNow();
  return info.Env().Undefined();
}

}  // namespace vipa
