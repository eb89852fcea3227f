#include "heartbeat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <system_error>

#include "addon.h"
#include "netns.h"

namespace vipa {
namespace {

constexpr const char* kOpenOp = "heartbeat open";
constexpr const char* kSendOp = "heartbeat send";
constexpr int64_t kMinIntervalUs = 1000;        // 1 ms
constexpr int64_t kMaxIntervalUs = 60000000;    // 60 s
constexpr int64_t kNsPerSec = 1000000000;

// Indexes in poll_fds_; the peer sockets follow.
constexpr size_t kTimerSlot = 0;
constexpr size_t kStopSlot = 1;
constexpr size_t kFirstPeerSlot = 2;

int64_t MonotonicNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

timespec ToTimespec(int64_t ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / kNsPerSec);
  ts.tv_nsec = static_cast<long>(ns % kNsPerSec);
  return ts;
}

// A peer's socket address; the port goes in network order.
struct PeerAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

bool ParseAddress(const std::string& text, uint16_t port, PeerAddress& out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
    out.family = AF_INET;
    return true;
  }
  // No scope id: link-local peers (fe80::/10) would need one; use global or
  // ULA addresses for heartbeats.
  if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    out.family = AF_INET6;
    return true;
  }
  return false;
}

int SendOnce(int fd, const uint8_t* data, size_t length) {
  ssize_t n;
  do {
    n = ::send(fd, data, length, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

// send(2) of one datagram on a connected socket; 0 or this datagram's errno.
//
// A pending asynchronous error (e.g. the ICMP port unreachable answering an
// earlier datagram) is returned by the next send(2) instead of sending, and
// cleared (socket(7) SO_ERROR; udp_sendmsg checks sock_error() before it
// builds the datagram). So on failure the datagram is sent once more: if
// the outcome differs, the first error was the earlier datagram's and goes
// to `earlier`; a peer whose process came back still gets this heartbeat.
int SendDatagram(int fd, const uint8_t* data, size_t length, int& earlier) {
  earlier = 0;
  int err = SendOnce(fd, data, length);
  if (err == 0) return 0;
  int again = SendOnce(fd, data, length);
  if (again != err) earlier = err;
  return again;
}

}  // namespace

const char* HeartbeatSender::EventName(EventKind kind) {
  switch (kind) {
    case EventKind::kPeerError:
      return "peer-error";
    case EventKind::kStarved:
      return "starved";
    case EventKind::kStale:
      return "stale";
    case EventKind::kResumed:
      break;
  }
  return "resumed";
}

Napi::Function HeartbeatSender::Init(Napi::Env env) {
  return DefineClass(env, "HeartbeatSender",
                     {
                         InstanceMethod<&HeartbeatSender::Push>("push"),
                         InstanceMethod<&HeartbeatSender::Clear>("clear"),
                         InstanceMethod<&HeartbeatSender::SendNow>("sendNow"),
                         InstanceMethod<&HeartbeatSender::Stop>("stop"),
                         InstanceMethod<&HeartbeatSender::RefLoop>("ref"),
                         InstanceMethod<&HeartbeatSender::UnrefLoop>("unref"),
                         InstanceAccessor<&HeartbeatSender::GetQueued>("queued"),
                         InstanceAccessor<&HeartbeatSender::GetCapacity>("capacity"),
                         InstanceAccessor<&HeartbeatSender::GetStats>("stats"),
                     });
}

// new HeartbeatSender({ peers: [{ address, port }], intervalUs, netns?,
//                       bindAddress?, dscp?, realtime?, onEvent })
// The TypeScript wrapper validates every option with precise messages; the
// checks here only keep bad input from reaching a syscall.
HeartbeatSender::HeartbeatSender(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<HeartbeatSender>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "HeartbeatSender(options): options must be an object");
  }
  Napi::Object options = info[0].As<Napi::Object>();
  Napi::Value on_event = options.Get("onEvent");
  if (!on_event.IsFunction()) throw Napi::TypeError::New(env, "HeartbeatSender: onEvent must be a function");
  double interval_us = options.Get("intervalUs").ToNumber().DoubleValue();
  if (!(interval_us >= kMinIntervalUs && interval_us <= kMaxIntervalUs)) {
    throw Napi::RangeError::New(env, "HeartbeatSender: intervalUs must be 1000..60000000, got " +
                                         options.Get("intervalUs").ToString().Utf8Value());
  }
  interval_ns_ = static_cast<int64_t>(interval_us) * 1000;
  double stale_after_us = options.Get("staleAfterUs").IsNumber() ? options.Get("staleAfterUs").As<Napi::Number>().DoubleValue() : 0;
  if (!(stale_after_us >= 0 && stale_after_us <= 3600e6)) throw Napi::RangeError::New(env, "HeartbeatSender: staleAfterUs must be 0..3600000000");
  stale_after_ns_ = static_cast<int64_t>(stale_after_us) * 1000;
  slots_.resize(kQueueCapacity);

  OpenSockets(env, options);
  Napi::Value realtime = options.Get("realtime");
  StartThread(env, on_event.As<Napi::Function>(), realtime.IsUndefined() || realtime.ToBoolean());

  // Worker teardown and process exit run this hook; it must run before the
  // threadsafe function's own teardown, which it does because hooks run in
  // reverse order of registration and tsfn_ was created first.
  napi_add_env_cleanup_hook(env, &HeartbeatSender::CleanupHook, this);
  cleanup_hook_added_ = true;
}

