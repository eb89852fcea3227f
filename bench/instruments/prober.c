// prober: the failover bench's client prober in C, a drop-in for
// lib/demo/prober-main.ts (same options, same JSON lines on stdout, see
// lib/demo/prober-lines.ts) with the timing noise of Node taken out.
//
//   prober --target VIP --port PORT [--interval MS] [--interface IF]
//     [--neighbor-interval MS] [--neighbor-identity phantom|own] [--duration MS]
//     [--source ADDR] [--loss-timeout MS] [--flush-ms MS]
//
// What it does, as lib/demo/prober.ts does (read its module comment for the
// why): a 12-byte UDP probe (lib/demo/probe-wire.ts: sequence number and
// CLOCK_MONOTONIC send time, big-endian) every --interval ms (0.5..100,
// fractional) to VIP:PORT from one unconnected socket, each echo reply
// recorded with its round trip and the responder's name; an ARP request /
// Neighbor Solicitation for VIP every --neighbor-interval ms from a made-up
// ("phantom") identity on an AF_PACKET socket, and every ARP message / NA / NS
// claiming VIP recorded with the claiming MAC.
//
// How it differs from the Node prober, which is the point of it:
// - Sending: one thread sleeps with clock_nanosleep(TIMER_ABSTIME) until the
//   next slot (start + k × interval, for the probes and for the neighbour
//   requests), so a probe leaves at its slot, not at the next 1 ms libuv
//   tick. Each probe carries the clock read right before its sendto(2).
// - Receiving: a second thread blocks in poll(2) on both sockets and reads
//   each datagram/frame with its kernel receive timestamp (SO_TIMESTAMPNS,
//   taken when the packet entered this namespace's stack). That timestamp is
//   CLOCK_REALTIME; it is converted to CLOCK_MONOTONIC with the offset
//   between the two clocks read right after recvmsg(2) (the offset changes
//   only when the wall clock is stepped, not when NTP slews it). A converted
//   time that is not plausible (before the probe's send, after the read: a
//   step in between, or no timestamp) is replaced by the CLOCK_MONOTONIC
//   read right after recvmsg, and counted (rxTimestampFallbacks). So a reply
//   is timed when it arrived, however late this process got to read it.
// - Stalls: the send thread checks how late it woke. Woken more than
//   max(1 ms, 3 intervals) after the slot it slept for, it records a stall
//   {from: that slot's time, to: when it woke}: probes meant for that time
//   were not sent, so the gap in replies it causes is the prober's, not the
//   service's (lib/demo/analysis.ts takes stalls out of outages). As in the
//   Node prober, a late wake-up sends the missed slots at once up to that
//   limit (ceil(limit / interval) probes) and skips the rest (skippedSlots);
//   a neighbour request goes out at most once per wake-up. Replies are not
//   affected by a send stall (they carry the kernel's time).
// - Losses: a probe without a reply after --loss-timeout (default 1000 ms)
//   is reported lost; a reply that comes later counts as late, and a second
//   reply to one probe as a duplicate.
// - Output: lines go to an in-memory batch written to stdout every
//   --flush-ms (default 50) by a third thread, with a stats line every
//   second; stdout never blocks the probing.
//
// Stops on SIGTERM, SIGINT, SIGHUP, EOF on stdin when stdin is a pipe or a
// socket, its parent changing (checked every 250 ms), stdout closed (EPIPE),
// or after --duration: waits for replies in flight (min(200 ms, loss
// timeout)), declares the rest lost, writes the final stats and an end line
// {"type":"end","reason":...}, closes everything and exits 0. Bad arguments
// or a failed start: an error line {"type":"error","message":...} naming the
// bad value, usage on stderr, exit 2.
//
// Bounds: every loop is bounded (slots per wake-up by the burst limit,
// datagrams per poll round by RX_BATCH, losses per wake-up by the ring),
// memory by the ring of unanswered probes (sized from the loss timeout) and
// the output batch (OUT_CAP; lines beyond it are counted as dropped).

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define PROBE_LEN 12
#define MAX_NAME 64
#define NS_PER_MS 1000000LL
#define MIN_STALL_NS (1 * NS_PER_MS)
#define MAX_DRAIN_NS (200 * NS_PER_MS)
#define STATS_EVERY_NS (1000 * NS_PER_MS)
#define PARENT_CHECK_NS (250 * NS_PER_MS)
#define SOCKET_BUFFER_BYTES (1 << 20)
#define FRAME_BUFFER_BYTES 65536
#define RX_BATCH 64
#define RX_POLL_MS 100
#define OUT_CAP (64u << 20)
#define LINE_MAX_BYTES 1024

static const char USAGE[] =
    "usage: prober --target VIP --port PORT [--interval MS] [--interface IF] [--neighbor-interval MS] "
    "[--neighbor-identity phantom|own] [--duration MS] [--source ADDR] [--loss-timeout MS] [--flush-ms MS]\n";

// ---- clocks and formatting ---------------------------------------------------

static int64_t ts_ns(const struct timespec* ts) { return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec; }

/** A positive number of ms (an option, checked finite and in range) as ns, rounded. */
static int64_t ms_to_ns(double ms) { return (int64_t)(ms * 1e6 + 0.5); }

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts_ns(&ts);
}

/** Appends to a line buffer; truncates (never overflows) when full. */
struct line {
  char buf[LINE_MAX_BYTES];
  size_t len;
};

static void put(struct line* l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct line* l, const char* fmt, ...) {
  if (l->len >= sizeof l->buf) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  l->len += (size_t)n;
  if (l->len >= sizeof l->buf) l->len = sizeof l->buf - 1;
}

/** A time or duration in ns as ms rounded to the µs, formatted as JavaScript prints that number. */
static void put_ms(struct line* l, int64_t ns) {
  int neg = ns < 0;
  uint64_t a = neg ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
  uint64_t us = (a + 500) / 1000;
  uint64_t whole = us / 1000, frac = us % 1000;
  if (us == 0) neg = 0;
  if (frac == 0) {
    put(l, "%s%llu", neg ? "-" : "", (unsigned long long)whole);
  } else {
    char f[4];
    snprintf(f, sizeof f, "%03llu", (unsigned long long)frac);
    for (int i = 2; i > 0 && f[i] == '0'; i--) f[i] = 0;
    put(l, "%s%llu.%s", neg ? "-" : "", (unsigned long long)whole, f);
  }
}

/** A plain number (an option's value): shortest of %.10g, always valid JSON. */
static void put_num(struct line* l, double v) {
  if (!isfinite(v)) put(l, "null");
  else put(l, "%.10g", v);
}

