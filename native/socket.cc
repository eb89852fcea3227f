#include "socket.h"

#include <algorithm>
#include <cstring>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "addon.h"
#include "poll.h"
#include "netns.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace vipa {
namespace {

std::string ReadString(Napi::Object options, const char* key, const char* fallback) {
  Napi::Value v = options.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(fallback);
}

// Best-effort socket option: some kernels lack NETLINK_EXT_ACK and friends.
void TrySetInt(int fd, int level, int name, int value) {
  ::setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

Napi::Function Socket::Init(Napi::Env env) {
  return DefineClass(env, "Socket",
                     {
                         InstanceMethod<&Socket::Send>("send"),
                         InstanceMethod<&Socket::Recv>("recv"),
                         InstanceMethod<&Socket::StartReading>("startReading"),
                         InstanceMethod<&Socket::StopReading>("stopReading"),
                         InstanceMethod<&Socket::Close>("close"),
                         InstanceMethod<&Socket::SetBufferSizes>("setBufferSizes"),
                         InstanceMethod<&Socket::SetFilter>("setFilter"),
                         InstanceMethod<&Socket::RecvMany>("recvMany"),
                         InstanceAccessor<&Socket::GetFd>("fd"),
                         InstanceAccessor<&Socket::GetPortId>("portId"),
                     });
}

// new Socket('netlink', { protocol, groups: number[], netns, op })
// new Socket('packet', { ifindex, protocol, filter: Buffer, ignoreOutgoing, netns, op })
Socket::Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Socket>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "Socket(kind, options): kind must be 'netlink' or 'packet'");
  }
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  Napi::Object options = info[1].As<Napi::Object>();
  op_ = ReadString(options, "op", kind == "netlink" ? "netlink open" : "packet open");
  if (kind == "netlink") {
    OpenNetlink(env, options);
  } else if (kind == "packet") {
    OpenPacket(env, options);
  } else {
    throw Napi::TypeError::New(env, "Socket kind must be 'netlink' or 'packet', got '" + kind + "'");
  }
  GetAddonData(env).open_sockets.insert(this);
}

Socket::~Socket() {
  CloseNow();
  delete async_context_;
}

void Socket::OpenNetlink(Napi::Env env, Napi::Object options) {
  is_netlink_ = true;
  int protocol = options.Get("protocol").ToNumber().Int32Value();
  int err = 0;
  const char* syscall = "socket";
  {
    NetnsScope scope(NetnsOption(options), err, syscall);
    if (err == 0) {
      fd_.Reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
      if (!fd_.Valid()) {
        err = errno;
        syscall = "socket";
      }
    }
  }
  if (err != 0) throw MakeSystemError(env, err, syscall, op_.c_str());

  // Extended acks carry the kernel's reason text; capped acks do not echo the
  // whole request back (netlink(7), "NETLINK_EXT_ACK", "NETLINK_CAP_ACK").
  TrySetInt(fd_.Get(), SOL_NETLINK, NETLINK_EXT_ACK, 1);
  TrySetInt(fd_.Get(), SOL_NETLINK, NETLINK_CAP_ACK, 1);

  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd_.Get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    throw MakeSystemError(env, errno, "bind", op_.c_str());
  }
  Napi::Value groups = options.Get("groups");
  if (groups.IsArray()) {
    Napi::Array list = groups.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      int group = list.Get(i).ToNumber().Int32Value();
      if (::setsockopt(fd_.Get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
        throw MakeSystemError(env, errno, "setsockopt", op_.c_str());
      }
    }
  }
  socklen_t len = sizeof local;
  if (::getsockname(fd_.Get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    throw MakeSystemError(env, errno, "getsockname", op_.c_str());
  }
  port_id_ = local.nl_pid;
}