HeartbeatSender::~HeartbeatSender() { StopNow(); }

void HeartbeatSender::OpenSockets(Napi::Env env, Napi::Object options) {
  Napi::Value peers_value = options.Get("peers");
  if (!peers_value.IsArray() || peers_value.As<Napi::Array>().Length() == 0) {
    throw Napi::TypeError::New(env, "HeartbeatSender: peers must be a non-empty array");
  }
  Napi::Array peers = peers_value.As<Napi::Array>();
  std::vector<PeerAddress> addresses(peers.Length());
  for (uint32_t i = 0; i < peers.Length(); i++) {
    Napi::Value peer = peers.Get(i);
    if (!peer.IsObject()) throw Napi::TypeError::New(env, "HeartbeatSender: peers[" + std::to_string(i) + "] must be an object");
    Napi::Object p = peer.As<Napi::Object>();
    std::string address = p.Get("address").ToString().Utf8Value();
    double port = p.Get("port").ToNumber().DoubleValue();
    if (!(port >= 1 && port <= 65535) || port != static_cast<uint16_t>(port)) {
      throw Napi::RangeError::New(env, "HeartbeatSender: peers[" + std::to_string(i) + "].port must be 1..65535");
    }
    if (!ParseAddress(address, static_cast<uint16_t>(port), addresses[i])) {
      throw Napi::TypeError::New(env, "HeartbeatSender: peers[" + std::to_string(i) + "].address is not an IP address: " + address);
    }
  }

  Napi::Value bind_value = options.Get("bindAddress");
  std::string bind_text = bind_value.IsString() ? bind_value.As<Napi::String>().Utf8Value() : "";
  std::vector<PeerAddress> binds(peers.Length());
  for (size_t i = 0; i < addresses.size() && !bind_text.empty(); i++) {
    if (!ParseAddress(bind_text, 0, binds[i]) || binds[i].family != addresses[i].family) {
      throw Napi::RangeError::New(env, "HeartbeatSender: bindAddress " + bind_text +
                                           " is not of the address family of peers[" + std::to_string(i) + "]");
    }
  }
  Napi::Value dscp_value = options.Get("dscp");
  int dscp = dscp_value.IsNumber() ? dscp_value.As<Napi::Number>().Int32Value() : -1;
  if (dscp_value.IsNumber() && (dscp < 0 || dscp > 63)) throw Napi::RangeError::New(env, "HeartbeatSender: dscp must be 0..63");

  NetnsTarget netns = NetnsOption(options);

  int err = 0;
  const char* syscall = "socket";
  {
    // A socket stays in the namespace it was created in (see netns.h); the
    // sender thread then uses it from the caller's namespace.
    NetnsScope scope(netns, err, syscall);
    for (size_t i = 0; i < addresses.size() && err == 0; i++) {
      const PeerAddress& peer = addresses[i];
      UniqueFd fd(::socket(peer.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
      if (!fd.Valid()) {
        err = errno;
        syscall = "socket";
        break;
      }
      if (dscp >= 0) {
        // The DSCP is the upper six bits of the TOS / traffic class octet
        // (RFC 2474 §3; ip(7) IP_TOS, ipv6(7) IPV6_TCLASS).
        int tos = dscp << 2;
        int rc = peer.family == AF_INET ? ::setsockopt(fd.Get(), IPPROTO_IP, IP_TOS, &tos, sizeof tos)
                                        : ::setsockopt(fd.Get(), IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
        if (rc != 0) {
          err = errno;
          syscall = "setsockopt";
          break;
        }
      }
      if (!bind_text.empty() &&
          ::bind(fd.Get(), reinterpret_cast<const sockaddr*>(&binds[i].storage), binds[i].length) != 0) {
        err = errno;
        syscall = "bind";
        break;
      }
      // connect(2) on UDP sets the default destination and, what matters
      // here, makes the kernel report ICMP errors for it on this socket
      // (udp(7), "ERROR HANDLING"): ECONNREFUSED for a closed port.
      if (::connect(fd.Get(), reinterpret_cast<const sockaddr*>(&peer.storage), peer.length) != 0) {
        err = errno;
        syscall = "connect";
        break;
      }
      peers_.push_back(std::move(fd));
    }
  }
  if (err != 0) {
    peers_.clear();
    throw MakeSystemError(env, err, syscall, kOpenOp);
  }
}

void HeartbeatSender::StartThread(Napi::Env env, Napi::Function on_event, bool realtime) {
  stop_event_.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stop_event_.Valid()) throw MakeSystemError(env, errno, "eventfd", kOpenOp);
  timer_.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer_.Valid()) throw MakeSystemError(env, errno, "timerfd_create", kOpenOp);

  // Absolute first expiry plus a period: the kernel advances the expiry by
  // exactly the interval, so ticks stay on the grid however late the thread
  // wakes, and read(2) returns how many expiries passed (timerfd_create(2)).
  deadline_ns_ = MonotonicNow() + interval_ns_;
  itimerspec spec{};
  spec.it_value = ToTimespec(deadline_ns_);
  spec.it_interval = ToTimespec(interval_ns_);
  if (::timerfd_settime(timer_.Get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    throw MakeSystemError(env, errno, "timerfd_settime", kOpenOp);
  }

  poll_fds_.push_back(pollfd{timer_.Get(), POLLIN, 0});
  poll_fds_.push_back(pollfd{stop_event_.Get(), POLLIN, 0});
  // events = 0: poll(2) reports POLLERR whatever is requested, and a pending
  // socket error (sk_err, set by the ICMP error) is exactly what we wait for.
  for (const UniqueFd& fd : peers_) poll_fds_.push_back(pollfd{fd.Get(), 0, 0});

  channel_ = new EventChannel();
  napi_status status = napi_create_threadsafe_function(
      env, on_event, nullptr, Napi::String::New(env, "vipa:heartbeat"), 0 /* unbounded: calls are coalesced */,
      1 /* the sender thread */, channel_, &HeartbeatSender::FinalizeChannel, channel_, &HeartbeatSender::CallJs, &tsfn_);
  if (status != napi_ok) {
    delete channel_;
    channel_ = nullptr;
    throw Napi::Error::New(env, "HeartbeatSender: cannot create the threadsafe function");
  }

  // The thread starts with every signal blocked (it inherits the creator's
  // mask, pthread_sigmask(3)): signals are Node's business on its own
  // threads, and poll(2) is never interrupted.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    thread_ = std::thread(&HeartbeatSender::Run, this, realtime);
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
    tsfn_ = nullptr;
    channel_ = nullptr;
    throw MakeSystemError(env, e.code().value(), "pthread_create", kOpenOp);
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

// ---- sender thread ---------------------------------------------------------

void HeartbeatSender::Run(bool realtime) {
  pthread_setname_np(pthread_self(), "vipa-heartbeat");
  if (realtime) {
    // Lowest real-time priority: above every normal thread, so a busy JS
    // thread or a CPU-bound neighbour cannot delay a heartbeat, yet below
    // anything an operator made real-time on purpose. The thread runs a few
    // microseconds per tick and otherwise sleeps in poll(2); the kernel's RT
    // throttling (sched(7), sched_rt_runtime_us) bounds it regardless.
    // Needs CAP_SYS_NICE or RLIMIT_RTPRIO >= 1 (sched(7)); when refused
    // (EPERM, e.g. in an unprivileged user namespace) the thread stays
    // SCHED_OTHER, which on an idle core still wakes within microseconds.
    sched_param param{};
    param.sched_priority = 1;
    realtime_ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) == 0;
  }
  for (;;) {
    int ready = ::poll(poll_fds_.data(), poll_fds_.size(), -1);
    if (ready < 0) {
      if (errno == EINTR || errno == ENOMEM) continue;
      break;  // EFAULT/EINVAL: cannot happen with our own array
    }
    if (poll_fds_[kStopSlot].revents != 0) break;
    for (size_t i = kFirstPeerSlot; i < poll_fds_.size(); i++) {
      if (poll_fds_[i].revents & POLLERR) DrainPeerErrors(i - kFirstPeerSlot);
    }
    if (poll_fds_[kTimerSlot].revents & POLLIN) {
      uint64_t expirations = 0;
      if (::read(timer_.Get(), &expirations, sizeof expirations) == sizeof expirations && expirations > 0) {
        Tick(expirations, MonotonicNow());
      }
    }
  }
}

void HeartbeatSender::Tick(uint64_t expirations, int64_t now_ns) {
  ticks_.fetch_add(1, std::memory_order_relaxed);
  int64_t late = now_ns - deadline_ns_;
  if (late > interval_ns_) late_ticks_.fetch_add(1, std::memory_order_relaxed);
  if (late > 0 && static_cast<uint64_t>(late) > max_late_ns_.load(std::memory_order_relaxed)) {
    max_late_ns_.store(static_cast<uint64_t>(late), std::memory_order_relaxed);
  }
  // Missed expiries are skipped, not sent in a burst: a late heartbeat says
  // as much as several, and a burst would drain the watchdog queue.
  deadline_ns_ += static_cast<int64_t>(expirations) * interval_ns_;

  if (stale_after_ns_ > 0 && late > stale_after_ns_) {
    // The process was stopped (SIGSTOP, VM pause) longer than peers wait: they
    // may have taken over. The queued heartbeats still claim what JS held
    // before; sending them would fight the new holder. Drop them and let JS
    // re-verify and re-sign.
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_head_ = 0;
      queue_count_ = 0;
    }
    Report(EventKind::kStale, -1, 0);
    return;
  }

  std::lock_guard<std::mutex> send_lock(send_mu_);  // until the popped heartbeat is sent
  bool popped = false;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (queue_count_ > 0) {
      sending_.swap(slots_[queue_head_]);  // no copy, no allocation
      queue_head_ = (queue_head_ + 1) % kQueueCapacity;
      queue_count_--;
      popped = true;
    }
  }
  if (!popped) {
    // "Starved" only once heartbeats have started: an empty queue before the
    // first push is just a sender that was not started yet.
    if (ever_sent_ && !starved_) {
      starved_ = true;
      Report(EventKind::kStarved, -1, 0);
    }
    return;
  }
  if (starved_) {
    starved_ = false;
    Report(EventKind::kResumed, -1, 0);
  }
  ever_sent_ = true;
  SendToPeers(sending_);
}

