// A uv_poll_t watching one fd for readability on behalf of an owner object:
// the one way native/ objects (Socket, Timer) hook into the Node event loop.
// The owner pointer is cleared when polling stops, so a callback already
// queued by libuv finds no owner instead of a destroyed object; the handle
// itself is freed by uv_close's callback (libuv: a handle must not be freed
// before it is closed, and must be closed before its fd).
#pragma once

#include <napi.h>
#include <uv.h>

namespace vipa {

struct PollHandle {
  uv_poll_t handle;
  void* owner;
};

// Starts watching `fd` (UV_READABLE): `callback` runs on the JS thread with
// handle->data pointing at the PollHandle. Throws a VipaError naming `op`.
PollHandle* StartPoll(Napi::Env env, int fd, void* owner, uv_poll_cb callback, const char* op);

// Stops watching, detaches the owner and closes the handle. Null-safe.
void StopPoll(PollHandle* poll);

// The owner of the handle a libuv callback got, or null once stopped.
template <typename Owner>
Owner* PollOwner(uv_poll_t* handle) {
  return static_cast<Owner*>(static_cast<PollHandle*>(handle->data)->owner);
}

}  // namespace vipa