/** A JSON string: quotes, backslashes and control characters escaped; invalid UTF-8 becomes U+FFFD. */
static void put_str(struct line* l, const unsigned char* s, size_t n) {
  put(l, "\"");
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      put(l, "\\%c", c);
      i++;
    } else if (c < 0x20) {
      put(l, "\\u%04x", c);
      i++;
    } else if (c < 0x80) {
      put(l, "%c", c);
      i++;
    } else {
      // Validate one UTF-8 sequence (no overlongs, no surrogates, ≤ U+10FFFF).
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      int ok = len > 0 && c <= 0xf4 && i + len <= n;
      for (size_t k = 1; ok && k < len; k++) ok = (s[i + k] & 0xc0) == 0x80;
      if (ok && len == 3) {
        unsigned c1 = s[i + 1];
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) ok = 0;
      }
      if (ok && len == 4) {
        unsigned c1 = s[i + 1];
        if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) ok = 0;
      }
      if (ok) {
        put(l, "%.*s", (int)len, (const char*)s + i);
        i += len;
      } else {
        put(l, "\\ufffd");
        i++;
      }
    }
  }
  put(l, "\"");
}

static void put_cstr(struct line* l, const char* s) { put_str(l, (const unsigned char*)s, strlen(s)); }

static void put_mac(struct line* l, const uint8_t* m) {
  put(l, "\"%02x:%02x:%02x:%02x:%02x:%02x\"", m[0], m[1], m[2], m[3], m[4], m[5]);
}

// ---- options -------------------------------------------------------------------

struct options {
  const char* target;
  int family;  // 4 or 6
  uint8_t target_bytes[16];
  int port;
  double interval_ms;
  const char* ifname;
  double neighbor_interval_ms;
  int own_identity;
  double duration_ms;  // 0: none
  const char* source;
  double loss_timeout_ms;
  double flush_ms;
};

/** Writes an error line on stdout and usage on stderr; exit 2. */
static void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char* fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  struct line l = {.len = 0};
  put(&l, "{\"type\":\"error\",\"message\":");
  put_cstr(&l, message);
  put(&l, "}\n");
  ssize_t w = write(STDOUT_FILENO, l.buf, l.len);
  (void)w;
  fprintf(stderr, "prober: %s\n%s", message, USAGE);
  exit(2);
}

static double parse_number(const char* name, const char* text) {
  char* end = NULL;
  errno = 0;
  const char* p = text;
  while (*p == ' ' || *p == '\t') p++;
  double v = *p ? strtod(p, &end) : NAN;
  if (end) while (*end == ' ' || *end == '\t') end++;
  if (!*p || !end || *end || errno == ERANGE || !isfinite(v)) fail("--%s must be a number, got %s", name, text);
  return v;
}

static double parse_range(const char* name, const char* text, double min, double max, int allow_zero) {
  double v = parse_number(name, text);
  if ((v < min || v > max) && !(allow_zero && v == 0)) {
    fail("--%s must be %s%g..%g, got %s", name, allow_zero ? "0 or " : "", min, max, text);
  }
  return v;
}

static void parse_options(int argc, char** argv, struct options* o) {
  memset(o, 0, sizeof *o);
  o->interval_ms = 1;
  o->ifname = "eth0";
  o->neighbor_interval_ms = 1;
  o->loss_timeout_ms = 1000;
  o->flush_ms = 50;
  const char* port = NULL;
  const char* identity = NULL;
  for (int i = 1; i < argc; i++) {
    const char* arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(USAGE, stdout);
      exit(0);
    }
    if (strncmp(arg, "--", 2) != 0) fail("unexpected argument %s", arg);
    const char* name = arg + 2;
    const char* eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    const char* value;
    if (eq) {
      value = eq + 1;
    } else {
      if (i + 1 >= argc) fail("--%s needs a value", name);
      value = argv[++i];
    }
#define IS(opt) (name_len == strlen(opt) && strncmp(name, opt, name_len) == 0)
    if (IS("target")) o->target = value;
    else if (IS("port")) port = value;
    else if (IS("interval")) o->interval_ms = parse_range("interval", value, 0.5, 100, 0);
    else if (IS("interface")) o->ifname = value;
    else if (IS("neighbor-interval")) o->neighbor_interval_ms = parse_range("neighbor-interval", value, 0.5, 10000, 1);
    else if (IS("neighbor-identity")) identity = value;
    else if (IS("duration")) o->duration_ms = parse_range("duration", value, 1, 7 * 24 * 3600e3, 0);
    else if (IS("source")) o->source = value;
    else if (IS("loss-timeout")) o->loss_timeout_ms = parse_range("loss-timeout", value, 1, 60000, 0);
    else if (IS("flush-ms")) o->flush_ms = parse_range("flush-ms", value, 1, 10000, 0);
    else fail("unknown option --%.*s", (int)name_len, name);
#undef IS
  }
  if (!o->target || !port) fail("--target and --port are required");
  double p = parse_range("port", port, 1, 65535, 0);
  if (p != (double)(int)p) fail("--port must be an integer, got %s", port);
  o->port = (int)p;
  if (inet_pton(AF_INET, o->target, o->target_bytes) == 1) o->family = 4;
  else if (inet_pton(AF_INET6, o->target, o->target_bytes) == 1) o->family = 6;
  else fail("--target must be an IPv4 or IPv6 address, got %s", o->target);
  if (identity && strcmp(identity, "phantom") != 0 && strcmp(identity, "own") != 0) {
    fail("--neighbor-identity must be phantom or own, got %s", identity);
  }
  o->own_identity = identity && strcmp(identity, "own") == 0;
  if (strlen(o->ifname) == 0 || strlen(o->ifname) >= IFNAMSIZ) fail("--interface must be an interface name, got %s", o->ifname);
}

// ---- addresses and frames (lib/demo/prober.ts, lib/packets) ----------------------

static int in_prefix(const uint8_t* a, const uint8_t* b, int len, int bits) {
  for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
    if ((a[i] & mask) != (b[i] & mask)) return 0;
  }
  return 1;
}

/** Ours with the top bit of the first byte flipped, locally administered, unicast (prober.ts phantomMac). */
static void phantom_mac(const uint8_t* mac, uint8_t* out) {
  memcpy(out, mac, 6);
  out[0] = (uint8_t)(((mac[0] ^ 0x80) | 0x02) & 0xfe);
}

/** The target's /24 with host .254; or its /64 with the modified EUI-64 of `mac` (prober.ts phantomAddress). */
static void phantom_address(const uint8_t* mac, const uint8_t* target, int family, uint8_t* out) {
  if (family == 4) {
    memcpy(out, target, 3);
    out[3] = 254;
    return;
  }
  memcpy(out, target, 8);
  out[8] = mac[0] ^ 0x02;
  out[9] = mac[1];
  out[10] = mac[2];
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = mac[3];
  out[14] = mac[4];
  out[15] = mac[5];
}