void HeartbeatSender::SendToPeers(const std::vector<uint8_t>& datagram) {
  for (size_t i = 0; i < peers_.size(); i++) {
    int earlier = 0;
    int err = SendDatagram(peers_[i].Get(), datagram.data(), datagram.size(), earlier);
    if (earlier != 0) {
      peer_errors_.fetch_add(1, std::memory_order_relaxed);
      Report(EventKind::kPeerError, static_cast<int32_t>(i), earlier);
    }
    if (err == 0) {
      sent_.fetch_add(1, std::memory_order_relaxed);
    } else {
      send_errors_.fetch_add(1, std::memory_order_relaxed);
      Report(EventKind::kPeerError, static_cast<int32_t>(i), err);
    }
  }
}

// Reads and clears the socket's pending error (socket(7) SO_ERROR): after an
// ICMP port unreachable on a connected UDP socket that is ECONNREFUSED.
void HeartbeatSender::DrainPeerErrors(size_t peer) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(peers_[peer].Get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) return;
  peer_errors_.fetch_add(1, std::memory_order_relaxed);
  Report(EventKind::kPeerError, static_cast<int32_t>(peer), err);
}

void HeartbeatSender::Report(EventKind kind, int32_t peer, int32_t error) {
  EventChannel& ch = *channel_;
  bool call = false;
  {
    std::lock_guard<std::mutex> lock(ch.mu);
    if (ch.closed) return;
    if (ch.count == kEventRing) {
      event_drops_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    ch.ring[(ch.head + ch.count) % kEventRing] = Event{kind, peer, error};
    ch.count++;
    call = !ch.call_pending;
    ch.call_pending = true;
  }
  // One queued call drains the whole ring, so the call is made only when
  // none is pending. Nonblocking: the heartbeat never waits for JavaScript.
  if (call && napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) != napi_ok) {
    std::lock_guard<std::mutex> lock(ch.mu);
    ch.call_pending = false;
  }
}

