#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>

#include <cstdio>
#include <cstdlib>

namespace vipa {

NetnsScope::NetnsScope(const NetnsTarget& target, int& error, const char*& syscall) {
  error = 0;
  if (target.Empty()) return;
  UniqueFd opened;
  int target_fd = target.fd;
  if (!target.path.empty()) {
    opened.Reset(::open(target.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!opened.Valid()) {
      error = errno;
      syscall = "open";
      return;
    }
    target_fd = opened.Get();
  }
  // /proc/thread-self: the namespace of this thread, not of the thread group leader.
  original_.Reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original_.Valid()) {
    error = errno;
    syscall = "open";
    return;
  }
  if (::setns(target_fd, CLONE_NEWNET) != 0) {
    error = errno;
    syscall = "setns";
    return;
  }
  entered_ = true;
}

NetnsScope::~NetnsScope() {
  if (!entered_) return;
  if (::setns(original_.Get(), CLONE_NEWNET) != 0) {
    // The Node main thread would keep running in a foreign namespace and every
    // later socket would silently land there: stop rather than corrupt state.
    std::fprintf(stderr, "vipa: cannot return to the original network namespace (errno %d)\n", errno);
    std::abort();
  }
}

}  // namespace vipa
