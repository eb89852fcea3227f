// Creating a socket inside another network namespace.
//
// A socket belongs to the namespace its creating thread was in at socket(2)
// time and stays there. NetnsScope moves the calling thread into the target
// namespace with setns(2) and moves it back on destruction; only the calling
// thread is affected (setns(2): "reassociate thread with a namespace").
#pragma once

#include <string>

#include "fd.h"

namespace vipa {

// Which namespace to enter: a path such as /run/netns/NAME or
// /proc/PID/ns/net, or an fd the caller owns. Empty = current namespace.
struct NetnsTarget {
  std::string path;
  int fd = -1;
  bool Empty() const { return path.empty() && fd < 0; }
};

class NetnsScope {
 public:
  // On failure sets `error` (errno) and `syscall` and leaves the thread where it was.
  NetnsScope(const NetnsTarget& target, int& error, const char*& syscall);
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;
  ~NetnsScope();

 private:
  UniqueFd original_;
  bool entered_ = false;
};

}  // namespace vipa
