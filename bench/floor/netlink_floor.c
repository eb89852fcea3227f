// netlink_floor: the kernel floor for vipa's address requests.
//
// Sends byte-for-byte the requests lib/netlink/address.ts encodes (checked by
// the bench with `dump`), on a socket set up like native/socket.cc
// (NETLINK_EXT_ACK, NETLINK_CAP_ACK, 1 MiB receive buffer, like
// lib/netlink/netlink.ts), with the same syscalls per request as vipa's
// synchronous path: one sendto(2), then one recv(2) per ack. Whatever vipa
// spends beyond this program is JavaScript, N-API and allocation.
//
//   netlink_floor pair --ifindex N --address A [--prefix P] [--flags F]
//                      [--pairs N] [--batch B] [--warmup W]
//     Adds and deletes A, N times, twice:
//       1. each pair timed alone (clock_gettime around add+delete, as
//          tinybench times one task call): median/mean/p75/p99 of N samples;
//       2. pairs timed in batches of B (no clock inside a batch):
//          per-pair ns of each batch, median over the N/B batches, and
//          total/N over the whole pass.
//   netlink_floor bulk --ifindex N --list FILE [--prefix P] [--flags F]
//                      [--chunk K] [--rounds R] [--warmup W] [--settle-ms S]
//                      [--pause-ms Q]
//     Per round: sleeps Q ms (default 0; so that a timed round starts in a
//     process just woken from a sleep, as a daemon's takeover does), adds
//     every address of FILE (one per line), K requests per
//     sendto(2) followed by their K acks (as addrBatchSync does with
//     BATCH_CHUNK), timed; then deletes them the same way and sleeps S ms,
//     both untimed (the sleep lets the kernel's deferred work for the
//     deleted addresses finish, so every round starts from the same state).
//   netlink_floor dump --ifindex N --address A [--prefix P] [--flags F]
//     Prints the add and delete requests as hex (sequence number 0).
//   --lease S [--proto P] (every mode): the adds are the takeover write's
//     requests instead (VipaNode.writeAddresses: 'replace' with both
//     lifetimes S seconds and IFA_PROTO P), byte for byte.
//   --samples (pair, bulk) adds the raw samples, in run order, to the output.
//
// Output: one JSON object on stdout; durations in nanoseconds. Any kernel
// error ends the program with status 1 and the errno on stderr. Every loop is
// bounded by its count arguments, which are capped.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef IFA_FLAGS
#define IFA_FLAGS 8
#endif

#define MAX_PAIRS 10000000L
#define MAX_ADDRESSES 100000
#define MAX_ROUNDS 10000
#define MAX_CHUNK 1024
// Largest request: header 16 + ifaddrmsg 8 + two IPv6 attributes 2*20 + flags 8
// + cacheinfo 20 + proto 8.
#define MAX_REQUEST 108

struct addr {
  int family;
  unsigned char bytes[16];
  int size;
};

// The takeover write's form (--lease): NLM_F_REPLACE instead of NLM_F_EXCL,
// IFA_CACHEINFO with the lease as both lifetimes, IFA_PROTO. 0 = a plain add.
static uint32_t lease_s = 0;
static int proto = -1;

static int sock = -1;
static uint32_t seq = 1;
static unsigned char rxbuf[65536];

static void die(const char* what) {
  fprintf(stderr, "netlink_floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void open_socket(void) {
  sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) die("socket");
  int one = 1;
  // Best effort, as in native/socket.cc.
  setsockopt(sock, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(sock, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // 1 MiB, forced when allowed, as Netlink's constructor does (REQUEST_RECEIVE_BUFFER).
  int size = 1 << 20;
  if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0 &&
      setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0) {
    die("setsockopt SO_RCVBUF");
  }
  if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0 &&
      setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0) {
    die("setsockopt SO_SNDBUF");
  }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(sock, (struct sockaddr*)&local, sizeof local) != 0) die("bind");
}

static int parse_addr(const char* text, struct addr* out) {
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, text, out->bytes) == 1) {
    out->family = AF_INET;
    out->size = 4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, out->bytes) == 1) {
    out->family = AF_INET6;
    out->size = 16;
    return 0;
  }
  return -1;
}