// ---- JS thread -------------------------------------------------------------

void HeartbeatSender::CallJs(napi_env env, napi_value callback, void* context, void* /*data*/) {
  if (env == nullptr) return;  // environment teardown: nothing to deliver to
  auto* ch = static_cast<EventChannel*>(context);
  std::array<Event, kEventRing> batch;
  size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(ch->mu);
    ch->call_pending = false;
    if (ch->closed) return;
    for (; n < ch->count; n++) batch[n] = ch->ring[(ch->head + n) % kEventRing];
    ch->head = 0;
    ch->count = 0;
  }
  Napi::Env e(env);
  Napi::Function fn(env, callback);
  for (size_t i = 0; i < n; i++) {
    {
      // The callback may have closed the sender: stop delivering then.
      std::lock_guard<std::mutex> lock(ch->mu);
      if (ch->closed) return;
    }
    try {
      fn.Call({Napi::String::New(e, EventName(batch[i].kind)), Napi::Number::New(e, batch[i].peer),
               Napi::Number::New(e, batch[i].error)});
    } catch (const Napi::Error& error) {
      // Like any event-loop callback: an uncaught exception of the process.
      napi_fatal_exception(env, error.Value());
    }
  }
}

void HeartbeatSender::FinalizeChannel(napi_env /*env*/, void* data, void* /*hint*/) {
  delete static_cast<EventChannel*>(data);
}

