// responder: the failover bench's echo responder in C, a drop-in for
// lib/demo/echo-responder-main.ts (same options, same output):
//
//   responder --port PORT --name NAME [--family 4|6|both]
//
// Binds the wildcard addresses (0.0.0.0 and [::] with IPV6_V6ONLY) on PORT,
// so it answers whatever address a probe reached while that address comes and
// goes, and answers every 12-byte probe (lib/demo/probe-wire.ts) with the
// probe's bytes followed by NAME (1..64 bytes), ignoring any other datagram.
// Unlike Node's dgram it answers from the address the probe was sent to
// (IP_PKTINFO / IPV6_RECVPKTINFO, the destination handed back to sendmsg(2)
// as the source), the way a real service on the virtual address would; when
// that address is gone by the time of the answer (the kernel refuses it as a
// source), the answer goes out from the address the kernel picks, as Node's
// does, and is counted (sourceFallbacks).
//
// One thread, blocked in poll(2) on the sockets, a signalfd and stdin; up to
// RX_BATCH datagrams per socket per round. Prints `ready` on stdout once
// bound (bench/lib/failover-lan.ts waits for it), then nothing; on exit its
// counters as one JSON line on stderr. Ends on SIGTERM, SIGINT or SIGHUP, on
// EOF on stdin when stdin is a pipe or a socket, or when its parent changes
// (checked every 250 ms). Exit status 0 on a clean stop, 1 on bad arguments
// (usage on stderr), 2 when it cannot bind.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROBE_LEN 12
#define MAX_NAME 64
#define RX_BATCH 64
#define PARENT_CHECK_MS 250

static const char USAGE[] = "usage: responder --port PORT --name NAME [--family 4|6|both]\n";

static struct {
  unsigned long long answered, ignored, send_errors, source_fallbacks;
} c;

static const char* name;
static size_t name_len;

static void usage(const char* why) __attribute__((noreturn));
static void usage(const char* why) {
  fprintf(stderr, "responder: %s\n%s", why, USAGE);
  exit(1);
}

static int open_socket(int family, int port) {
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  struct sockaddr_storage any;
  memset(&any, 0, sizeof any);
  socklen_t len;
  if (family == 4) {
    struct sockaddr_in* a = (struct sockaddr_in*)&any;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    len = sizeof *a;
    if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0) goto fail;
  } else {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&any;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    len = sizeof *a;
    // Its own socket per family: the IPv4 one takes 0.0.0.0, this one only [::].
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) goto fail;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0) goto fail;
  }
  int buffer = 1 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  if (bind(fd, (struct sockaddr*)&any, len) != 0) goto fail;
  return fd;
fail:;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

/** Makes `buf` the one control message of `msg`: level/type with `len` bytes of `data` (a reply's source address). */
static void set_control(struct msghdr* msg, char* buf, int level, int type, const void* data, size_t len) {
  msg->msg_control = buf;
  msg->msg_controllen = CMSG_SPACE(len);
  struct cmsghdr* o = CMSG_FIRSTHDR(msg);
  o->cmsg_level = level;
  o->cmsg_type = type;
  o->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(o), data, len);
}

/**
 * Answers the probes waiting on `fd`: the probe, then the name, from the
 * address the probe reached.
 */