/**
 * With --neighbor-identity own and no --source: the interface's address of
 * the target's family that prober.ts chooseSourceAddress would pick: not the
 * target, not tentative or failed DAD; in the target's subnet first, then
 * global scope first; the first listed among equals. 0 when none.
 */
static int choose_own_source(const struct options* o, unsigned ifindex, uint8_t* out) {
  int best = -1;
  if (o->family == 4) {
    struct ifaddrs* list = NULL;
    if (getifaddrs(&list) != 0) return 0;
    size_t n = strlen(o->ifname);
    for (struct ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
      // IPv4 entries are named by label: eth0, or eth0:1 for a labelled address.
      if (strncmp(a->ifa_name, o->ifname, n) != 0 || (a->ifa_name[n] != 0 && a->ifa_name[n] != ':')) continue;
      const uint8_t* addr = (const uint8_t*)&((struct sockaddr_in*)a->ifa_addr)->sin_addr;
      if (memcmp(addr, o->target_bytes, 4) == 0) continue;
      int bits = 32;
      if (a->ifa_netmask) bits = __builtin_popcount(((struct sockaddr_in*)a->ifa_netmask)->sin_addr.s_addr);
      int score = (in_prefix(addr, o->target_bytes, 4, bits) ? 2 : 0) + (addr[0] == 127 ? 0 : 1);
      if (score > best) {
        best = score;
        memcpy(out, addr, 4);
      }
    }
    freeifaddrs(list);
    return best >= 0;
  }
  // IPv6: /proc/net/if_inet6 has the flags (tentative 0x40, dadfailed 0x08) and scope (0 = global).
  FILE* f = fopen("/proc/net/if_inet6", "re");
  if (!f) return 0;
  char hex[33], name[IFNAMSIZ + 1];
  unsigned idx, plen, scope, flags;
  for (int lines = 0; lines < 100000 && fscanf(f, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags, name) == 6; lines++) {
    if (idx != ifindex || (flags & (0x40 | 0x08))) continue;
    uint8_t addr[16];
    int ok = strlen(hex) == 32;
    for (int i = 0; ok && i < 16; i++) ok = sscanf(hex + 2 * i, "%2hhx", &addr[i]) == 1;
    if (!ok || memcmp(addr, o->target_bytes, 16) == 0) continue;
    int score = (in_prefix(addr, o->target_bytes, 16, (int)plen) ? 2 : 0) + (scope == 0 ? 1 : 0);
    if (score > best) {
      best = score;
      memcpy(out, addr, 16);
    }
  }
  fclose(f);
  return best >= 0;
}

static uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  return sum;
}

