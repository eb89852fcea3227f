// Per-environment state of the addon and the one way native code reports
// failures: a VipaError built by the factory that the TypeScript layer
// registered at load time (lib/native.ts), so native and TS share one error
// model. Instance data keeps worker threads independent.
#pragma once

#include <napi.h>

#include <unordered_set>

#include "netns.h"

namespace vipa {

class Socket;
class Reaper;
class Timer;

struct AddonData {
  Napi::FunctionReference error_factory;  // (errno, syscall, op) => VipaError
  Napi::FunctionReference socket_ctor;
  std::unordered_set<Socket*> open_sockets;  // closed by the env cleanup hook
  std::unordered_set<Reaper*> open_reapers;  // abandoned by the env cleanup hook
  std::unordered_set<Timer*> open_timers;    // closed by the env cleanup hook
};

AddonData& GetAddonData(Napi::Env env);

// Module initialiser: exports Socket, Reaper, HeartbeatSender, Timer and
// setErrorFactory.
Napi::Object Init(Napi::Env env, Napi::Object exports);

// The `netns` option of a constructor: a path string, an fd number, or absent.
NetnsTarget NetnsOption(Napi::Object options);

// Builds a VipaError for `err` (a positive errno) raised by `syscall` during
// vipa operation `op`.
Napi::Error MakeSystemError(Napi::Env env, int err, const char* syscall, const char* op);

}  // namespace vipa
