// See poll.h.
#include "poll.h"

#include "addon.h"

namespace vipa {

PollHandle* StartPoll(Napi::Env env, int fd, void* owner, uv_poll_cb callback, const char* op) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* poll = new PollHandle{};
  poll->owner = owner;
  int rc = uv_poll_init(loop, &poll->handle, fd);
  if (rc != 0) {
    delete poll;
    throw MakeSystemError(env, -rc, "uv_poll_init", op);
  }
  poll->handle.data = poll;
  rc = uv_poll_start(&poll->handle, UV_READABLE, callback);
  if (rc != 0) {
    poll->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), [](uv_handle_t* h) { delete static_cast<PollHandle*>(h->data); });
    throw MakeSystemError(env, -rc, "uv_poll_start", op);
  }
  return poll;
}

void StopPoll(PollHandle* poll) {
  if (poll == nullptr) return;
  poll->owner = nullptr;
  uv_poll_stop(&poll->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), [](uv_handle_t* h) { delete static_cast<PollHandle*>(h->data); });
}

}  // namespace vipa