static size_t put_attr(unsigned char* p, unsigned short type, const void* data, unsigned short len) {
  struct rtattr* rta = (struct rtattr*)p;
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  memset((unsigned char*)RTA_DATA(rta) + len, 0, RTA_SPACE(len) - RTA_LENGTH(len));
  return RTA_SPACE(len);
}

// Encodes what encodeAddressRequest() encodes for an add (RTM_NEWADDR,
// REQUEST|ACK|CREATE|EXCL, IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS), or with
// --lease for a 'replace' with lifetimes and a proto (REQUEST|ACK|CREATE|
// REPLACE, then IFA_CACHEINFO and IFA_PROTO: VipaNode's takeover write), or a
// delete (RTM_DELADDR, REQUEST|ACK, IFA_LOCAL, IFA_ADDRESS). Returns its length.
static size_t encode(unsigned char* p, int add, const struct addr* a, int prefix, uint32_t flags, int ifindex, uint32_t s) {
  struct nlmsghdr* h = (struct nlmsghdr*)p;
  h->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | (lease_s ? NLM_F_REPLACE : NLM_F_EXCL) : 0);
  h->nlmsg_seq = s;
  h->nlmsg_pid = 0;
  struct ifaddrmsg* ifa = (struct ifaddrmsg*)(p + NLMSG_HDRLEN);
  ifa->ifa_family = (unsigned char)a->family;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_flags = (unsigned char)(flags & 0xff);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (uint32_t)ifindex;
  size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *ifa);
  len += put_attr(p + len, IFA_LOCAL, a->bytes, (unsigned short)a->size);
  len += put_attr(p + len, IFA_ADDRESS, a->bytes, (unsigned short)a->size);
  if (add) len += put_attr(p + len, IFA_FLAGS, &flags, sizeof flags);
  if (add && lease_s) {
    struct ifa_cacheinfo ci = {.ifa_prefered = lease_s, .ifa_valid = lease_s};
    len += put_attr(p + len, IFA_CACHEINFO, &ci, sizeof ci);
  }
  if (add && proto >= 0) {
    unsigned char b = (unsigned char)proto;
    len += put_attr(p + len, IFA_PROTO, &b, 1);
  }
  h->nlmsg_len = (uint32_t)len;
  return len;
}

static void send_all(const unsigned char* buf, size_t len) {
  static const struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do {
    n = sendto(sock, buf, len, 0, (const struct sockaddr*)&kernel, sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) die("sendto");
  if ((size_t)n != len) {
    errno = EMSGSIZE;
    die("sendto (short)");
  }
}

// Reads acks until `count` of them (sequence numbers first..first+count-1)
// have arrived; one recv(2) per datagram, as NetlinkConnection.exchangeSync.
static void read_acks(uint32_t first, int count) {
  int remaining = count;
  for (int guard = 0; remaining > 0; guard++) {
    if (guard > 4 * count + 16) {
      errno = EPROTO;
      die("too many datagrams without the expected acks");
    }
    ssize_t n;
    do {
      n = recv(sock, rxbuf, sizeof rxbuf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) die("recv");
    int len = (int)n;
    for (struct nlmsghdr* h = (struct nlmsghdr*)rxbuf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_seq - first >= (uint32_t)count) continue;
      struct nlmsgerr* e = (struct nlmsgerr*)NLMSG_DATA(h);
      if (e->error != 0) {
        errno = -e->error;
        fprintf(stderr, "netlink_floor: request seq %u failed: %s\n", h->nlmsg_seq, strerror(errno));
        exit(1);
      }
      remaining--;
    }
  }
}

// One request, one ack: the synchronous path of addrAddSync / addrDelSync.
static void request(const unsigned char* msg, size_t len) {
  uint32_t s = ((const struct nlmsghdr*)msg)->nlmsg_seq;
  send_all(msg, len);
  read_acks(s, 1);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

// Percentile with linear interpolation between closest ranks (as tinybench's quantiles).
static double quantile(const uint64_t* sorted, long n, double q) {
  if (n == 0) return 0;
  double pos = (double)(n - 1) * q;
  long lo = (long)pos;
  long hi = lo + 1 < n ? lo + 1 : lo;
  return (double)sorted[lo] + ((double)sorted[hi] - (double)sorted[lo]) * (pos - (double)lo);
}

static void print_stats(const char* name, uint64_t* v, long n, double scale) {
  qsort(v, (size_t)n, sizeof *v, cmp_u64);
  double sum = 0;
  for (long i = 0; i < n; i++) sum += (double)v[i];
  printf("\"%s\":{\"samples\":%ld,\"median\":%.1f,\"mean\":%.1f,\"p75\":%.1f,\"p99\":%.1f,\"min\":%.1f,\"max\":%.1f}", name, n,
         quantile(v, n, 0.5) / scale, sum / (double)n / scale, quantile(v, n, 0.75) / scale, quantile(v, n, 0.99) / scale,
         (double)v[0] / scale, (double)v[n - 1] / scale);
}

struct options {
  int ifindex;
  const char* address;
  const char* list;
  int prefix;
  uint32_t flags;
  long pairs;
  long batch;
  long warmup;
  long chunk;
  long rounds;
  long settle_ms;
  long pause_ms;
  int samples;
};

static long parse_long(const char* s, long lo, long hi, const char* what) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "netlink_floor: %s must be %ld..%ld, got '%s'\n", what, lo, hi, s);
    exit(2);
  }
  return v;
}