void Socket::OpenPacket(Napi::Env env, Napi::Object options) {
  int ifindex = options.Get("ifindex").ToNumber().Int32Value();
  uint16_t protocol = static_cast<uint16_t>(options.Get("protocol").ToNumber().Uint32Value());
  int err = 0;
  const char* syscall = "socket";
  {
    NetnsScope scope(NetnsOption(options), err, syscall);
    // Protocol 0 receives nothing until bind(2) names one, so no frame slips
    // in before the filter is attached (packet(7)).
    if (err == 0) {
      fd_.Reset(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd_.Valid()) {
        err = errno;
        syscall = "socket";
      }
    }
  }
  if (err != 0) throw MakeSystemError(env, err, syscall, op_.c_str());

  Napi::Value filter = options.Get("filter");
  if (filter.IsBuffer()) AttachFilter(env, filter);
  if (options.Get("ignoreOutgoing").ToBoolean()) {
    TrySetInt(fd_.Get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
  }
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(protocol);
  addr.sll_ifindex = ifindex;
  if (::bind(fd_.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw MakeSystemError(env, errno, "bind", op_.c_str());
  }
}

// SO_ATTACH_FILTER with `struct sock_filter[]` bytes. Replacing a filter
// frees the old one through RCU (call_rcu): no grace period is waited for,
// unlike closing a packet socket (packet_release calls synchronize_net).
void Socket::AttachFilter(Napi::Env env, Napi::Value filter) {
  Napi::Buffer<uint8_t> code = filter.As<Napi::Buffer<uint8_t>>();
  if (code.Length() % sizeof(sock_filter) != 0 || code.Length() == 0 || code.Length() / sizeof(sock_filter) > BPF_MAXINSNS) {
    throw Napi::RangeError::New(env, "packet filter length must be a positive multiple of 8 bytes, at most 4096 instructions");
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(code.Length() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(code.Data());
  if (::setsockopt(fd_.Get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
    throw MakeSystemError(env, errno, "setsockopt", op_.c_str());
  }
}

// setFilter(buffer): replaces the packet socket's classic BPF filter.
Napi::Value Socket::SetFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "setsockopt");
  if (is_netlink_) throw Napi::TypeError::New(env, "setFilter: packet sockets only");
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "setFilter(buffer): needs a Buffer of struct sock_filter");
  AttachFilter(env, info[0]);
  return env.Undefined();
}

void Socket::RequireOpen(Napi::Env env, const char* op) {
  if (!fd_.Valid()) throw MakeSystemError(env, EBADF, op, op_.c_str());
}

// send(buffer[, offset, length]) -> bytes sent
Napi::Value Socket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "sendto");
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "send(buffer): buffer must be a Buffer");
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  size_t offset = info.Length() > 1 ? info[1].ToNumber().Uint32Value() : 0;
  size_t length = info.Length() > 2 ? info[2].ToNumber().Uint32Value() : buf.Length() - offset;
  if (offset + length > buf.Length()) throw Napi::RangeError::New(env, "send(buffer, offset, length): range outside buffer");
  ssize_t n;
  if (is_netlink_) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    do {
      n = ::sendto(fd_.Get(), buf.Data() + offset, length, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    } while (n < 0 && errno == EINTR);
  } else {
    do {
      n = ::send(fd_.Get(), buf.Data() + offset, length, 0);
    } while (n < 0 && errno == EINTR);
  }
  if (n < 0) throw MakeSystemError(env, errno, "sendto", op_.c_str());
  return Napi::Number::New(env, static_cast<double>(n));
}

// recv(buffer, timeoutMs) -> datagram length, or -1 when nothing arrived in time.
// A datagram longer than the buffer throws EMSGSIZE rather than being cut.
Napi::Value Socket::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "recvfrom");
  if (info.Length() < 2 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "recv(buffer, timeoutMs): buffer must be a Buffer");
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  int timeout = info[1].ToNumber().Int32Value();
  for (;;) {
    // MSG_TRUNC: return the real datagram length so truncation is detected (recv(2)).
    ssize_t n = ::recv(fd_.Get(), buf.Data(), buf.Length(), MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0) {
      if (static_cast<size_t>(n) > buf.Length()) throw MakeSystemError(env, EMSGSIZE, "recvfrom", op_.c_str());
      return Napi::Number::New(env, static_cast<double>(n));
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw MakeSystemError(env, errno, "recvfrom", op_.c_str());
    pollfd pfd{fd_.Get(), POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&pfd, 1, timeout);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) throw MakeSystemError(env, errno, "poll", op_.c_str());
    if (ready == 0) return Napi::Number::New(env, -1);
  }
}

// recvMany(buffer, timeoutMs, reserve) -> bytes: like recv(), then reads
// every further datagram already queued (MSG_DONTWAIT) into the same buffer,
// back to back, each padded with zeroes to a multiple of 4 bytes (netlink
// messages are 4-aligned, so the result parses as one message stream), as
// long as at least `reserve` bytes are free (the largest datagram expected):
// a burst of acks costs one call instead of one per ack.
Napi::Value Socket::RecvMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value first = Recv(info);
  double n = first.As<Napi::Number>().DoubleValue();
  if (n < 0) return first;
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  size_t reserve = info.Length() > 2 ? static_cast<size_t>(std::max(0.0, info[2].ToNumber().DoubleValue())) : buf.Length();
  if (reserve == 0) reserve = 1;
  size_t off = static_cast<size_t>(n);
  for (;;) {
    size_t aligned = (off + 3) & ~static_cast<size_t>(3);
    if (aligned > buf.Length() || buf.Length() - aligned < reserve) break;
    ssize_t r = ::recv(fd_.Get(), buf.Data() + aligned, buf.Length() - aligned, MSG_DONTWAIT | MSG_TRUNC);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw MakeSystemError(env, errno, "recvfrom", op_.c_str());
    }
    if (static_cast<size_t>(r) > buf.Length() - aligned) throw MakeSystemError(env, EMSGSIZE, "recvfrom", op_.c_str());
    std::memset(buf.Data() + off, 0, aligned - off);
    off = aligned + static_cast<size_t>(r);
  }
  return Napi::Number::New(env, static_cast<double>(off));
}