static uint16_t fold(uint32_t sum) {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/** "Who has target, tell source", broadcast from `mac` (RFC 826): 42 bytes. */
static size_t arp_request(uint8_t* f, const uint8_t* mac, const uint8_t* source, const uint8_t* target) {
  memset(f, 0xff, 6);
  memcpy(f + 6, mac, 6);
  f[12] = 0x08, f[13] = 0x06;
  f[14] = 0, f[15] = 1;     // ar$hrd Ethernet
  f[16] = 0x08, f[17] = 0;  // ar$pro IPv4
  f[18] = 6, f[19] = 4;
  f[20] = 0, f[21] = 1;  // request
  memcpy(f + 22, mac, 6);
  memcpy(f + 28, source, 4);
  memset(f + 32, 0, 6);
  memcpy(f + 38, target, 4);
  return 42;
}

/** An NS to the target's solicited-node group from `source`, with an SLLA option (RFC 4861 §7.2.2): 86 bytes. */
static size_t neighbor_solicitation(uint8_t* f, const uint8_t* mac, const uint8_t* source, const uint8_t* target) {
  uint8_t group[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, target[13], target[14], target[15]};
  f[0] = 0x33, f[1] = 0x33;
  memcpy(f + 2, group + 12, 4);
  memcpy(f + 6, mac, 6);
  f[12] = 0x86, f[13] = 0xdd;
  uint8_t* ip = f + 14;
  ip[0] = 0x60, ip[1] = 0, ip[2] = 0, ip[3] = 0;
  ip[4] = 0, ip[5] = 32;  // 24-byte NS + 8-byte option
  ip[6] = 58, ip[7] = 255;
  memcpy(ip + 8, source, 16);
  memcpy(ip + 24, group, 16);
  uint8_t* icmp = f + 54;
  memset(icmp, 0, 8);
  icmp[0] = 135;
  memcpy(icmp + 8, target, 16);
  icmp[24] = 1, icmp[25] = 1;  // Source Link-Layer Address, 8 bytes
  memcpy(icmp + 26, mac, 6);
  uint32_t sum = sum16(ip + 8, 32, 32 + 58);
  uint16_t c = fold(sum16(icmp, 32, sum));
  icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
  return 86;
}

enum kind { KIND_NONE, KIND_REPLY, KIND_ANNOUNCEMENT, KIND_REQUEST };
static const char* const KIND_NAMES[] = {"", "reply", "announcement", "request"};

/**
 * An ARP frame claiming `target`: its sender MAC and kind (lib/packets/arp.ts
 * decodeArp, with isGratuitousArp). -1 for a frame decodeArp refuses.
 */
static int decode_arp(const uint8_t* f, size_t n, const uint8_t* target, uint8_t* mac, enum kind* kind) {
  *kind = KIND_NONE;
  if (n < 22 || f[12] != 0x08 || f[13] != 0x06) return -1;
  if (f[14] != 0 || f[15] != 1 || f[16] != 0x08 || f[17] != 0 || f[18] != 6 || f[19] != 4) return -1;
  if (f[20] != 0 || (f[21] != 1 && f[21] != 2)) return -1;
  if (n < 42) return -1;
  if (memcmp(f + 28, target, 4) != 0) return 0;
  memcpy(mac, f + 22, 6);
  int gratuitous = memcmp(f + 28, f + 38, 4) == 0 && (f[28] | f[29] | f[30] | f[31]) != 0;
  *kind = f[21] == 2 ? KIND_REPLY : gratuitous ? KIND_ANNOUNCEMENT : KIND_REQUEST;
  return 0;
}

/**
 * An NS/NA frame about `target`: an NA for it (MAC: its TLLA option, else the
 * Ethernet source; reply when Solicited, else announcement) or an NS from it
 * (MAC: SLLA, else Ethernet source; request). The checks of
 * lib/packets/ndp.ts decodeNdp (RFC 4861 §7.1); -1 for a frame it refuses.
 */
static int decode_ndp(const uint8_t* f, size_t n, const uint8_t* target, uint8_t* mac, enum kind* kind) {
  *kind = KIND_NONE;
  if (n < 54 || f[12] != 0x86 || f[13] != 0xdd) return -1;
  const uint8_t* ip = f + 14;
  if ((ip[0] >> 4) != 6) return -1;
  size_t plen = (size_t)(ip[4] << 8 | ip[5]);
  if (54 + plen > n) return -1;
  if (ip[6] != 58 || ip[7] != 255 || plen < 24) return -1;
  const uint8_t* icmp = f + 54;
  if ((icmp[0] != 135 && icmp[0] != 136) || icmp[1] != 0) return -1;
  if (fold(sum16(icmp, plen, sum16(ip + 8, 32, (uint32_t)plen + 58))) != 0) return -1;
  if (icmp[8] == 0xff) return -1;  // multicast target
  const uint8_t *slla = NULL, *tlla = NULL;
  for (size_t off = 24; off < plen;) {
    if (plen - off < 2) return -1;
    size_t olen = (size_t)icmp[off + 1] * 8;
    if (olen == 0 || off + olen > plen) return -1;
    if (icmp[off] == 1 || icmp[off] == 2) {
      if (olen != 8) return -1;
      if (icmp[off] == 1 && !slla) slla = icmp + off + 2;
      if (icmp[off] == 2 && !tlla) tlla = icmp + off + 2;
    }
    off += olen;
  }
  static const uint8_t zero[16];
  int is_ns = icmp[0] == 135;
  int solicited = !is_ns && (icmp[4] & 0x40);
  if (is_ns && memcmp(ip + 8, zero, 16) == 0) {
    static const uint8_t sn[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
    if (memcmp(ip + 24, sn, 13) != 0 || slla) return -1;
  }
  if (solicited && ip[24] == 0xff) return -1;
  if (!is_ns && memcmp(icmp + 8, target, 16) == 0) {
    memcpy(mac, tlla ? tlla : f + 6, 6);
    *kind = solicited ? KIND_REPLY : KIND_ANNOUNCEMENT;
  } else if (is_ns && memcmp(ip + 8, target, 16) == 0) {
    memcpy(mac, slla ? slla : f + 6, 6);
    *kind = KIND_REQUEST;
  }
  return 0;
}

// ---- shared state --------------------------------------------------------------

enum state { FREE, PENDING, ANSWERED, LOST };

struct slot {
  uint32_t seq;
  uint8_t state;
  int64_t sent_ns;
};

enum reason { R_NONE, R_SIGTERM, R_SIGINT, R_SIGHUP, R_STDIN_EOF, R_PARENT_GONE, R_STDOUT_CLOSED, R_DONE };
static const char* const REASONS[] = {"", "SIGTERM", "SIGINT", "SIGHUP", "stdin-eof", "parent-gone", "stdout-closed", "done"};

static struct options opt;
static int64_t start_ns, stopped_ns = -1, interval_ns, neighbor_interval_ns, stall_ns, loss_timeout_ns;
static int udp_fd = -1, packet_fd = -1, wake_fd = -1, watch_stdin;
static uint8_t our_mac[6], neighbor_mac[6];
static struct sockaddr_storage target_addr;
static socklen_t target_addr_len;
static uint8_t neighbor_frame[128];
static size_t neighbor_frame_len;

/** Guards the ring and the counters. Lock order: state, then out. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot* ring;
static uint64_t ring_mask;
static uint64_t next_seq, expire_seq, pending_count;
static struct {
  uint64_t sent, replies, duplicates, late, lost, skipped_slots, invalid, send_errors;
  uint64_t neighbor_requests, neighbor_records, neighbor_send_errors, frame_errors, receive_errors, dropped;
  uint64_t ticks, stalls, rx_kernel_timestamps, rx_timestamp_fallbacks;
  int64_t max_tick_gap_ns, max_late_ns;
} c;
static struct rusage usage_at_start;

/** Output batch, written by the flush thread. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cond;  // on CLOCK_MONOTONIC, initialised in main
static char* out_buf;
static size_t out_len, out_cap;
static int out_closed;      // stdout gone: drop everything
static int flusher_exit;    // main asks the flush thread to end

static volatile sig_atomic_t signal_reason;
static atomic_int thread_reason;

static void request_stop(enum reason r) {
  int expected = R_NONE;
  atomic_compare_exchange_strong(&thread_reason, &expected, (int)r);
}

static enum reason stop_reason(void) {
  if (signal_reason != R_NONE) return (enum reason)signal_reason;
  return (enum reason)atomic_load(&thread_reason);
}

static void on_signal(int sig) {
  if (signal_reason != R_NONE) return;
  signal_reason = sig == SIGTERM ? R_SIGTERM : sig == SIGINT ? R_SIGINT : R_SIGHUP;
}

/** Appends a line to the batch (caller may hold state_lock). */
static void emit(const struct line* l) {
  pthread_mutex_lock(&out_lock);
  if (out_closed) {
    // nothing to write to
  } else if (out_len + l->len + 1 > OUT_CAP) {
    c.dropped++;  // racy only against stats, which are approximate anyway
  } else {
    if (out_len + l->len + 1 > out_cap) {
      size_t cap = out_cap ? out_cap : 65536;
      while (cap < out_len + l->len + 1) cap *= 2;
      char* grown = realloc(out_buf, cap);
      if (!grown) {
        c.dropped++;
        pthread_mutex_unlock(&out_lock);
        return;
      }
      out_buf = grown;
      out_cap = cap;
    }
    memcpy(out_buf + out_len, l->buf, l->len);
    out_len += l->len;
    out_buf[out_len++] = '\n';
  }
  pthread_mutex_unlock(&out_lock);
}

/** Writes all of buf to stdout; 0, or -1 when stdout is closed (EPIPE) or broken. */
static int write_all(const char* buf, size_t len) {
  size_t done = 0;
  for (int attempts = 0; done < len && attempts < 1000; attempts++) {
    ssize_t n = write(STDOUT_FILENO, buf + done, len - done);
    if (n > 0) {
      done += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
      poll(&p, 1, 100);
    } else {
      return -1;
    }
  }
  return done == len ? 0 : -1;
}

/** Takes the batch and writes it; on EPIPE stops the prober (stdout-closed). */
static void flush_out(void) {
  pthread_mutex_lock(&out_lock);
  char* buf = out_buf;
  size_t len = out_len;
  out_buf = NULL;
  out_len = out_cap = 0;
  pthread_mutex_unlock(&out_lock);
  if (len > 0 && write_all(buf, len) != 0) {
    pthread_mutex_lock(&out_lock);
    out_closed = 1;
    pthread_mutex_unlock(&out_lock);
    request_stop(R_STDOUT_CLOSED);
  }
  free(buf);
}

static void emit_stats(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double user_ms = (double)(ru.ru_utime.tv_sec - usage_at_start.ru_utime.tv_sec) * 1e3 +
                   (double)(ru.ru_utime.tv_usec - usage_at_start.ru_utime.tv_usec) / 1e3;
  double sys_ms = (double)(ru.ru_stime.tv_sec - usage_at_start.ru_stime.tv_sec) * 1e3 +
                  (double)(ru.ru_stime.tv_usec - usage_at_start.ru_stime.tv_usec) / 1e3;
  struct line l = {.len = 0};
  pthread_mutex_lock(&state_lock);
  int64_t end = stopped_ns >= 0 ? stopped_ns : mono_ns();
  double elapsed_s = (double)(end - start_ns) / 1e9;
  put(&l,
      "{\"type\":\"stats\",\"sent\":%llu,\"replies\":%llu,\"duplicates\":%llu,\"late\":%llu,\"lost\":%llu,"
      "\"skippedSlots\":%llu,\"invalid\":%llu,\"sendErrors\":%llu,\"neighborRequests\":%llu,\"neighborRecords\":%llu,"
      "\"neighborSendErrors\":%llu,\"frameErrors\":%llu,\"receiveErrors\":%llu,\"dropped\":%llu,\"ticks\":%llu,\"maxTickGapMs\":",
      (unsigned long long)c.sent, (unsigned long long)c.replies, (unsigned long long)c.duplicates, (unsigned long long)c.late,
      (unsigned long long)c.lost, (unsigned long long)c.skipped_slots, (unsigned long long)c.invalid,
      (unsigned long long)c.send_errors, (unsigned long long)c.neighbor_requests, (unsigned long long)c.neighbor_records,
      (unsigned long long)c.neighbor_send_errors, (unsigned long long)c.frame_errors, (unsigned long long)c.receive_errors,
      (unsigned long long)c.dropped, (unsigned long long)c.ticks);
  put_ms(&l, c.max_tick_gap_ns);
  put(&l, ",\"stalls\":%llu,\"startedAt\":", (unsigned long long)c.stalls);
  put_ms(&l, start_ns);
  put(&l, ",\"stoppedAt\":");
  if (stopped_ns >= 0) put_ms(&l, stopped_ns);
  else put(&l, "null");
  put(&l, ",\"ratePerS\":%.3f,\"cpuUserMs\":%.3f,\"cpuSystemMs\":%.3f", elapsed_s > 0 ? (double)c.sent / elapsed_s : 0.0, user_ms,
      sys_ms);
  // Beyond the Node prober's counters: how late the send thread woke at worst, and how replies were timed.
  put(&l, ",\"maxLateMs\":");
  put_ms(&l, c.max_late_ns);
  put(&l, ",\"rxKernelTimestamps\":%llu,\"rxTimestampFallbacks\":%llu,\"implementation\":\"c\"}",
      (unsigned long long)c.rx_kernel_timestamps, (unsigned long long)c.rx_timestamp_fallbacks);
  emit(&l);
  pthread_mutex_unlock(&state_lock);
}

// ---- receiving ----------------------------------------------------------------------

/**
 * When a packet arrived, on CLOCK_MONOTONIC: its kernel timestamp
 * (CLOCK_REALTIME) moved by the clocks' offset read now; `read_ns` (the
 * monotonic clock read right after recvmsg) when there is none or it is not
 * in [not_before, read_ns]. Caller holds state_lock (counters).
 */
static int64_t arrival_ns(struct msghdr* msg, int64_t read_ns, int64_t real_ns, int64_t not_before) {
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS && cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(cm), sizeof ts);
      int64_t t = ts_ns(&ts) - (real_ns - read_ns);
      if (t >= not_before && t <= read_ns) {
        c.rx_kernel_timestamps++;
        return t;
      }
      break;
    }
  }
  c.rx_timestamp_fallbacks++;
  return read_ns;
}