static void answer(int fd, int family) {
  uint8_t probe[PROBE_LEN + 1];
  union {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) + 64];
    struct cmsghdr align;
  } in, out;
  for (int i = 0; i < RX_BATCH; i++) {
    struct sockaddr_storage peer;
    struct iovec iov = {.iov_base = probe, .iov_len = sizeof probe};
    struct msghdr msg = {.msg_name = &peer, .msg_namelen = sizeof peer, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = in.buf, .msg_controllen = sizeof in.buf};
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    if (n != PROBE_LEN || (msg.msg_flags & MSG_TRUNC)) {
      c.ignored++;
      continue;
    }
    // The destination the probe reached becomes the answer's source.
    struct msghdr reply = {.msg_name = &peer, .msg_namelen = msg.msg_namelen, .msg_iovlen = 2};
    struct iovec parts[2] = {{.iov_base = probe, .iov_len = PROBE_LEN}, {.iov_base = (void*)name, .iov_len = name_len}};
    reply.msg_iov = parts;
    memset(out.buf, 0, sizeof out.buf);
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (family == 4 && cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
        struct in_pktinfo got, pi;
        memcpy(&got, CMSG_DATA(cm), sizeof got);
        memset(&pi, 0, sizeof pi);
        pi.ipi_spec_dst = got.ipi_spec_dst;  // the local address the probe was for (for unicast: its destination)
        set_control(&reply, out.buf, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
        break;
      }
      if (family == 6 && cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
        struct in6_pktinfo pi;
        memcpy(&pi, CMSG_DATA(cm), sizeof pi);
        if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr)) memset(&pi.ipi6_addr, 0, sizeof pi.ipi6_addr);  // let the kernel pick
        set_control(&reply, out.buf, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
        break;
      }
    }
    ssize_t sent;
    do {
      sent = sendmsg(fd, &reply, MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0 && reply.msg_control && (errno == EINVAL || errno == EADDRNOTAVAIL)) {
      // The address is no longer ours: answer from whichever address the kernel picks.
      reply.msg_control = NULL;
      reply.msg_controllen = 0;
      do {
        sent = sendmsg(fd, &reply, MSG_DONTWAIT);
      } while (sent < 0 && errno == EINTR);
      if (sent >= 0) c.source_fallbacks++;
    }
    if (sent < 0) c.send_errors++;  // no route back, a firewall: keep answering the others
    c.answered++;
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char** argv) {
  const char* port_text = NULL;
  const char* family = "both";
  for (int i = 1; i < argc; i++) {
    const char* arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(USAGE, stdout);
      return 0;
    }
    if (strncmp(arg, "--", 2) != 0) usage("unexpected argument");
    const char* opt = arg + 2;
    const char* eq = strchr(opt, '=');
    size_t len = eq ? (size_t)(eq - opt) : strlen(opt);
    const char* value;
    if (eq) value = eq + 1;
    else if (i + 1 < argc) value = argv[++i];
    else usage("an option needs a value");
    if (len == 4 && strncmp(opt, "port", 4) == 0) port_text = value;
    else if (len == 4 && strncmp(opt, "name", 4) == 0) name = value;
    else if (len == 6 && strncmp(opt, "family", 6) == 0) family = value;
    else usage("unknown option");
  }
  char* end = NULL;
  long port = port_text ? strtol(port_text, &end, 10) : -1;
  if (!port_text || !*port_text || *end || port < 1 || port > 65535) usage("--port must be 1..65535");
  if (!name || strlen(name) < 1 || strlen(name) > MAX_NAME) usage("--name must have 1..64 bytes");
  name_len = strlen(name);
  int want4 = strcmp(family, "4") == 0 || strcmp(family, "both") == 0;
  int want6 = strcmp(family, "6") == 0 || strcmp(family, "both") == 0;
  if (!want4 && !want6) usage("--family must be 4, 6 or both");

  int fd4 = -1, fd6 = -1;
  if (want4 && (fd4 = open_socket(4, (int)port)) < 0) {
    fprintf(stderr, "responder: cannot bind port %ld (IPv4): %s\n", port, strerror(errno));
    return 2;
  }
  if (want6 && (fd6 = open_socket(6, (int)port)) < 0) {
    fprintf(stderr, "responder: cannot bind port %ld (IPv6): %s\n", port, strerror(errno));
    if (fd4 >= 0) close(fd4);
    return 2;
  }

  signal(SIGPIPE, SIG_IGN);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop, NULL);
  int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    fprintf(stderr, "responder: signalfd: %s\n", strerror(errno));
    return 2;
  }
  struct stat st;
  int watch_stdin = fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));

  if (write(STDOUT_FILENO, "ready\n", 6) != 6) return 0;  // nobody listens

  pid_t parent = getppid();
  long long last_check = now_ms();
  struct pollfd fds[4] = {
      {.fd = sfd, .events = POLLIN},
      {.fd = fd4, .events = POLLIN},
      {.fd = fd6, .events = POLLIN},
      {.fd = watch_stdin ? STDIN_FILENO : -1, .events = POLLIN},
  };
  for (int running = 1; running;) {
    int n = poll(fds, 4, PARENT_CHECK_MS);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && fds[1].revents) answer(fd4, 4);
    if (n > 0 && fds[2].revents) answer(fd6, 6);
    if (n > 0 && fds[0].revents) running = 0;
    if (n > 0 && fds[3].revents) {
      char scratch[4096];
      ssize_t r = read(STDIN_FILENO, scratch, sizeof scratch);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) running = 0;
    }
    if (now_ms() - last_check >= PARENT_CHECK_MS) {
      last_check = now_ms();
      if (getppid() != parent) running = 0;
    }
  }
  if (fd4 >= 0) close(fd4);
  if (fd6 >= 0) close(fd6);
  close(sfd);
  fprintf(stderr, "{\"type\":\"end\",\"answered\":%llu,\"ignored\":%llu,\"sendErrors\":%llu,\"sourceFallbacks\":%llu}\n", c.answered,
          c.ignored, c.send_errors, c.source_fallbacks);
  return 0;
}
