// garp_floor: the kernel floor for vipa's announcement sends.
//
// Sends byte-for-byte the frames vipa encodes (the bench passes vipa's own
// bytes in), on a socket set up like native/socket.cc's send socket:
// socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), bound with
// bind(2) to the interface with protocol 0 (packet(7): receives nothing),
// then one send(2) per frame, the syscall vipa's LinkSocket.send makes.
// Whatever vipa spends beyond this program is JavaScript, N-API and
// allocation.
//
//   garp_floor send --ifindex N --frame HEX [--count N] [--warmup W] [--batch B] [--samples]
//     Sends the frame N times, twice:
//       1. each send timed alone (clock_gettime(CLOCK_MONOTONIC) around it,
//          as tinybench times one task call);
//       2. sends timed in batches of B (no clock inside a batch): per-send
//          ns of each batch.
//   garp_floor bulk --ifindex N --frames FILE [--rounds R] [--warmup W] [--samples]
//     Per round: sends every frame of FILE (one frame per line, hex) once,
//     timed as a whole (e.g. 1000 addresses, one frame each).
//   --samples adds the raw samples, in run order, to the output.
//
// Output: one JSON object on stdout; durations in nanoseconds. A failed
// send ends the program with status 1 and the errno on stderr. Every loop is
// bounded by its count arguments, which are capped.

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 10000000L
#define MAX_FRAMES 100000
#define MAX_ROUNDS 100000
#define MAX_FRAME 1514

static int sock = -1;