static void read_clocks(int64_t* mono, int64_t* real) {
  struct timespec m, r;
  clock_gettime(CLOCK_MONOTONIC, &m);
  clock_gettime(CLOCK_REALTIME, &r);
  *mono = ts_ns(&m);
  *real = ts_ns(&r);
}

static uint64_t be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/**
 * One waiting datagram (recvmsg, MSG_DONTWAIT, EINTR retried); -1 when none
 * is waiting or on an error, which is counted.
 */
static ssize_t receive(int fd, struct msghdr* msg) {
  for (;;) {
    ssize_t n = recvmsg(fd, msg, MSG_DONTWAIT);
    if (n >= 0 || errno != EINTR) {
      if (n < 0 && errno != EAGAIN) {
        pthread_mutex_lock(&state_lock);
        c.receive_errors++;
        pthread_mutex_unlock(&state_lock);
      }
      return n;
    }
  }
}

/** Reads the waiting replies, at most RX_BATCH (the next poll round reads the rest). */
static void read_replies(void) {
  uint8_t data[PROBE_LEN + MAX_NAME + 1];
  char control[256];
  struct sockaddr_storage from;
  for (int i = 0; i < RX_BATCH; i++) {
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = receive(udp_fd, &msg);
    if (n < 0) return;
    int64_t read_ns, real_ns;
    read_clocks(&read_ns, &real_ns);
    pthread_mutex_lock(&state_lock);
    size_t name_len = (size_t)n - PROBE_LEN;
    uint32_t seq = 0;
    int64_t sent = 0;
    int valid = n > PROBE_LEN && name_len <= MAX_NAME && !(msg.msg_flags & MSG_TRUNC);
    if (valid) {
      seq = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
      sent = (int64_t)be64(data + 4);
      valid = seq < next_seq && sent >= start_ns && sent <= read_ns;
    }
    if (valid) {
      struct slot* s = &ring[seq & ring_mask];
      if (s->state != FREE && s->seq == seq) {
        if (s->sent_ns != sent) valid = 0;  // the send time must be ours
        else if (s->state == PENDING) {
          s->state = ANSWERED;
          pending_count--;
        } else if (s->state == ANSWERED) {
          c.duplicates++;
        } else {
          c.late++;
          s->state = ANSWERED;
        }
      } else {
        c.late++;  // long gone from the ring: answered after its loss
      }
    }
    if (!valid) {
      c.invalid++;
    } else {
      int64_t at = arrival_ns(&msg, read_ns, real_ns, sent);
      c.replies++;
      struct line l = {.len = 0};
      put(&l, "{\"type\":\"reply\",\"seq\":%u,\"sentAt\":", seq);
      put_ms(&l, sent);
      put(&l, ",\"rttMs\":");
      put_ms(&l, at - sent);
      put(&l, ",\"responder\":");
      put_str(&l, data + PROBE_LEN, name_len);
      put(&l, "}");
      emit(&l);
    }
    pthread_mutex_unlock(&state_lock);
  }
}

