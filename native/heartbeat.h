// Heartbeats sent by a native thread, so that failure detection does not
// depend on the JavaScript event loop: a long GC pause or a busy callback on
// the holder must not make its peers think it died.
//
// JavaScript pre-signs future heartbeat datagrams (sequence number and HMAC
// are computed in TypeScript; no byte is encoded here) and pushes them into a
// bounded queue. The sender thread pops one datagram per interval and sends
// it to every peer. The queue is the watchdog: if JavaScript stops refilling
// it for longer than queue length x interval, the thread runs dry and the
// heartbeats stop, as they should for a frozen process.
//
// - One nonblocking, close-on-exec UDP socket per peer, connect(2)ed to it:
//   on a connected socket the kernel reports the peer host's ICMP port
//   unreachable as ECONNREFUSED (udp(7): "If the socket is connected, errors
//   are reported"), so a holder whose process died while its host stays up is
//   noticed within one round trip.
// - The thread waits in poll(2) on a CLOCK_MONOTONIC timerfd armed with an
//   absolute first expiry and a period (timerfd_create(2)): ticks do not
//   drift, missed ticks are counted by the kernel rather than sent in a
//   burst, and the same poll wakes at once for a stop request (eventfd) or
//   a pending socket error (POLLERR, reported even when not requested).
//   clock_nanosleep(TIMER_ABSTIME) would keep the same grid but could not be
//   woken: stop() would wait up to an interval (60 s at most) and an ICMP
//   error would wait for the next tick.
// - Events reach JavaScript through one napi_threadsafe_function, coalesced:
//   the thread appends to a fixed ring and calls the function only when the
//   ring was empty: the loop allocates nothing of its own and Node's queue
//   holds at most one entry; a full ring drops events and counts them.
//
// JS API (see lib/native.ts NativeHeartbeatSender):
//   new HeartbeatSender({ peers: [{ address, port }], intervalUs, netns?,
//                         bindAddress?, dscp?, realtime?, onEvent })
//   push(buffers[]) -> queued, clear() -> removed, sendNow(buffer[, replacement[]]) -> errno[]
//   stop(), ref(), unref(), queued, capacity, stats
#pragma once

#include <napi.h>
#include <node_api.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "fd.h"

namespace vipa {

class HeartbeatSender : public Napi::ObjectWrap<HeartbeatSender> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit HeartbeatSender(const Napi::CallbackInfo& info);
  ~HeartbeatSender() override;

  // Stops and joins the thread, closes every fd, releases the threadsafe
  // function and the env cleanup hook. Idempotent. JS thread only.
  void StopNow();

  // Bound of the datagram queue: 1024 x 10 ms is ten seconds of heartbeats,
  // far more than a refill period needs.
  static constexpr size_t kQueueCapacity = 1024;
  // The largest UDP payload over IPv4 (65535 - 8 - 20); IPv6 allows 8 bytes
  // more without jumbograms, but a heartbeat this large is a bug anyway.
  static constexpr size_t kMaxDatagram = 65507;

 private:
  enum class EventKind : uint8_t { kPeerError, kStarved, kResumed, kStale };
  struct Event {
    EventKind kind;
    int32_t peer;
    int32_t error;
  };
  static constexpr size_t kEventRing = 64;
  static const char* EventName(EventKind kind);

  // Shared by the sender thread and the threadsafe function's JS callback.
  // Owned by the threadsafe function (deleted in its finalizer), because
  // Node may still run a queued callback after the sender object is gone.
  struct EventChannel {
    std::mutex mu;
    std::array<Event, kEventRing> ring{};
    size_t head = 0;
    size_t count = 0;
    bool call_pending = false;  // a tsfn call is queued and will drain the ring
    bool closed = false;        // sender stopped: deliver nothing more
  };

  void OpenSockets(Napi::Env env, Napi::Object options);
  void StartThread(Napi::Env env, Napi::Function on_event, bool realtime);
  void RequireOpen(Napi::Env env, const char* syscall);

  // ---- sender thread ----
  void Run(bool realtime);
  void Tick(uint64_t expirations, int64_t now_ns);
  void SendToPeers(const std::vector<uint8_t>& datagram);
  void DrainPeerErrors(size_t peer);
  void Report(EventKind kind, int32_t peer, int32_t error);

  // ---- JS thread ----
  static void CallJs(napi_env env, napi_value callback, void* context, void* data);
  static void FinalizeChannel(napi_env env, void* data, void* hint);
  static void CleanupHook(void* arg);

  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value Clear(const Napi::CallbackInfo& info);
  Napi::Value SendNow(const Napi::CallbackInfo& info);
  void Enqueue(Napi::Env env, const std::vector<std::pair<const uint8_t*, size_t>>& datagrams, const char* what);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value RefLoop(const Napi::CallbackInfo& info);
  Napi::Value UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value GetQueued(const Napi::CallbackInfo& info);
  Napi::Value GetCapacity(const Napi::CallbackInfo& info);
  Napi::Value GetStats(const Napi::CallbackInfo& info);

  Napi::Env env_;
  std::vector<UniqueFd> peers_;     // connected UDP sockets, one per peer
  std::vector<pollfd> poll_fds_;    // built before the thread starts: [timer, stop, peers...]
  UniqueFd timer_;                  // timerfd, CLOCK_MONOTONIC
  UniqueFd stop_event_;             // eventfd written by StopNow
  int64_t interval_ns_ = 0;
  // A tick this late means the whole process was stopped or starved: the
  // queued heartbeats were signed before and must not go out (0 = off).
  int64_t stale_after_ns_ = 0;

  // The datagram queue: a ring of reusable buffers. push() copies into a
  // slot (allocating on the JS thread at most); the thread swaps the slot
  // with its own buffer, so it neither copies nor allocates.
  std::mutex queue_mu_;
  // Held by the thread from popping a heartbeat until it is sent, and by
  // sendNow(urgent, replacement) around dropping the queue, sending and
  // refilling: no queued heartbeat goes out between the two, and none
  // signed before an urgent message goes out after it. Taken before
  // queue_mu_.
  std::mutex send_mu_;
  std::vector<std::vector<uint8_t>> slots_;
  size_t queue_head_ = 0;
  size_t queue_count_ = 0;
  std::vector<uint8_t> sending_;    // the thread's datagram in flight

  // Thread state, touched by the thread only.
  bool ever_sent_ = false;
  bool starved_ = false;
  int64_t deadline_ns_ = 0;         // earliest timer expiry not yet handled

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> send_errors_{0};  // failed send(2) calls
  std::atomic<uint64_t> peer_errors_{0};  // asynchronous (ICMP) errors reported
  std::atomic<uint64_t> ticks_{0};
  std::atomic<uint64_t> late_ticks_{0};
  std::atomic<uint64_t> max_late_ns_{0};
  std::atomic<uint64_t> event_drops_{0};  // events lost to a full ring
  std::atomic<bool> realtime_{false};

  std::thread thread_;
  napi_threadsafe_function tsfn_ = nullptr;
  EventChannel* channel_ = nullptr;  // owned by tsfn_
  bool cleanup_hook_added_ = false;
  bool stopped_ = false;
};

}  // namespace vipa