static void die(const char* what) {
  fprintf(stderr, "garp_floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: garp_floor send --ifindex N --frame HEX [--count N] [--warmup W] [--batch B] [--samples]\n"
          "       garp_floor bulk --ifindex N --frames FILE [--rounds R] [--warmup W] [--samples]\n");
  exit(2);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void open_socket(int ifindex) {
  sock = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket");
  struct sockaddr_ll addr;
  memset(&addr, 0, sizeof addr);
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = 0;
  addr.sll_ifindex = ifindex;
  if (bind(sock, (struct sockaddr*)&addr, sizeof addr) != 0) die("bind");
}

static void send_frame(const unsigned char* frame, size_t len) {
  ssize_t n;
  do {
    n = send(sock, frame, len, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) die("send");
}

static size_t parse_hex(const char* hex, unsigned char* out, size_t cap) {
  size_t len = 0;
  for (const char* p = hex; *p && *p != '\n' && *p != '\r';) {
    if (p[1] == 0 || p[1] == '\n') {
      fprintf(stderr, "garp_floor: odd number of hex digits\n");
      exit(2);
    }
    if (len == cap) {
      fprintf(stderr, "garp_floor: frame longer than %zu bytes\n", cap);
      exit(2);
    }
    unsigned int byte;
    if (sscanf(p, "%2x", &byte) != 1) {
      fprintf(stderr, "garp_floor: not hex: %.2s\n", p);
      exit(2);
    }
    out[len++] = (unsigned char)byte;
    p += 2;
  }
  return len;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

// Linear interpolation between closest ranks: tinybench's and bench/lib/stats.ts's method.
static double quantile(const uint64_t* sorted, long n, double q) {
  double pos = (double)(n - 1) * q;
  long lo = (long)pos;
  long hi = lo + 1 < n ? lo + 1 : n - 1;
  return (double)sorted[lo] + ((double)sorted[hi] - (double)sorted[lo]) * (pos - (double)lo);
}

static void print_stats(const char* name, const uint64_t* samples, long n) {
  if (n == 0) {
    printf("\"%s\":null", name);
    return;
  }
  uint64_t* s = malloc(sizeof *s * (size_t)n);
  if (!s) die("malloc");
  memcpy(s, samples, sizeof *s * (size_t)n);
  qsort(s, (size_t)n, sizeof *s, cmp_u64);
  double sum = 0;
  for (long i = 0; i < n; i++) sum += (double)s[i];
  printf("\"%s\":{\"samples\":%ld,\"median\":%.1f,\"mean\":%.1f,\"p75\":%.1f,\"p99\":%.1f,\"min\":%llu,\"max\":%llu}", name, n,
         quantile(s, n, 0.5), sum / (double)n, quantile(s, n, 0.75), quantile(s, n, 0.99), (unsigned long long)s[0],
         (unsigned long long)s[n - 1]);
  free(s);
}

static void print_samples(const char* name, const uint64_t* samples, long n) {
  printf(",\"%s\":[", name);
  for (long i = 0; i < n; i++) printf("%s%llu", i ? "," : "", (unsigned long long)samples[i]);
  printf("]");
}

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const char* mode = argv[1];
  int ifindex = 0;
  const char* frame_hex = NULL;
  const char* frames_file = NULL;
  long count = 1000, warmup = 100, batch = 100, rounds = 10;
  int want_samples = 0;
  static struct option opts[] = {
      {"ifindex", required_argument, 0, 'i'}, {"frame", required_argument, 0, 'f'}, {"frames", required_argument, 0, 'F'},
      {"count", required_argument, 0, 'n'},   {"warmup", required_argument, 0, 'w'}, {"batch", required_argument, 0, 'b'},
      {"rounds", required_argument, 0, 'r'},  {"samples", no_argument, 0, 's'},      {0, 0, 0, 0},
  };
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'i': ifindex = atoi(optarg); break;
      case 'f': frame_hex = optarg; break;
      case 'F': frames_file = optarg; break;
      case 'n': count = atol(optarg); break;
      case 'w': warmup = atol(optarg); break;
      case 'b': batch = atol(optarg); break;
      case 'r': rounds = atol(optarg); break;
      case 's': want_samples = 1; break;
      default: usage();
    }
  }
  if (ifindex <= 0) usage();
  if (count < 1 || count > MAX_COUNT || warmup < 0 || warmup > MAX_COUNT || batch < 1 || batch > count || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "garp_floor: count 1..%ld, warmup 0..%ld, batch 1..count, rounds 1..%d\n", MAX_COUNT, MAX_COUNT, MAX_ROUNDS);
    return 2;
  }
  open_socket(ifindex);

  if (strcmp(mode, "send") == 0) {
    if (!frame_hex) usage();
    unsigned char frame[MAX_FRAME];
    size_t len = parse_hex(frame_hex, frame, sizeof frame);
    for (long i = 0; i < warmup; i++) send_frame(frame, len);
    uint64_t* each = malloc(sizeof *each * (size_t)count);
    long batches = count / batch;
    uint64_t* per_batch = malloc(sizeof *per_batch * (size_t)(batches > 0 ? batches : 1));
    if (!each || !per_batch) die("malloc");
    for (long i = 0; i < count; i++) {
      uint64_t t0 = now_ns();
      send_frame(frame, len);
      each[i] = now_ns() - t0;
    }
    for (long b = 0; b < batches; b++) {
      uint64_t t0 = now_ns();
      for (long i = 0; i < batch; i++) send_frame(frame, len);
      per_batch[b] = (now_ns() - t0) / (uint64_t)batch;
    }
    printf("{\"mode\":\"send\",\"bytes\":%zu,\"count\":%ld,\"warmup\":%ld,\"batch\":%ld,", len, count, warmup, batch);
    print_stats("perSend", each, count);
    printf(",");
    print_stats("perSendInBatches", per_batch, batches);
    if (want_samples) {
      print_samples("perSendSamples", each, count);
      print_samples("perSendInBatchesSamples", per_batch, batches);
    }
    printf("}\n");
    free(each);
    free(per_batch);
    return 0;
  }

  if (strcmp(mode, "bulk") == 0) {
    if (!frames_file) usage();
    FILE* f = fopen(frames_file, "r");
    if (!f) die(frames_file);
    unsigned char(*frames)[MAX_FRAME] = malloc(sizeof *frames * MAX_FRAMES);
    size_t* lens = malloc(sizeof *lens * MAX_FRAMES);
    if (!frames || !lens) die("malloc");
    long n = 0;
    char line[2 * MAX_FRAME + 4];
    while (n < MAX_FRAMES && fgets(line, sizeof line, f)) {
      if (line[0] == '\n' || line[0] == 0) continue;
      lens[n] = parse_hex(line, frames[n], MAX_FRAME);
      n++;
    }
    fclose(f);
    if (n == 0) {
      fprintf(stderr, "garp_floor: no frames in %s\n", frames_file);
      return 2;
    }
    for (long r = 0; r < warmup && r < MAX_ROUNDS; r++)
      for (long i = 0; i < n; i++) send_frame(frames[i], lens[i]);
    uint64_t* per_round = malloc(sizeof *per_round * (size_t)rounds);
    if (!per_round) die("malloc");
    for (long r = 0; r < rounds; r++) {
      uint64_t t0 = now_ns();
      for (long i = 0; i < n; i++) send_frame(frames[i], lens[i]);
      per_round[r] = now_ns() - t0;
    }
    printf("{\"mode\":\"bulk\",\"frames\":%ld,\"rounds\":%ld,\"warmup\":%ld,", n, rounds, warmup);
    print_stats("perRound", per_round, rounds);
    if (want_samples) print_samples("roundsInOrder", per_round, rounds);
    printf("}\n");
    free(per_round);
    free(frames);
    free(lens);
    return 0;
  }
  usage();
  return 2;
}