static void read_frames(uint8_t* frame) {
  char control[256];
  for (int i = 0; i < RX_BATCH; i++) {
    struct iovec iov = {.iov_base = frame, .iov_len = FRAME_BUFFER_BYTES};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = receive(packet_fd, &msg);
    if (n < 0) return;
    int64_t read_ns, real_ns;
    read_clocks(&read_ns, &real_ns);
    uint8_t mac[6];
    enum kind kind;
    int r = opt.family == 4 ? decode_arp(frame, (size_t)n, opt.target_bytes, mac, &kind)
                            : decode_ndp(frame, (size_t)n, opt.target_bytes, mac, &kind);
    pthread_mutex_lock(&state_lock);
    if (r < 0) {
      c.frame_errors++;
    } else if (kind != KIND_NONE && memcmp(mac, our_mac, 6) != 0 && memcmp(mac, neighbor_mac, 6) != 0) {
      int64_t at = arrival_ns(&msg, read_ns, real_ns, read_ns - 10000 * NS_PER_MS);
      c.neighbor_records++;
      struct line l = {.len = 0};
      put(&l, "{\"type\":\"neighbor\",\"at\":");
      put_ms(&l, at);
      put(&l, ",\"mac\":");
      put_mac(&l, mac);
      put(&l, ",\"kind\":\"%s\"}", KIND_NAMES[kind]);
      emit(&l);
    }
    pthread_mutex_unlock(&state_lock);
  }
}

static void* receive_thread(void* arg) {
  (void)arg;
  uint8_t* frame = malloc(FRAME_BUFFER_BYTES);
  if (!frame) {
    request_stop(R_DONE);
    return NULL;
  }
  struct pollfd fds[4] = {
      {.fd = wake_fd, .events = POLLIN},
      {.fd = udp_fd, .events = POLLIN},
      {.fd = packet_fd, .events = POLLIN},
      {.fd = watch_stdin ? STDIN_FILENO : -1, .events = POLLIN},
  };
  for (;;) {
    int n = poll(fds, 4, RX_POLL_MS);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents) break;  // main says stop
    if (fds[1].revents) read_replies();
    if (fds[2].revents) read_frames(frame);
    if (fds[3].revents) {
      char scratch[4096];
      ssize_t r = read(STDIN_FILENO, scratch, sizeof scratch);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        request_stop(R_STDIN_EOF);
        fds[3].fd = -1;  // stop watching
      }
    }
  }
  free(frame);
  return NULL;
}

// ---- output thread ---------------------------------------------------------------------

static void* flush_thread(void* arg) {
  (void)arg;
  pid_t parent = getppid();
  int64_t period = ms_to_ns(opt.flush_ms);
  int64_t next = mono_ns() + period, last_stats = mono_ns(), last_parent_check = last_stats;
  pthread_mutex_lock(&out_lock);
  while (!flusher_exit) {
    struct timespec until = {.tv_sec = (time_t)(next / 1000000000LL), .tv_nsec = (long)(next % 1000000000LL)};
    // out_cond is initialised with CLOCK_MONOTONIC (see main).
    pthread_cond_timedwait(&out_cond, &out_lock, &until);
    if (flusher_exit) break;
    int64_t now = mono_ns();
    if (now < next) continue;
    next += period;
    if (next <= now) next = now + period;  // behind by more than a period: do not flush in a burst
    pthread_mutex_unlock(&out_lock);
    if (now - last_stats >= STATS_EVERY_NS) {
      last_stats = now;
      emit_stats();
    }
    if (now - last_parent_check >= PARENT_CHECK_NS) {
      last_parent_check = now;
      if (getppid() != parent) request_stop(R_PARENT_GONE);
    }
    flush_out();
    pthread_mutex_lock(&out_lock);
  }
  pthread_mutex_unlock(&out_lock);
  return NULL;
}

// ---- sending ------------------------------------------------------------------------------

/** Caller holds state_lock: the oldest entry becomes lost (pending) or is dropped from the ring. */
static void expire_one(void) {
  struct slot* s = &ring[expire_seq & ring_mask];
  if (s->state == PENDING && s->seq == (uint32_t)expire_seq) {
    s->state = LOST;
    pending_count--;
    c.lost++;
    struct line l = {.len = 0};
    put(&l, "{\"type\":\"lost\",\"seq\":%u,\"sentAt\":", s->seq);
    put_ms(&l, s->sent_ns);
    put(&l, "}");
    emit(&l);
  }
  expire_seq++;
}

static void expire_lost(int64_t now) {
  pthread_mutex_lock(&state_lock);
  int64_t cutoff = now - loss_timeout_ns;
  while (expire_seq < next_seq && ring[expire_seq & ring_mask].sent_ns <= cutoff) expire_one();
  pthread_mutex_unlock(&state_lock);
}

