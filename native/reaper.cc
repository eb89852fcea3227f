#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstring>

#include "addon.h"
#include "netns.h"

namespace vipa {
namespace {

// payload: u32 length L, L bytes of netlink requests to send on death, u16
// count, count × (u8 family 4|6, 16 address bytes): the addresses whose
// announcement by another host ends the lead early (network order).
constexpr uint8_t kFrameArm = 1;
constexpr uint8_t kFrameQuit = 2;    // exit without sending anything
constexpr uint8_t kFrameNotify = 3;  // payload: peers and a datagram to send them after the deletes
constexpr size_t kNotifyMax = 64 * 1024;

// The notify payload: u32 lead in microseconds, u16 count, count × (u8
// family 4|6, 16 address bytes, u16 port), u16 length, datagram; network
// order. Lead 0: delete, then notify. Lead > 0: notify, wait that long (the
// peers take over meanwhile: make-before-break), then delete.
uint32_t NotifyLeadUs(const uint8_t* p, size_t len) {
  if (len < 4) return 0;
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

// Sends the datagram of a notify payload to its peers. UDP sockets are
// created here: socket(2) and sendto(2) are async-signal-safe.
void SendNotify(const uint8_t* payload, size_t payload_len) {
  if (payload_len < 6) return;
  const uint8_t* p = payload + 4;
  size_t len = payload_len - 4;
  size_t count = (p[0] << 8) | p[1];
  size_t o = 2;
  size_t peers_at = o;
  o += count * 19;
  if (o + 2 > len) return;
  size_t dlen = (p[o] << 8) | p[o + 1];
  const uint8_t* datagram = p + o + 2;
  if (o + 2 + dlen > len) return;
  int fd4 = -1, fd6 = -1;
  for (size_t i = 0; i < count; i++) {
    const uint8_t* e = p + peers_at + i * 19;
    uint16_t port = static_cast<uint16_t>((e[17] << 8) | e[18]);
    if (e[0] == 4) {
      if (fd4 < 0) fd4 = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      std::memcpy(&a.sin_addr, e + 1, 4);
      ::sendto(fd4, datagram, dlen, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else if (e[0] == 6) {
      if (fd6 < 0) fd6 = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      std::memcpy(&a.sin6_addr, e + 1, 16);
      ::sendto(fd6, datagram, dlen, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
  }
}
constexpr size_t kDefaultMaxBytes = 1 << 20;

// The signal the child asks for when its parent thread (the sentinel, see
// Reaper::Reaper) exits: PR_SET_PDEATHSIG, prctl(2).
constexpr int kParentDeathSignal = SIGUSR1;

// The child's view of its parent, set in ChildMain before anything can signal.
pid_t g_parent = 0;
volatile sig_atomic_t g_parent_died = 0;
// The child's signal mask while it waits in ppoll: kParentDeathSignal unblocked.
sigset_t g_wait_mask;

// The parent-death signal comes from the kernel on behalf of the exiting
// parent thread (si_code SI_USER, si_pid the parent's pid); a kill(2) of the
// same signal from anyone else is ignored.
void OnParentDeath(int, siginfo_t* info, void*) {
  if (info != nullptr && info->si_code == SI_USER && info->si_pid == g_parent) g_parent_died = 1;
}

// Waits until fd is readable or the parent died. The death signal is only
// unblocked inside ppoll, so it cannot slip in between a check and the wait.
void WaitReadable(int fd) {
  while (!g_parent_died) {
    pollfd p{fd, POLLIN, 0};
    // The kernel's sigset is 8 bytes (_NSIG / 8); glibc's sigset_t starts with it.
    long r = ::syscall(SYS_ppoll, &p, 1, nullptr, &g_wait_mask, 8);
    if (r > 0 || (r < 0 && errno != EINTR)) return;
  }
}

// Reads exactly n bytes from the (non-blocking) pipe. False on EOF, on an
// error, or when the parent died and the bytes are not all there: a parent
// that died mid-frame leaves the frame incomplete for good.
bool ReadFully(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN || g_parent_died) return false;
    WaitReadable(fd);
  }
  return true;
}

// Monotonic time in microseconds (clock_gettime is async-signal-safe).
uint64_t NowUs() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000u + static_cast<uint64_t>(t.tv_nsec) / 1000u;
}

// The delete requests of an armed frame: one netlink message per armed
// address, in the order of the watched addresses.
struct Requests {
  uint8_t* data;
  size_t len;
  int netlink_fd;
};

// Sends `len` bytes of delete requests to the kernel (rtnetlink processes
// every message of one datagram in turn, netlink(7)).
void SendRequests(int netlink_fd, const uint8_t* data, size_t len) {
  if (len == 0) return;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (::sendto(netlink_fd, data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0 && errno == EINTR) {
  }
}

// The length of the netlink message at offset `o` of the requests, padded to
// its 4-byte alignment (NLMSG_ALIGN), or 0 past the last whole message.
size_t MessageStep(const Requests& r, size_t o) {
  if (o + 4 > r.len) return 0;
  uint32_t n;
  std::memcpy(&n, r.data + o, sizeof n);  // nlmsg_len, host order
  if (n < 16 || o + n > r.len) return 0;
  return std::min<size_t>((n + 3u) & ~3u, r.len - o);
}

// Bytes per watched address: family (0 once deleted), then 16 address bytes.
constexpr size_t kWatchEntry = 17;

// The watched address `addr` (family 4 or 6) was announced by another host:
// delete it now, with its own request (the i-th message goes with the i-th
// entry), and mark its entry done (family byte 0). Returns how many entries
// are still waiting.
size_t DeleteAnnounced(const Requests& r, uint8_t* watch, size_t count, uint8_t family, const uint8_t* addr) {
  size_t left = 0;
  size_t o = 0;
  for (size_t i = 0; i < count; i++) {
    size_t step = MessageStep(r, o);
    uint8_t* e = watch + i * kWatchEntry;
    if (e[0] == family && std::memcmp(e + 1, addr, family == 4 ? 4 : 16) == 0) {
      SendRequests(r.netlink_fd, r.data + o, step);
      e[0] = 0;
    }
    if (e[0] != 0) left++;
    o += step;
  }
  return left;
}

// Deletes what is still armed: every request whose address was not deleted
// on its announcement, in one datagram (the done ones are squeezed out).
void DeleteRest(const Requests& r, const uint8_t* watch, size_t count) {
  size_t kept = 0;
  size_t o = 0;
  for (size_t i = 0, step; (step = MessageStep(r, o)) > 0; i++, o += step) {
    if (watch != nullptr && i < count && watch[i * kWatchEntry] == 0) continue;
    if (kept != o) std::memmove(r.data + kept, r.data + o, step);
    kept += step;
  }
  SendRequests(r.netlink_fd, r.data, kept);
}

// The address a frame from another host announces, if it is an ARP packet
// (gratuitous or not: its sender address) or an ICMPv6 neighbour
// advertisement (its target). Returns the family (4 or 6), or 0.
uint8_t AnnouncedAddress(const uint8_t* p, size_t len, uint16_t protocol, const uint8_t** addr) {
  if (protocol == ETH_P_ARP && len >= 8) {
    // htype, ptype 0x0800, hlen, plen 4, op, sha[hlen], spa[4]
    size_t hlen = p[4];
    if (p[2] != 0x08 || p[3] != 0x00 || p[5] != 4 || len < 8 + hlen + 4) return 0;
    *addr = p + 8 + hlen;
    return 4;
  }
  // IPv6 header (40 bytes, next header 58 = ICMPv6), then type 136 and the
  // target 8 bytes into the message (RFC 4861 §4.4).
  if (protocol == ETH_P_IPV6 && len >= 64 && (p[0] >> 4) == 6 && p[6] == 58 && p[40] == 136) {
    *addr = p + 48;
    return 6;
  }
  return 0;
}

// Deletes each watched address as soon as another host announces it (the
// next holder took over: make-before-break done), until all are gone or
// `max_us` passed. `packet_fd` was bound to every protocol before the peers
// were told, so no announcement can come before the watch; -1 (no watch):
// just waits `max_us` (poll(2) ignores a negative fd). Frames this host sent
// are skipped.
void DeleteOnAnnouncements(int packet_fd, const Requests& r, uint8_t* watch, size_t count, uint32_t max_us) {
  uint64_t end = NowUs() + max_us;
  size_t left = count;
  uint8_t frame[2048];
  while (packet_fd < 0 || left > 0) {
    uint64_t now = NowUs();
    if (now >= end) return;
    timespec wait{};
    wait.tv_sec = static_cast<time_t>((end - now) / 1000000u);
    wait.tv_nsec = static_cast<long>((end - now) % 1000000u) * 1000;
    pollfd p{packet_fd, POLLIN, 0};
    long rc = ::syscall(SYS_ppoll, &p, 1, &wait, nullptr, 8);
    if (rc < 0 && errno != EINTR) return;
    while (packet_fd >= 0) {
      sockaddr_ll from{};
      socklen_t from_len = sizeof from;
      ssize_t n = ::recvfrom(packet_fd, frame, sizeof frame, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      const uint8_t* addr = nullptr;
      uint8_t family = AnnouncedAddress(frame, static_cast<size_t>(n), ntohs(from.sll_protocol), &addr);
      if (family != 0) left = DeleteAnnounced(r, watch, count, family, addr);
      if (left == 0) return;
    }
  }
}

// The child's whole life. Async-signal-safe calls only (see reaper.h).
[[noreturn]] void ChildMain(int pipe_fd, int netlink_fd, int packet_fd, uint8_t* armed, uint8_t* incoming, size_t max_bytes, uint8_t* notify) {
  // Keep stdio, the pipe, the netlink socket and the packet socket (-1 when
  // it could not be opened); close everything else so the child holds none
  // of the parent's sockets (a heartbeat port it kept open would hide the
  // parent's death from peers).
  int keep[3] = {pipe_fd, netlink_fd, packet_fd};
  std::sort(keep, keep + 3);
  unsigned next = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(next)) continue;
    if (static_cast<unsigned>(fd) > next) ::syscall(SYS_close_range, next, static_cast<unsigned>(fd - 1), 0u);
    next = static_cast<unsigned>(fd) + 1;
  }
  ::syscall(SYS_close_range, next, ~0u, 0u);
  // Terminal signals to the process group (Ctrl-C) are the parent's to handle;
  // the child must live until the parent is gone.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, nullptr);
  ::sigaction(SIGTERM, &ignore, nullptr);
  ::sigaction(SIGHUP, &ignore, nullptr);
  ::sigaction(SIGQUIT, &ignore, nullptr);
  ::prctl(PR_SET_NAME, "vipa-reaper", 0, 0, 0);
  // Run SCHED_FIFO when allowed (CAP_SYS_NICE or RLIMIT_RTPRIO, sched(7);
  // best effort, like the heartbeat thread): the child sleeps in read(2)
  // until the parent dies, then makes two syscalls and exits, so it can never
  // hog a CPU; at normal priority on a loaded host it could wait several ms
  // for a CPU while peers, told by ICMP, are about to take the address.
  // The raw syscall is used because the child may only make
  // async-signal-safe calls (see reaper.h).
  struct sched_param rt {};
  rt.sched_priority = 1;
  ::syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, &rt);

  // Learn of the parent's death as its sentinel thread exits, early in the
  // parent's exit: the pipe's EOF only comes once the parent's last thread
  // has torn its memory down (exit_mm before exit_files, kernel/exit.c),
  // 10-20 ms for a Node process, hundreds on a loaded host. EOF stays the
  // fallback. The signal is blocked except while waiting (WaitReadable).
  g_parent = static_cast<pid_t>(::syscall(SYS_getppid));
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, kParentDeathSignal);
  ::sigprocmask(SIG_SETMASK, &blocked, nullptr);
  sigemptyset(&g_wait_mask);
  struct sigaction death {};
  death.sa_sigaction = OnParentDeath;
  death.sa_flags = SA_SIGINFO;  // no SA_RESTART: ppoll returns EINTR
  ::sigaction(kParentDeathSignal, &death, nullptr);
  ::prctl(PR_SET_PDEATHSIG, kParentDeathSignal, 0, 0, 0);
  ::fcntl(pipe_fd, F_SETFL, O_NONBLOCK);

  size_t armed_len = 0;
  size_t notify_len = 0;
  for (;;) {
    uint8_t header[5];
    if (!ReadFully(pipe_fd, header, sizeof header)) break;  // parent gone
    uint32_t len;
    std::memcpy(&len, header + 1, sizeof len);
    if (header[0] == kFrameQuit) ::_exit(0);
    if (header[0] == kFrameNotify) {
      // Read into the spare buffer first, so a parent dying mid-frame leaves
      // the previous notification intact.
      if (len > kNotifyMax || !ReadFully(pipe_fd, incoming, len)) break;
      std::memcpy(notify, incoming, len);
      notify_len = len;
      continue;
    }
    if (header[0] != kFrameArm || len > max_bytes) ::_exit(2);
    if (!ReadFully(pipe_fd, incoming, len)) break;  // died mid-update: keep the previous batch
    uint8_t* t = armed;
    armed = incoming;
    incoming = t;
    armed_len = len;
  }
  // The armed frame: the delete requests, then the watched addresses.
  size_t requests_len = 0;
  uint8_t* watch = nullptr;
  size_t watch_count = 0;
  if (armed_len >= 4) {
    requests_len = (static_cast<size_t>(armed[0]) << 24) | (static_cast<size_t>(armed[1]) << 16) | (static_cast<size_t>(armed[2]) << 8) | armed[3];
    if (requests_len > armed_len - 4) requests_len = 0;
    size_t o = 4 + requests_len;
    if (o + 2 <= armed_len) {
      size_t count = (static_cast<size_t>(armed[o]) << 8) | armed[o + 1];
      if (o + 2 + count * kWatchEntry <= armed_len) {
        watch = armed + o + 2;
        watch_count = count;
      }
    }
  }
  Requests requests{armed + 4, requests_len, netlink_fd};
  uint32_t lead_us = NotifyLeadUs(notify, notify_len);
  if (lead_us > 0) {
    // Tell the peers first: the next holder adds and announces while this
    // host still answers, so clients see no gap (a handoff without the
    // confirmation), then delete each address as soon as it announced it
    // (the rest after the lead). Capture starts before the peers are told.
    bool watching = false;
    if (packet_fd >= 0 && watch_count > 0) {
      sockaddr_ll all{};
      all.sll_family = AF_PACKET;
      all.sll_protocol = htons(ETH_P_ALL);
      watching = ::bind(packet_fd, reinterpret_cast<sockaddr*>(&all), sizeof all) == 0;
    }
    SendNotify(notify, notify_len);
    DeleteOnAnnouncements(watching ? packet_fd : -1, requests, watch, watch_count, lead_us);
  }
  DeleteRest(requests, watch, watch_count);
  // Lead 0: the addresses are gone, tell the peers, so one takes over now
  // rather than after its failure detector times out.
  if (lead_us == 0) SendNotify(notify, notify_len);
  ::_exit(0);
}

}  // namespace

Napi::Function Reaper::Init(Napi::Env env) {
  return DefineClass(env, "Reaper",
                     {
                         InstanceMethod<&Reaper::Arm>("arm"),
                         InstanceMethod<&Reaper::Notify>("notify"),
                         InstanceMethod<&Reaper::Quit>("quit"),
                         InstanceAccessor<&Reaper::GetPid>("pid"),
                         InstanceAccessor<&Reaper::IsAlive>("alive"),
                     });
}

// new Reaper({ netns?, maxBytes? })
Reaper::Reaper(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Reaper>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  Napi::Object options = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  max_bytes_ = options.Get("maxBytes").IsNumber() ? options.Get("maxBytes").As<Napi::Number>().Uint32Value() : kDefaultMaxBytes;
  NetnsTarget target = NetnsOption(options);

  int err = 0;
  const char* syscall = "socket";
  UniqueFd netlink;
  UniqueFd packet;
  {
    NetnsScope scope(target, err, syscall);
    if (err == 0) {
      netlink.Reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
      if (!netlink.Valid()) {
        err = errno;
        syscall = "socket";
      }
      // Protocol 0: receives nothing until the child binds it at the
      // parent's death (packet(7)), so it costs nothing meanwhile. Without
      // CAP_NET_RAW there is none: the lead is then a plain wait.
      packet.Reset(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    }
  }
  if (err != 0) throw MakeSystemError(env, err, syscall, "reaper start");

  int fds[2];
  // O_CLOEXEC: processes the daemon spawns must not hold the write end, or the
  // reaper would not see the daemon die while they live.
  if (::pipe2(fds, O_CLOEXEC) != 0) throw MakeSystemError(env, errno, "pipe2", "reaper start");
  UniqueFd read_end(fds[0]);
  pipe_.Reset(fds[1]);

  // Every buffer exists before the fork: the child must not allocate.
  if (max_bytes_ < kNotifyMax) max_bytes_ = kNotifyMax;
  void* mem = ::mmap(nullptr, 2 * max_bytes_ + kNotifyMax, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw MakeSystemError(env, errno, "mmap", "reaper start");
  uint8_t* buffers = static_cast<uint8_t*>(mem);

  // The child is forked by a sentinel thread that then parks for the
  // reaper's whole life: the child's parent-death signal follows that
  // thread (prctl(2) PR_SET_PDEATHSIG), which a kill ends before the
  // process's memory teardown (see ChildMain).
  park_.Reset(::eventfd(0, EFD_CLOEXEC));
  if (!park_.Valid()) {
    int e = errno;
    ::munmap(mem, 2 * max_bytes_ + kNotifyMax);
    throw MakeSystemError(env, e, "eventfd", "reaper start");
  }
  SentinelStart start;
  start.pipe_fd = read_end.Get();
  start.netlink_fd = netlink.Get();
  start.packet_fd = packet.Get();
  start.buffers = buffers;
  start.max_bytes = max_bytes_;
  start.park_fd = park_.Get();
  // The sentinel takes no signals: they are Node's business on its own threads.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int created = pthread_create(&sentinel_, &attr, &Reaper::SentinelMain, &start);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (created != 0) {
    ::munmap(mem, 2 * max_bytes_ + kNotifyMax);
    throw MakeSystemError(env, created, "pthread_create", "reaper start");
  }
  sentinel_running_ = true;
  {
    std::unique_lock<std::mutex> lock(start.mu);
    start.cv.wait(lock, [&] { return start.done; });
  }
  ::munmap(mem, 2 * max_bytes_ + kNotifyMax);
  if (start.pid < 0) {
    StopSentinel();
    throw MakeSystemError(env, start.error, "fork", "reaper start");
  }
  pid_ = start.pid;
  GetAddonData(env).open_reapers.insert(this);
}

void* Reaper::SentinelMain(void* arg) {
  auto* start = static_cast<SentinelStart*>(arg);
  int park = start->park_fd;
  pthread_setname_np(pthread_self(), "vipa-sentinel");
  pid_t pid = ::fork();
  if (pid == 0) {
    uint8_t* b = start->buffers;
    ChildMain(start->pipe_fd, start->netlink_fd, start->packet_fd, b, b + start->max_bytes, start->max_bytes, b + 2 * start->max_bytes);
  }
  int error = errno;
  {
    std::lock_guard<std::mutex> lock(start->mu);
    start->pid = pid;
    start->error = error;
    start->done = true;
    start->cv.notify_one();
  }
  // `start` is gone from here on (the constructor returned).
  if (pid < 0) return nullptr;
  // Real-time like the reaper itself (best effort, sched(7)): on a kill this
  // thread runs its exit at once, so the child hears of it at once.
  sched_param param{};
  param.sched_priority = 1;
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
  uint64_t value;
  while (::read(park, &value, sizeof value) < 0 && errno == EINTR) {
  }
  return nullptr;
}

// Ends the sentinel thread once the child is gone (or told to quit: a death
// signal after the quit frame finds that frame first).
void Reaper::StopSentinel() {
  if (!sentinel_running_) return;
  uint64_t one = 1;
  while (::write(park_.Get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
  pthread_join(sentinel_, nullptr);
  sentinel_running_ = false;
  park_.Reset();
}

Reaper::~Reaper() { Abandon(); }

void Reaper::WriteFrame(Napi::Env env, uint8_t type, const uint8_t* data, uint32_t length) {
  if (!pipe_.Valid()) throw MakeSystemError(env, EPIPE, "write", "reaper arm");
  uint8_t header[5];
  header[0] = type;
  std::memcpy(header + 1, &length, sizeof length);
  const uint8_t* parts[2] = {header, data};
  size_t sizes[2] = {sizeof header, length};
  for (int i = 0; i < 2; i++) {
    const uint8_t* p = parts[i];
    size_t n = sizes[i];
    while (n > 0) {
      ssize_t w = ::write(pipe_.Get(), p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw MakeSystemError(env, errno, "write", "reaper arm");
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
}

// arm(buffer): the requests to send if this process dies. An empty buffer disarms.
Napi::Value Reaper::Arm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "arm(buffer): buffer must be a Buffer");
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() > max_bytes_) {
    throw Napi::RangeError::New(env, "reaper batch of " + std::to_string(buf.Length()) + " bytes exceeds its " + std::to_string(max_bytes_) + "-byte buffer");
  }
  WriteFrame(env, kFrameArm, buf.Data(), static_cast<uint32_t>(buf.Length()));
  return env.Undefined();
}

// notify(buffer): after deleting, the child sends this to peers (see SendNotify).
Napi::Value Reaper::Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "notify(buffer): buffer must be a Buffer");
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() > kNotifyMax) throw Napi::RangeError::New(env, "reaper notification of " + std::to_string(buf.Length()) + " bytes exceeds 65536");
  WriteFrame(env, kFrameNotify, buf.Data(), static_cast<uint32_t>(buf.Length()));
  return env.Undefined();
}

// quit(): the child exits without deleting anything (graceful stop already did).
Napi::Value Reaper::Quit(const Napi::CallbackInfo& info) {
  if (pipe_.Valid()) {
    try {
      WriteFrame(info.Env(), kFrameQuit, nullptr, 0);
    } catch (const Napi::Error&) {
      // The child is already gone; nothing to tell it.
    }
    pipe_.Reset();
  }
  Reap(true);
  StopSentinel();
  GetAddonData(env_).open_reapers.erase(this);
  return info.Env().Undefined();
}

void Reaper::Abandon() {
  if (pipe_.Valid()) pipe_.Reset();  // EOF: the child deletes and exits
  Reap(true);
  StopSentinel();
  if (pid_ < 0) GetAddonData(env_).open_reapers.erase(this);
}

void Reaper::Reap(bool block) {
  if (pid_ < 0) return;
  int status;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_ || (r < 0 && errno == ECHILD)) pid_ = -1;
}

Napi::Value Reaper::GetPid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pid_); }

Napi::Value Reaper::IsAlive(const Napi::CallbackInfo& info) {
  Reap(false);
  return Napi::Boolean::New(info.Env(), pid_ >= 0);
}

}  // namespace vipa
