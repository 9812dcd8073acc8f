#include "proxy/network/buffer.h"

namespace bulwark::network {
namespace {

// Freed when its thread ends, so leak checkers see no buffer left behind by worker threads.
struct ThreadEmptyBuffer {
  ThreadEmptyBuffer() : buffer(evbuffer_new()) {
    BULWARK_RELEASE_ASSERT(buffer != nullptr, "evbuffer_new failed");
  }
  ~ThreadEmptyBuffer() { evbuffer_free(buffer); }
  ThreadEmptyBuffer(const ThreadEmptyBuffer&) = delete;
  ThreadEmptyBuffer& operator=(const ThreadEmptyBuffer&) = delete;
  evbuffer* buffer;
};

}  // namespace

evbuffer* emptyBuffer() {
  thread_local ThreadEmptyBuffer empty;
  evbuffer_drain(empty.buffer, evbuffer_get_length(empty.buffer));
  return empty.buffer;
}

}  // namespace bulwark::network