static void send_probe(void) {
  uint8_t probe[PROBE_LEN];
  pthread_mutex_lock(&state_lock);
  // The ring holds a loss timeout of probes and more; should it ever fill, the oldest is declared lost.
  if (next_seq - expire_seq > ring_mask) expire_one();
  uint32_t seq = (uint32_t)next_seq;
  int64_t sent = mono_ns();
  struct slot* s = &ring[next_seq & ring_mask];
  s->seq = seq;
  s->state = PENDING;
  s->sent_ns = sent;
  next_seq++;
  pending_count++;
  c.sent++;
  pthread_mutex_unlock(&state_lock);
  for (int i = 0; i < 4; i++) probe[i] = (uint8_t)(seq >> (24 - 8 * i));
  for (int i = 0; i < 8; i++) probe[4 + i] = (uint8_t)((uint64_t)sent >> (56 - 8 * i));
  ssize_t n;
  do {
    n = sendto(udp_fd, probe, sizeof probe, MSG_DONTWAIT, (struct sockaddr*)&target_addr, target_addr_len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    pthread_mutex_lock(&state_lock);
    c.send_errors++;  // no route, ENOBUFS...: the probe stays pending and will be lost
    pthread_mutex_unlock(&state_lock);
  }
}

static void send_neighbor_request(void) {
  ssize_t n;
  do {
    n = send(packet_fd, neighbor_frame, neighbor_frame_len, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  pthread_mutex_lock(&state_lock);
  if (n < 0) c.neighbor_send_errors++;  // ENETDOWN while the link is down, ENOBUFS: keep probing
  else c.neighbor_requests++;
  pthread_mutex_unlock(&state_lock);
}

static void stall(int64_t from, int64_t to) {
  struct line l = {.len = 0};
  put(&l, "{\"type\":\"stall\",\"from\":");
  put_ms(&l, from);
  put(&l, ",\"to\":");
  put_ms(&l, to);
  put(&l, "}");
  pthread_mutex_lock(&state_lock);
  c.stalls++;
  emit(&l);
  pthread_mutex_unlock(&state_lock);
}

/** The send loop; returns why it stopped. */
static enum reason run(void) {
  uint64_t probe_slots = 0, neighbor_slots = 0;
  uint64_t max_burst = (uint64_t)((stall_ns + interval_ns - 1) / interval_ns);
  if (max_burst < 1) max_burst = 1;
  int64_t duration_ns = opt.duration_ms > 0 ? ms_to_ns(opt.duration_ms) : -1;
  int64_t deadline = start_ns, last_wake = start_ns;
  for (;;) {
    enum reason r = stop_reason();
    if (r != R_NONE) return r;
    int64_t now = mono_ns();
    if (now < deadline) {
      // Woken early (a signal): sleep on.
      struct timespec until = {.tv_sec = (time_t)(deadline / 1000000000LL), .tv_nsec = (long)(deadline % 1000000000LL)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
      continue;
    }
    int64_t late = now - deadline, gap = now - last_wake;
    pthread_mutex_lock(&state_lock);
    c.ticks++;
    if (gap > c.max_tick_gap_ns) c.max_tick_gap_ns = gap;
    if (late > c.max_late_ns) c.max_late_ns = late;
    pthread_mutex_unlock(&state_lock);
    if (late > stall_ns) stall(deadline, now);
    last_wake = now;
    int64_t elapsed = now - start_ns;
    if (duration_ns >= 0 && elapsed >= duration_ns) return R_DONE;

    // UDP probes: every slot start + k × interval that has come, within the burst limit.
    uint64_t due = (uint64_t)(elapsed / interval_ns) + 1;
    if (due - probe_slots > max_burst) {
      uint64_t skipped = due - probe_slots - 1;
      pthread_mutex_lock(&state_lock);
      c.skipped_slots += skipped;
      pthread_mutex_unlock(&state_lock);
      probe_slots = due - 1;
    }
    for (; probe_slots < due; probe_slots++) send_probe();

    // Neighbour requests: at most one per wake-up; a request repeated at once would only be answered twice.
    if (neighbor_frame_len > 0) {
      uint64_t ndue = (uint64_t)(elapsed / neighbor_interval_ns) + 1;
      if (ndue > neighbor_slots) {
        neighbor_slots = ndue;
        send_neighbor_request();
      }
    }
    expire_lost(now);

    deadline = start_ns + (int64_t)probe_slots * interval_ns;
    if (neighbor_frame_len > 0) {
      int64_t nd = start_ns + (int64_t)neighbor_slots * neighbor_interval_ns;
      if (nd < deadline) deadline = nd;
    }
    if (duration_ns >= 0 && start_ns + duration_ns < deadline) deadline = start_ns + duration_ns;
    struct timespec until = {.tv_sec = (time_t)(deadline / 1000000000LL), .tv_nsec = (long)(deadline % 1000000000LL)};
    if (stop_reason() == R_NONE) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
  }
}

// ---- start-up ---------------------------------------------------------------------------------

static void set_buffer(int fd, int bytes) {
  // As root past net.core.rmem_max; otherwise what the limit allows.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

static void open_packet_socket(unsigned ifindex) {
  // Protocol 0 until bound: nothing is queued before the filter is in place.
  packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (packet_fd < 0) fail("cannot open a packet socket: %s", strerror(errno));
  // lib/packets/bpf.ts NEIGHBOR_DISCOVERY_PROGRAM: ARP, and ICMPv6 NS/NA without extension headers.
  struct sock_filter code[] = {
      {0x28, 0, 0, 12},  {0x15, 6, 0, 0x0806}, {0x15, 0, 6, 0x86dd}, {0x30, 0, 0, 20},      {0x15, 0, 4, 58},
      {0x30, 0, 0, 54},  {0x15, 1, 0, 135},    {0x15, 0, 1, 136},    {0x06, 0, 0, 0x40000}, {0x06, 0, 0, 0},
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  if (setsockopt(packet_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) fail("SO_ATTACH_FILTER: %s", strerror(errno));
  int one = 1;
  setsockopt(packet_fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);  // Linux ≥ 4.20; our MACs are ignored anyway
  setsockopt(packet_fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  set_buffer(packet_fd, SOCKET_BUFFER_BYTES);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(opt.family == 4 ? ETH_P_ARP : ETH_P_IPV6);
  sll.sll_ifindex = (int)ifindex;
  if (bind(packet_fd, (struct sockaddr*)&sll, sizeof sll) != 0) fail("cannot bind the packet socket to %s: %s", opt.ifname, strerror(errno));
}

static void open_udp_socket(void) {
  int domain = opt.family == 4 ? AF_INET : AF_INET6;
  udp_fd = socket(domain, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (udp_fd < 0) fail("cannot open a UDP socket: %s", strerror(errno));
  int one = 1;
  setsockopt(udp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  set_buffer(udp_fd, SOCKET_BUFFER_BYTES);
  struct sockaddr_storage any;
  memset(&any, 0, sizeof any);
  memset(&target_addr, 0, sizeof target_addr);
  if (opt.family == 4) {
    ((struct sockaddr_in*)&any)->sin_family = AF_INET;
    struct sockaddr_in* t = (struct sockaddr_in*)&target_addr;
    t->sin_family = AF_INET;
    t->sin_port = htons((uint16_t)opt.port);
    memcpy(&t->sin_addr, opt.target_bytes, 4);
    target_addr_len = sizeof *t;
  } else {
    ((struct sockaddr_in6*)&any)->sin6_family = AF_INET6;
    struct sockaddr_in6* t = (struct sockaddr_in6*)&target_addr;
    t->sin6_family = AF_INET6;
    t->sin6_port = htons((uint16_t)opt.port);
    memcpy(&t->sin6_addr, opt.target_bytes, 16);
    target_addr_len = sizeof *t;
  }
  if (bind(udp_fd, (struct sockaddr*)&any, opt.family == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) != 0) {
    fail("cannot bind the UDP socket: %s", strerror(errno));
  }
}

int main(int argc, char** argv) {
  parse_options(argc, argv, &opt);
  interval_ns = ms_to_ns(opt.interval_ms);
  neighbor_interval_ns = ms_to_ns(opt.neighbor_interval_ms);
  loss_timeout_ns = ms_to_ns(opt.loss_timeout_ms);
  stall_ns = 3 * interval_ns > MIN_STALL_NS ? 3 * interval_ns : MIN_STALL_NS;

  // The interface.
  unsigned ifindex = if_nametoindex(opt.ifname);
  if (ifindex == 0) fail("no interface %s: %s", opt.ifname, strerror(errno));
  {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", opt.ifname);
    int ok = fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
    if (fd >= 0) close(fd);
    if (!ok) fail("interface %s has no Ethernet MAC address", opt.ifname);
    memcpy(our_mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  if (opt.own_identity) memcpy(neighbor_mac, our_mac, 6);
  else phantom_mac(our_mac, neighbor_mac);

  // The neighbour requests' sender address and frame.
  uint8_t source[16];
  int have_source = 0;
  char source_text[INET6_ADDRSTRLEN] = "";
  if (opt.neighbor_interval_ms > 0) {
    if (opt.source) {
      if (inet_pton(opt.family == 4 ? AF_INET : AF_INET6, opt.source, source) != 1) {
        fail("--source must be an IPv%d address, got %s", opt.family, opt.source);
      }
      snprintf(source_text, sizeof source_text, "%s", opt.source);
    } else {
      if (opt.own_identity) {
        if (!choose_own_source(&opt, ifindex, source)) {
          fail("%s has no usable IPv%d address to send neighbour requests from; pass --source, or --neighbor-interval 0", opt.ifname,
               opt.family);
        }
      } else {
        phantom_address(neighbor_mac, opt.target_bytes, opt.family, source);
      }
      inet_ntop(opt.family == 4 ? AF_INET : AF_INET6, source, source_text, sizeof source_text);
    }
    have_source = 1;
    neighbor_frame_len = opt.family == 4 ? arp_request(neighbor_frame, neighbor_mac, source, opt.target_bytes)
                                         : neighbor_solicitation(neighbor_frame, neighbor_mac, source, opt.target_bytes);
  }

  // The ring of probes that can still be answered: a loss timeout of them, the burst, and room.
  uint64_t need = (uint64_t)(loss_timeout_ns / interval_ns) + 4096;
  uint64_t size = 1;
  while (size < need) size <<= 1;
  ring = calloc(size, sizeof *ring);
  if (!ring) fail("out of memory (%llu probe slots)", (unsigned long long)size);
  ring_mask = size - 1;

  open_packet_socket(ifindex);
  open_udp_socket();
  wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) fail("eventfd: %s", strerror(errno));
  struct stat st;
  watch_stdin = fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));

  // Signals: the handler only notes the reason; the other threads never take them.
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: clock_nanosleep returns at once
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigset_t stop_signals, old;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);

  getrusage(RUSAGE_SELF, &usage_at_start);
  start_ns = mono_ns();
  {
    struct line l = {.len = 0};
    put(&l, "{\"type\":\"ready\",\"target\":");
    put_cstr(&l, opt.target);
    put(&l, ",\"family\":%d,\"port\":%d,\"interface\":", opt.family, opt.port);
    put_cstr(&l, opt.ifname);
    put(&l, ",\"ifindex\":%u,\"mac\":", ifindex);
    put_mac(&l, our_mac);
    put(&l, ",\"neighborIdentity\":\"%s\",\"neighborMac\":", opt.own_identity ? "own" : "phantom");
    put_mac(&l, neighbor_mac);
    if (have_source) {
      put(&l, ",\"source\":");
      put_cstr(&l, source_text);
    }
    put(&l, ",\"intervalMs\":");
    put_num(&l, opt.interval_ms);
    put(&l, ",\"neighborProbeIntervalMs\":");
    put_num(&l, opt.neighbor_interval_ms);
    put(&l, ",\"startedAt\":");
    put_ms(&l, start_ns);
    put(&l, "}\n");
    if (write_all(l.buf, l.len) != 0) return 0;  // nobody listens
  }

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&out_cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_attr_t ta;
  pthread_attr_init(&ta);
  pthread_attr_setstacksize(&ta, 256 * 1024);
  pthread_t receiver, flusher;
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
  int rc = pthread_create(&receiver, &ta, receive_thread, NULL);
  int fc = rc == 0 ? pthread_create(&flusher, &ta, flush_thread, NULL) : -1;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&ta);
  if (rc != 0 || fc != 0) {
    if (rc == 0) {
      uint64_t one = 1;
      ssize_t w = write(wake_fd, &one, sizeof one);
      (void)w;
      pthread_join(receiver, NULL);
    }
    fail("cannot start a thread: %s", strerror(rc != 0 ? rc : fc));
  }

  enum reason reason = run();

  // Stop: wait for replies in flight, at most min(200 ms, loss timeout).
  pthread_mutex_lock(&state_lock);
  stopped_ns = mono_ns();
  pthread_mutex_unlock(&state_lock);
  int64_t drain = loss_timeout_ns < MAX_DRAIN_NS ? loss_timeout_ns : MAX_DRAIN_NS;
  for (int i = 0; i < 1000; i++) {
    pthread_mutex_lock(&state_lock);
    uint64_t pending = pending_count;
    pthread_mutex_unlock(&state_lock);
    if (pending == 0 || mono_ns() - stopped_ns >= drain) break;
    struct timespec two_ms = {0, 2 * NS_PER_MS};
    nanosleep(&two_ms, NULL);
  }
  uint64_t one = 1;
  ssize_t w = write(wake_fd, &one, sizeof one);
  (void)w;
  pthread_join(receiver, NULL);
  pthread_mutex_lock(&out_lock);
  flusher_exit = 1;
  pthread_cond_signal(&out_cond);
  pthread_mutex_unlock(&out_lock);
  // The flush thread may be stuck in write(2) to a reader that does not read: give up on the output then.
  struct timespec give_up;
  clock_gettime(CLOCK_REALTIME, &give_up);
  give_up.tv_sec += 2;
  if (pthread_timedjoin_np(flusher, NULL, &give_up) != 0) return 0;

  pthread_mutex_lock(&state_lock);
  while (expire_seq < next_seq) expire_one();
  pthread_mutex_unlock(&state_lock);
  // A stop noticed by another thread meanwhile (stdout closed) decides whether the end can be written.
  if (atomic_load(&thread_reason) == R_STDOUT_CLOSED) reason = R_STDOUT_CLOSED;
  emit_stats();
  struct line l = {.len = 0};
  put(&l, "{\"type\":\"end\",\"reason\":\"%s\"}", REASONS[reason]);
  emit(&l);
  if (reason != R_STDOUT_CLOSED) flush_out();
  close(udp_fd);
  close(packet_fd);
  close(wake_fd);
  free(ring);
  free(out_buf);
  return 0;
}
