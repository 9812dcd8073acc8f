#pragma once

#include <array>
#include <cstddef>

#include <event2/buffer.h>

#include "common/assert.h"

namespace bulwark::network {

/** Appends a copy of `from`'s bytes to `to`, leaving `from` as it is. */
inline void copyBuffer(evbuffer* from, evbuffer* to) {
  // Most bodies sit in a few chains: peek them onto the stack, fall back to chunks of 16.
  std::array<evbuffer_iovec, 16> vec;
  evbuffer_ptr pos;
  evbuffer_ptr_set(from, &pos, 0, EVBUFFER_PTR_SET);
  size_t left = evbuffer_get_length(from);
  while (left > 0) {
    const int n = evbuffer_peek(from, static_cast<ev_ssize_t>(left), &pos, vec.data(),
                                static_cast<int>(vec.size()));
    const int used = n < static_cast<int>(vec.size()) ? n : static_cast<int>(vec.size());
    if (used <= 0) {
      return;
    }
    size_t copied = 0;
    for (int i = 0; i < used && copied < left; ++i) {
      const size_t len = vec[i].iov_len < left - copied ? vec[i].iov_len : left - copied;
      evbuffer_add(to, vec[i].iov_base, len);
      copied += len;
    }
    left -= copied;
    evbuffer_ptr_set(from, &pos, copied, EVBUFFER_PTR_ADD);
  }
}

/**
 * This thread's always-empty buffer, for calls that take a buffer when there is no byte to pass
 * (an end of stream without body). Drained on every hand-out, so bytes a callee left in it are
 * dropped exactly as they were with a temporary buffer. Thread: the calling thread's own.
 */
evbuffer* emptyBuffer();

/**
 * An empty buffer from this thread's pool of spare ones (made if the pool is empty). Connections
 * and streams hold a buffer only while bytes are in flight, and a keep-alive connection takes
 * and gives back its buffers on every request: the pool makes that a vector pop and push
 * instead of evbuffer_new/evbuffer_free. Thread: the calling thread's own pool.
 */
evbuffer* acquireBuffer();
/** Drains `buffer` and keeps it in this thread's pool (freed when the pool is full). */
void releaseBuffer(evbuffer* buffer);

/**
 * An evbuffer made with the first byte written to it, so objects made per request (streams,
 * attempts) cost no buffer allocation when no body passes through them.
 * Thread: its owner's.
 */
class LazyBuffer {
public:
  LazyBuffer() = default;
  ~LazyBuffer() {
    if (buffer_ != nullptr) {
      releaseBuffer(buffer_);
    }
  }
  LazyBuffer(const LazyBuffer&) = delete;
  LazyBuffer& operator=(const LazyBuffer&) = delete;

  size_t length() const { return buffer_ != nullptr ? evbuffer_get_length(buffer_) : 0; }
  bool held() const { return buffer_ != nullptr; }
  /** The buffer to write into (made now if absent). */
  evbuffer* get() {
    if (buffer_ == nullptr) {
      buffer_ = acquireBuffer();
    }
    return buffer_;
  }
  /** The buffer to hand on to a consumer: this one, or the thread's empty one if never made. */
  evbuffer* getOrEmpty() { return buffer_ != nullptr ? buffer_ : emptyBuffer(); }
  void clear() {
    if (buffer_ != nullptr) {
      evbuffer_drain(buffer_, evbuffer_get_length(buffer_));
    }
  }
  /** Gives the buffer (and any bytes left in it) back to the pool; get() takes one again. */
  void release() {
    if (buffer_ != nullptr) {
      releaseBuffer(buffer_);
      buffer_ = nullptr;
    }
  }

private:
  evbuffer* buffer_ = nullptr;
};

}  // namespace bulwark::network