void HeartbeatSender::CleanupHook(void* arg) { static_cast<HeartbeatSender*>(arg)->StopNow(); }

void HeartbeatSender::StopNow() {
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    uint64_t one = 1;
    // An eventfd write of 1 cannot block or fail short of overflow (eventfd(2)).
    ssize_t rc = ::write(stop_event_.Get(), &one, sizeof one);
    (void)rc;
    thread_.join();
  }
  if (tsfn_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(channel_->mu);
      channel_->closed = true;
      channel_->count = 0;
    }
    // The channel is freed by the finalizer once Node has closed the
    // function; a call still queued sees `closed` and delivers nothing.
    napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
    tsfn_ = nullptr;
    channel_ = nullptr;
  }
  peers_.clear();
  poll_fds_.clear();
  timer_.Reset();
  stop_event_.Reset();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    std::vector<std::vector<uint8_t>>().swap(slots_);
    queue_count_ = 0;
  }
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, &HeartbeatSender::CleanupHook, this);
    cleanup_hook_added_ = false;
  }
}

void HeartbeatSender::RequireOpen(Napi::Env env, const char* syscall) {
  if (stopped_) throw MakeSystemError(env, EBADF, syscall, kSendOp);
}

// push(buffers: Buffer[]) -> datagrams queued afterwards. All or nothing:
// RangeError when they do not all fit.
// The datagrams of a JS array of Buffers (copied later, under the lock);
// TypeError/RangeError naming the bad element.
static std::vector<std::pair<const uint8_t*, size_t>> DatagramList(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, std::string(what) + ": buffers must be an array of Buffers");
  Napi::Array list = value.As<Napi::Array>();
  std::vector<std::pair<const uint8_t*, size_t>> datagrams;
  datagrams.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, std::string(what) + ": buffers[" + std::to_string(i) + "] is not a Buffer");
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    if (b.Length() > HeartbeatSender::kMaxDatagram) {
      throw Napi::RangeError::New(env, std::string(what) + ": buffers[" + std::to_string(i) + "] is " + std::to_string(b.Length()) +
                                           " bytes, more than a UDP datagram holds (" + std::to_string(HeartbeatSender::kMaxDatagram) + ")");
    }
    datagrams.emplace_back(b.Data(), b.Length());
  }
  return datagrams;
}

