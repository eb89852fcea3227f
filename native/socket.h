// One kernel socket owned by JavaScript: an rtnetlink socket or an AF_PACKET
// socket bound to one interface. Syscalls and event-loop plumbing only; every
// byte is encoded and decoded in TypeScript.
//
// - Created nonblocking and close-on-exec, optionally inside another network
//   namespace (see netns.h).
// - send(buf): one datagram. recv(buf, timeoutMs): one datagram into a caller
//   buffer, waiting with poll(2) at most timeoutMs (the synchronous hot path).
// - recvMany(buf, timeoutMs, reserve): recv, then every datagram already
//   queued, back to back and 4-aligned, while `reserve` bytes remain free.
// - setFilter(buf): replaces a packet socket's BPF filter (pausing a receive
//   socket with a drop-all filter costs nothing, closing it waits for RCU).
// - startReading(buf, cb): a uv_poll_t on the Node event loop; on readability
//   reads up to kMaxReadsPerWakeup datagrams into buf and calls cb(length) for
//   each (cb(-errno) for a receive error such as ENOBUFS).
// - close(): stops the poll handle, then closes the fd. Also run from the
//   destructor and from the environment cleanup hook (worker teardown).
#pragma once

#include <napi.h>
#include <uv.h>

#include "fd.h"
#include "poll.h"

namespace vipa {

class Socket : public Napi::ObjectWrap<Socket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Socket(const Napi::CallbackInfo& info);
  ~Socket() override;

  // Closes the poll handle and the fd; safe to call more than once.
  void CloseNow();

 private:
  static constexpr int kMaxReadsPerWakeup = 64;

  void OpenNetlink(Napi::Env env, Napi::Object options);
  void OpenPacket(Napi::Env env, Napi::Object options);
  void RequireOpen(Napi::Env env, const char* op);
  void StopPolling();
  static void OnReadable(uv_poll_t* handle, int status, int events);
  void DrainReadable(int status);

  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value StartReading(const Napi::CallbackInfo& info);
  Napi::Value StopReading(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value SetBufferSizes(const Napi::CallbackInfo& info);
  Napi::Value SetFilter(const Napi::CallbackInfo& info);
  Napi::Value RecvMany(const Napi::CallbackInfo& info);
  void AttachFilter(Napi::Env env, Napi::Value filter);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetPortId(const Napi::CallbackInfo& info);

  UniqueFd fd_;
  Napi::Env env_;
  bool is_netlink_ = false;
  uint32_t port_id_ = 0;
  std::string op_ = "socket";  // vipa operation named in errors
  PollHandle* poll_ = nullptr;
  Napi::FunctionReference read_callback_;
  Napi::Reference<Napi::Buffer<uint8_t>> read_buffer_;
  Napi::AsyncContext* async_context_ = nullptr;
};

}  // namespace vipa