// Raw samples in run order, so the bench can pool them with other blocks.
static void print_samples(const char* name, const uint64_t* v, long n, double scale) {
  printf("\"%s\":[", name);
  for (long i = 0; i < n; i++) printf("%s%.1f", i ? "," : "", (double)v[i] / scale);
  printf("],");
}

static void sleep_ms(long ms) {
  if (ms <= 0) return;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void run_pair(const struct options* o) {
  struct addr a;
  if (!o->address || parse_addr(o->address, &a) != 0) {
    fprintf(stderr, "netlink_floor: --address is required and must be an IP address\n");
    exit(2);
  }
  int prefix = o->prefix >= 0 ? o->prefix : a.size * 8;
  unsigned char add[MAX_REQUEST], del[MAX_REQUEST];
  uint64_t* single = malloc(sizeof(uint64_t) * (size_t)o->pairs);
  long batches = o->pairs / o->batch;
  uint64_t* batched = malloc(sizeof(uint64_t) * (size_t)(batches > 0 ? batches : 1));
  if (!single || !batched) die("malloc");

  for (long i = 0; i < o->warmup; i++) {
    request(add, encode(add, 1, &a, prefix, o->flags, o->ifindex, seq++));
    request(del, encode(del, 0, &a, prefix, o->flags, o->ifindex, seq++));
  }
  struct rusage ru0, ru1;
  struct timespec cpu0, cpu1;
  getrusage(RUSAGE_SELF, &ru0);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
  // Pass 1: each pair timed on its own. Encoding is inside the timed region,
  // as it is for vipa (a fresh sequence number goes into every request).
  for (long i = 0; i < o->pairs; i++) {
    uint64_t t0 = now_ns();
    request(add, encode(add, 1, &a, prefix, o->flags, o->ifindex, seq++));
    request(del, encode(del, 0, &a, prefix, o->flags, o->ifindex, seq++));
    single[i] = now_ns() - t0;
  }
  // Pass 2: batches of o->batch pairs, no clock reads inside a batch.
  uint64_t total = 0;
  for (long b = 0; b < batches; b++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < o->batch; i++) {
      request(add, encode(add, 1, &a, prefix, o->flags, o->ifindex, seq++));
      request(del, encode(del, 0, &a, prefix, o->flags, o->ifindex, seq++));
    }
    uint64_t dt = now_ns() - t0;
    total += dt;
    batched[b] = dt;
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
  getrusage(RUSAGE_SELF, &ru1);
  double cpu_ns = (double)(cpu1.tv_sec - cpu0.tv_sec) * 1e9 + (double)(cpu1.tv_nsec - cpu0.tv_nsec);
  printf("{\"mode\":\"pair\",\"address\":\"%s\",\"prefix\":%d,\"flags\":%u,\"pairs\":%ld,\"warmup\":%ld,\"batch\":%ld,", o->address, prefix,
         o->flags, o->pairs, o->warmup, o->batch);
  if (o->samples) {
    print_samples("perPairSamples", single, o->pairs, 1.0);
    print_samples("perPairInBatchesSamples", batched, batches, (double)o->batch);
  }
  print_stats("perPair", single, o->pairs, 1.0);
  printf(",");
  if (batches > 0) print_stats("perPairInBatches", batched, batches, (double)o->batch);
  else printf("\"perPairInBatches\":null");
  // Over both passes: involuntary context switches per pair (kernel work
  // queued by the address changes, run by kworkers that preempt this
  // process) and this thread's CPU time per pair (user + system, without
  // the time it spent preempted).
  long all = o->pairs + batches * o->batch;
  printf(",\"totalOverN\":%.1f,\"involuntarySwitchesPerPair\":%.3f,\"threadCpuNsPerPair\":%.1f}\n",
         batches > 0 ? (double)total / (double)(batches * o->batch) : 0.0, (double)(ru1.ru_nivcsw - ru0.ru_nivcsw) / (double)all, cpu_ns / (double)all);
  free(single);
  free(batched);
}

static void bulk_pass(int add, const struct addr* list, int n, int prefix, uint32_t flags, int ifindex, long chunk, unsigned char* buf) {
  for (int from = 0; from < n; from += (int)chunk) {
    int to = from + (int)chunk < n ? from + (int)chunk : n;
    uint32_t first = seq;
    size_t len = 0;
    for (int i = from; i < to; i++) len += encode(buf + len, add, &list[i], prefix, flags, ifindex, seq++);
    send_all(buf, len);
    read_acks(first, to - from);
  }
}

static void run_bulk(const struct options* o) {
  if (!o->list) {
    fprintf(stderr, "netlink_floor: --list is required\n");
    exit(2);
  }
  FILE* f = fopen(o->list, "r");
  if (!f) die(o->list);
  struct addr* list = malloc(sizeof(struct addr) * MAX_ADDRESSES);
  if (!list) die("malloc");
  int n = 0;
  char line[128];
  while (n < MAX_ADDRESSES && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0') continue;
    if (parse_addr(line, &list[n]) != 0) {
      fprintf(stderr, "netlink_floor: bad address '%s' in %s\n", line, o->list);
      exit(2);
    }
    n++;
  }
  fclose(f);
  if (n == 0) {
    fprintf(stderr, "netlink_floor: %s holds no address\n", o->list);
    exit(2);
  }
  int prefix = o->prefix >= 0 ? o->prefix : list[0].size * 8;
  unsigned char* buf = malloc((size_t)MAX_REQUEST * (size_t)o->chunk);
  uint64_t* rounds = malloc(sizeof(uint64_t) * (size_t)o->rounds);
  if (!buf || !rounds) die("malloc");
  for (long r = 0; r < o->warmup; r++) {
    bulk_pass(1, list, n, prefix, o->flags, o->ifindex, o->chunk, buf);
    bulk_pass(0, list, n, prefix, o->flags, o->ifindex, o->chunk, buf);
    sleep_ms(o->settle_ms);
  }
  for (long r = 0; r < o->rounds; r++) {
    sleep_ms(o->pause_ms);
    uint64_t t0 = now_ns();
    bulk_pass(1, list, n, prefix, o->flags, o->ifindex, o->chunk, buf);
    rounds[r] = now_ns() - t0;
    bulk_pass(0, list, n, prefix, o->flags, o->ifindex, o->chunk, buf);  // untimed: restores the starting state
    sleep_ms(o->settle_ms);                                                  // untimed: lets deferred kernel work finish
  }
  printf("{\"mode\":\"bulk\",\"count\":%d,\"prefix\":%d,\"flags\":%u,\"lease\":%u,\"proto\":%d,\"chunk\":%ld,\"rounds\":%ld,\"warmup\":%ld,\"settleMs\":%ld,\"pauseMs\":%ld,", n, prefix,
         o->flags, lease_s, proto, o->chunk, o->rounds, o->warmup, o->settle_ms, o->pause_ms);
  // Rounds in the order they ran (print_stats sorts), to show drift across rounds.
  printf("\"roundsInOrder\":[");
  for (long r = 0; r < o->rounds; r++) printf("%s%llu", r ? "," : "", (unsigned long long)rounds[r]);
  printf("],");
  print_stats("perRound", rounds, o->rounds, 1.0);
  printf("}\n");
  free(buf);
  free(rounds);
  free(list);
}

static void run_dump(const struct options* o) {
  struct addr a;
  if (!o->address || parse_addr(o->address, &a) != 0) {
    fprintf(stderr, "netlink_floor: --address is required\n");
    exit(2);
  }
  int prefix = o->prefix >= 0 ? o->prefix : a.size * 8;
  unsigned char msg[MAX_REQUEST];
  for (int add = 1; add >= 0; add--) {
    size_t len = encode(msg, add, &a, prefix, o->flags, o->ifindex, 0);
    printf("%s ", add ? "add" : "del");
    for (size_t i = 0; i < len; i++) printf("%02x", msg[i]);
    printf("\n");
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: netlink_floor pair|bulk|dump --ifindex N ...\n");
    return 2;
  }
  const char* mode = argv[1];
  struct options o = {.prefix = -1, .pairs = 10000, .batch = 100, .warmup = 100, .chunk = 128, .rounds = 10};
  static const struct option longopts[] = {
      {"ifindex", required_argument, 0, 'i'}, {"address", required_argument, 0, 'a'}, {"list", required_argument, 0, 'l'},
      {"prefix", required_argument, 0, 'p'},  {"flags", required_argument, 0, 'f'},   {"pairs", required_argument, 0, 'n'},
      {"batch", required_argument, 0, 'b'},   {"warmup", required_argument, 0, 'w'},  {"chunk", required_argument, 0, 'k'},
      {"rounds", required_argument, 0, 'r'},  {"settle-ms", required_argument, 0, 's'}, {"samples", no_argument, 0, 'S'},
      {"lease", required_argument, 0, 'L'},   {"proto", required_argument, 0, 'P'},   {"pause-ms", required_argument, 0, 'Q'},
      {0, 0, 0, 0}};
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'i': o.ifindex = (int)parse_long(optarg, 1, 0x7fffffff, "--ifindex"); break;
      case 'a': o.address = optarg; break;
      case 'l': o.list = optarg; break;
      case 'p': o.prefix = (int)parse_long(optarg, 0, 128, "--prefix"); break;
      case 'f': o.flags = (uint32_t)parse_long(optarg, 0, 0xffffffffL, "--flags"); break;
      case 'n': o.pairs = parse_long(optarg, 1, MAX_PAIRS, "--pairs"); break;
      case 'b': o.batch = parse_long(optarg, 1, MAX_PAIRS, "--batch"); break;
      case 'w': o.warmup = parse_long(optarg, 0, MAX_PAIRS, "--warmup"); break;
      case 'k': o.chunk = parse_long(optarg, 1, MAX_CHUNK, "--chunk"); break;
      case 'r': o.rounds = parse_long(optarg, 1, MAX_ROUNDS, "--rounds"); break;
      case 's': o.settle_ms = parse_long(optarg, 0, 60000, "--settle-ms"); break;
      case 'S': o.samples = 1; break;
      case 'L': lease_s = (uint32_t)parse_long(optarg, 1, 0xfffffffeL, "--lease"); break;
      case 'P': proto = (int)parse_long(optarg, 0, 255, "--proto"); break;
      case 'Q': o.pause_ms = parse_long(optarg, 0, 60000, "--pause-ms"); break;
      default: return 2;
    }
  }
  if (o.ifindex == 0) {
    fprintf(stderr, "netlink_floor: --ifindex is required\n");
    return 2;
  }
  if (strcmp(mode, "dump") == 0) {
    run_dump(&o);
    return 0;
  }
  open_socket();
  if (strcmp(mode, "pair") == 0) run_pair(&o);
  else if (strcmp(mode, "bulk") == 0) run_bulk(&o);
  else {
    fprintf(stderr, "netlink_floor: unknown mode '%s'\n", mode);
    return 2;
  }
  close(sock);
  return 0;
}