// startReading(buffer, callback): callback(length) per datagram read into
// buffer (valid only during the call), callback(-errno) for receive errors.
Napi::Value Socket::StartReading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "epoll_ctl");
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "startReading(buffer, callback): needs a Buffer and a function");
  }
  if (poll_ != nullptr) throw Napi::Error::New(env, "startReading: already reading");
  read_buffer_ = Napi::Persistent(info[0].As<Napi::Buffer<uint8_t>>());
  read_callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  if (async_context_ == nullptr) async_context_ = new Napi::AsyncContext(env, "vipa:socket");

  poll_ = StartPoll(env, fd_.Get(), this, &Socket::OnReadable, op_.c_str());
  Ref();  // stay alive while the loop may call back into this object
  return env.Undefined();
}

void Socket::OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  if (Socket* owner = PollOwner<Socket>(handle)) owner->DrainReadable(status);
}

void Socket::DrainReadable(int status) {
  Napi::HandleScope scope(env_);
  Napi::Buffer<uint8_t> buf = read_buffer_.Value();
  // libuv turns POLLERR into status UV_EBADF and stops the handle. Our fd is
  // still open, so POLLERR means a pending socket error (sk_err: ENOBUFS on a
  // netlink socket whose receive buffer overflowed, netlink(7)). recv(2)
  // returns that error once; then the handle must be started again or the
  // socket would never be read anymore.
  bool rearm = status < 0;
  for (int i = 0; i < kMaxReadsPerWakeup && poll_ != nullptr; i++) {
    ssize_t n = ::recv(fd_.Get(), buf.Data(), buf.Length(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // A datagram longer than the buffer was cut (MSG_TRUNC gave its real
    // length): report EMSGSIZE rather than a truncated message.
    double result = n > static_cast<ssize_t>(buf.Length()) ? -EMSGSIZE : n < 0 ? -errno : static_cast<double>(n);
    try {
      read_callback_.MakeCallback(Value(), {Napi::Number::New(env_, result)}, *async_context_);
    } catch (const Napi::Error& e) {
      // An exception in a JS callback is an uncaught exception of the process,
      // as it would be for any other event-loop callback.
      napi_fatal_exception(env_, e.Value());
      break;
    }
  }
  if (rearm && poll_ != nullptr) uv_poll_start(&poll_->handle, UV_READABLE, &Socket::OnReadable);
}

void Socket::StopPolling() {
  if (poll_ == nullptr) return;
  StopPoll(poll_);
  poll_ = nullptr;
  read_callback_.Reset();
  read_buffer_.Reset();
  Unref();
}

Napi::Value Socket::StopReading(const Napi::CallbackInfo& info) {
  StopPolling();
  return info.Env().Undefined();
}

void Socket::CloseNow() {
  // Close the poll handle first, then the fd (libuv: an fd must not be closed
  // while a poll handle watches it).
  StopPolling();
  if (fd_.Valid()) {
    fd_.Reset();
    GetAddonData(env_).open_sockets.erase(this);
  }
}

Napi::Value Socket::Close(const Napi::CallbackInfo& info) {
  CloseNow();
  return info.Env().Undefined();
}

// setBufferSizes(rcvbuf, sndbuf): bytes, 0 = leave as is. The *FORCE variants
// pass net.core.rmem_max with CAP_NET_ADMIN; without it the plain ones apply.
Napi::Value Socket::SetBufferSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "setsockopt");
  int rcv = info.Length() > 0 ? info[0].ToNumber().Int32Value() : 0;
  int snd = info.Length() > 1 ? info[1].ToNumber().Int32Value() : 0;
  if (rcv > 0 && ::setsockopt(fd_.Get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0 &&
      ::setsockopt(fd_.Get(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) != 0) {
    throw MakeSystemError(env, errno, "setsockopt", op_.c_str());
  }
  if (snd > 0 && ::setsockopt(fd_.Get(), SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) != 0 &&
      ::setsockopt(fd_.Get(), SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) != 0) {
    throw MakeSystemError(env, errno, "setsockopt", op_.c_str());
  }
  int actual = 0;
  socklen_t len = sizeof actual;
  ::getsockopt(fd_.Get(), SOL_SOCKET, SO_RCVBUF, &actual, &len);
  return Napi::Number::New(env, actual);
}

Napi::Value Socket::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_.Get()); }

Napi::Value Socket::GetPortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_id_); }

}  // namespace vipa
