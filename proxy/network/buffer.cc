#include "proxy/network/buffer.h"

#include <vector>

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

// Enough spares for the buffers a worker's busiest loop turn gives back; 136 bytes each.
constexpr size_t kMaxPooledBuffers = 256;

struct ThreadBufferPool {
  ThreadBufferPool() { spare.reserve(kMaxPooledBuffers); }
  ~ThreadBufferPool() {
    for (evbuffer* buffer : spare) {
      evbuffer_free(buffer);
    }
  }
  ThreadBufferPool(const ThreadBufferPool&) = delete;
  ThreadBufferPool& operator=(const ThreadBufferPool&) = delete;
  std::vector<evbuffer*> spare;
};

ThreadBufferPool& bufferPool() {
  thread_local ThreadBufferPool pool;
  return pool;
}

}  // namespace

evbuffer* acquireBuffer() {
  auto& spare = bufferPool().spare;
  if (!spare.empty()) {
    evbuffer* buffer = spare.back();
    spare.pop_back();
    return buffer;
  }
  evbuffer* buffer = evbuffer_new();
  BULWARK_RELEASE_ASSERT(buffer != nullptr, "evbuffer_new failed");
  return buffer;
}

void releaseBuffer(evbuffer* buffer) {
  auto& spare = bufferPool().spare;
  if (spare.size() >= kMaxPooledBuffers) {
    evbuffer_free(buffer);
    return;
  }
  // Draining frees the chains: a pooled buffer holds no memory beyond its own header.
  evbuffer_drain(buffer, evbuffer_get_length(buffer));
  spare.push_back(buffer);
}

evbuffer* emptyBuffer() {
  thread_local ThreadEmptyBuffer empty;
  evbuffer_drain(empty.buffer, evbuffer_get_length(empty.buffer));
  return empty.buffer;
}

}  // namespace bulwark::network
