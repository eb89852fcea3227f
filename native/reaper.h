// The reaper: a child process that deletes this process's addresses when it
// dies, however it dies (SIGKILL, crash, OOM kill).
//
// A kernel address outlives the process that added it; keepalived leaves its
// virtual address on a host whose daemon was killed, so two hosts answer for
// it. vipa forks a small child at start. The parent keeps it informed of the
// RTM_DELADDR requests that would remove everything it holds (encoded in
// TypeScript; this file only moves bytes). The child waits on a pipe. It is
// forked by a sentinel thread that parks for the reaper's life, and asks for
// a signal when that thread exits (PR_SET_PDEATHSIG): a killed process's
// threads exit at once, while the pipe's EOF waits until its last thread has
// torn the process's memory down (10-20 ms for Node, far more on a loaded
// host). On that signal, or on EOF, without a "quit" first, the child sends
// those requests on a netlink socket it opened
// in the right namespace before the fork, then sends the last "notify"
// datagram (a pre-signed leave message) to each listed peer over UDP, so
// peers take over at once instead of waiting to detect the death, and exits.
// With a lead time (in the notify payload) the child notifies first, waits
// the lead while the next holder adds and announces, then deletes: clients
// see no gap, two hosts answer for at most the lead.
//
// After fork(2) in a multithreaded process the child may only call
// async-signal-safe functions (fork(2), signal-safety(7)): it uses read,
// sendto, recvfrom, bind, close_range, sigaction, sigprocmask, fcntl, prctl,
// sched_setscheduler, ppoll and clock_gettime (raw syscalls where libc's
// wrappers are not on that list) and _exit on memory mapped before the fork,
// nothing else.
#pragma once

#include <napi.h>
#include <pthread.h>
#include <sys/types.h>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "fd.h"

namespace vipa {

class Reaper : public Napi::ObjectWrap<Reaper> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Reaper(const Napi::CallbackInfo& info);
  ~Reaper() override;

  // Closes the pipe without "quit": the child deletes the addresses. Used on
  // environment teardown (the engine is gone) and by the destructor.
  void Abandon();

 private:
  Napi::Value Arm(const Napi::CallbackInfo& info);
  Napi::Value Notify(const Napi::CallbackInfo& info);
  Napi::Value Quit(const Napi::CallbackInfo& info);
  Napi::Value GetPid(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  void WriteFrame(Napi::Env env, uint8_t type, const uint8_t* data, uint32_t length);
  void Reap(bool block);
  void StopSentinel();

  // What the sentinel thread needs to fork the child, and its answer.
  struct SentinelStart {
    int pipe_fd = -1;
    int netlink_fd = -1;
    int packet_fd = -1;
    uint8_t* buffers = nullptr;
    size_t max_bytes = 0;
    int park_fd = -1;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    pid_t pid = -1;
    int error = 0;
  };
  static void* SentinelMain(void* arg);

  UniqueFd pipe_;
  pid_t pid_ = -1;
  pthread_t sentinel_{};
  bool sentinel_running_ = false;
  UniqueFd park_;
  size_t max_bytes_ = 0;
  Napi::Env env_;
};

}  // namespace vipa