// Appends to the queue; RangeError past its capacity. Caller holds queue_mu_.
void HeartbeatSender::Enqueue(Napi::Env env, const std::vector<std::pair<const uint8_t*, size_t>>& datagrams, const char* what) {
  if (queue_count_ + datagrams.size() > kQueueCapacity) {
    throw Napi::RangeError::New(env, std::string(what) + ": the queue holds at most " + std::to_string(kQueueCapacity) + " datagrams; " +
                                         std::to_string(queue_count_) + " queued, " + std::to_string(datagrams.size()) + " pushed");
  }
  for (const auto& d : datagrams) {
    slots_[(queue_head_ + queue_count_) % kQueueCapacity].assign(d.first, d.first + d.second);
    queue_count_++;
  }
}

Napi::Value HeartbeatSender::Push(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "send");
  auto datagrams = DatagramList(env, info.Length() > 0 ? info[0] : env.Undefined(), "push(buffers)");
  std::lock_guard<std::mutex> lock(queue_mu_);
  Enqueue(env, datagrams, "push(buffers)");
  return Napi::Number::New(env, static_cast<double>(queue_count_));
}

// clear() -> datagrams removed.
Napi::Value HeartbeatSender::Clear(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(queue_mu_);
  size_t removed = queue_count_;
  queue_count_ = 0;
  return Napi::Number::New(info.Env(), static_cast<double>(removed));
}

