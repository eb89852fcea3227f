// Addon entry point: registers the Socket class and the error factory, and
// closes every socket still open when the environment (main or worker
// thread) is torn down.
#include "addon.h"

#include <errno.h>
#include <sched.h>

#include <cstring>
#include <vector>

#include "heartbeat.h"
#include "reaper.h"
#include "socket.h"
#include "timer.h"

namespace vipa {

AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

NetnsTarget NetnsOption(Napi::Object options) {
  NetnsTarget target;
  Napi::Value netns = options.Get("netns");
  if (netns.IsString()) target.path = netns.As<Napi::String>().Utf8Value();
  if (netns.IsNumber()) target.fd = netns.As<Napi::Number>().Int32Value();
  return target;
}

Napi::Error MakeSystemError(Napi::Env env, int err, const char* syscall, const char* op) {
  AddonData& data = GetAddonData(env);
  if (!data.error_factory.IsEmpty()) {
    Napi::Value e = data.error_factory.Call(
        {Napi::Number::New(env, err), Napi::String::New(env, syscall), Napi::String::New(env, op)});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, std::string(op) + ": " + syscall + " failed: " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

namespace {

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setErrorFactory(fn): fn must be a function");
  }
  GetAddonData(info.Env()).error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// getScheduler(): [policy, priority] of the calling thread, sched(7).
Napi::Value GetScheduler(const Napi::CallbackInfo& info) {
  int policy = ::sched_getscheduler(0);
  if (policy < 0) throw MakeSystemError(info.Env(), errno, "sched_getscheduler", "getScheduler");
  sched_param param{};
  if (::sched_getparam(0, &param) != 0) throw MakeSystemError(info.Env(), errno, "sched_getparam", "getScheduler");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), policy));
  out.Set(1u, Napi::Number::New(info.Env(), param.sched_priority));
  return out;
}

// setScheduler(policy, priority): sched_setscheduler(2) on the calling
// thread. Returns false, changing nothing, when not allowed (EPERM: neither
// CAP_SYS_NICE nor RLIMIT_RTPRIO); throws for other errors.
Napi::Value SetScheduler(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "setScheduler(policy, priority): both must be numbers");
  }
  sched_param param{};
  param.sched_priority = info[1].As<Napi::Number>().Int32Value();
  if (::sched_setscheduler(0, info[0].As<Napi::Number>().Int32Value(), &param) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == EPERM) return Napi::Boolean::New(info.Env(), false);
  throw MakeSystemError(info.Env(), errno, "sched_setscheduler", "setScheduler");
}

void CleanupOpenSockets(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  std::vector<Socket*> open(data->open_sockets.begin(), data->open_sockets.end());
  for (Socket* s : open) s->CloseNow();
  std::vector<Timer*> timers(data->open_timers.begin(), data->open_timers.end());
  for (Timer* t : timers) t->CloseNow();
  // The engine that armed a reaper is gone with this environment: let the
  // reaper remove what it held, as if the process had died.
  std::vector<Reaper*> reapers(data->open_reapers.begin(), data->open_reapers.end());
  for (Reaper* r : reapers) r->Abandon();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  napi_add_env_cleanup_hook(env, CleanupOpenSockets, data);
  exports.Set("Socket", Socket::Init(env));
  exports.Set("Reaper", Reaper::Init(env));
  exports.Set("HeartbeatSender", HeartbeatSender::Init(env));
  exports.Set("Timer", Timer::Init(env));
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory));
  exports.Set("getScheduler", Napi::Function::New(env, GetScheduler));
  exports.Set("setScheduler", Napi::Function::New(env, SetScheduler));
  return exports;
}

}  // namespace vipa

static Napi::Object InitVipa(Napi::Env env, Napi::Object exports) { return vipa::Init(env, exports); }

NODE_API_MODULE(vipa, InitVipa)