// sendNow(buffer[, replacement]) -> errno per peer (0 = sent), sent from the
// calling thread at once. With `replacement` (an array of Buffers) the queue
// is dropped first and refilled with it after the send, atomically for the
// sender thread (send_mu_): what it sends next is the first replacement, and
// it never finds the queue empty in between. Per-peer failures are returned,
// not thrown: one unreachable peer must not keep a leave message from the
// others. Asynchronous errors of earlier datagrams go to onEvent, as they do
// from the thread.
Napi::Value HeartbeatSender::SendNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "send");
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "sendNow(buffer): buffer must be a Buffer");
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() > kMaxDatagram) {
    throw Napi::RangeError::New(env, "sendNow(buffer): " + std::to_string(buf.Length()) + " bytes, more than a UDP datagram holds (" +
                                         std::to_string(kMaxDatagram) + ")");
  }
  bool replace = info.Length() > 1 && !info[1].IsUndefined();
  std::vector<std::pair<const uint8_t*, size_t>> replacement;
  if (replace) {
    replacement = DatagramList(env, info[1], "sendNow(buffer, replacement)");
    if (replacement.size() > kQueueCapacity) {
      throw Napi::RangeError::New(env, "sendNow(buffer, replacement): the queue holds at most " + std::to_string(kQueueCapacity) + " datagrams");
    }
  }
  std::lock_guard<std::mutex> send_lock(send_mu_);
  if (replace) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_count_ = 0;
  }
  Napi::Array result = Napi::Array::New(env, peers_.size());
  for (size_t i = 0; i < peers_.size(); i++) {
    int earlier = 0;
    int err = SendDatagram(peers_[i].Get(), buf.Data(), buf.Length(), earlier);
    if (earlier != 0) {
      // An earlier datagram's error goes where the thread reports those.
      peer_errors_.fetch_add(1, std::memory_order_relaxed);
      Report(EventKind::kPeerError, static_cast<int32_t>(i), earlier);
    }
    (err == 0 ? sent_ : send_errors_).fetch_add(1, std::memory_order_relaxed);
    result.Set(static_cast<uint32_t>(i), Napi::Number::New(env, err));
  }
  if (replace) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    Enqueue(env, replacement, "sendNow(buffer, replacement)");  // fits: the queue was emptied above
  }
  return result;
}

Napi::Value HeartbeatSender::Stop(const Napi::CallbackInfo& info) {
  StopNow();
  return info.Env().Undefined();
}

// ref()/unref(): whether pending events keep the Node event loop alive
// (napi_ref_threadsafe_function). No effect once stopped.
Napi::Value HeartbeatSender::RefLoop(const Napi::CallbackInfo& info) {
  if (tsfn_ != nullptr) napi_ref_threadsafe_function(info.Env(), tsfn_);
  return info.Env().Undefined();
}

Napi::Value HeartbeatSender::UnrefLoop(const Napi::CallbackInfo& info) {
  if (tsfn_ != nullptr) napi_unref_threadsafe_function(info.Env(), tsfn_);
  return info.Env().Undefined();
}

Napi::Value HeartbeatSender::GetQueued(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(queue_mu_);
  return Napi::Number::New(info.Env(), static_cast<double>(queue_count_));
}

Napi::Value HeartbeatSender::GetCapacity(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(kQueueCapacity));
}

Napi::Value HeartbeatSender::GetStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto num = [&](const std::atomic<uint64_t>& v) { return Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))); };
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("sent", num(sent_));
  stats.Set("sendErrors", num(send_errors_));
  stats.Set("peerErrors", num(peer_errors_));
  stats.Set("ticks", num(ticks_));
  stats.Set("lateTicks", num(late_ticks_));
  stats.Set("maxLateUs", Napi::Number::New(env, static_cast<double>(max_late_ns_.load(std::memory_order_relaxed)) / 1000));
  stats.Set("eventDrops", Napi::Number::New(env, static_cast<double>(event_drops_.load(std::memory_order_relaxed))));
  stats.Set("realtime", Napi::Boolean::New(env, realtime_.load(std::memory_order_relaxed)));
  return stats;
}

}  // namespace vipa
