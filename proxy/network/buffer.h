#pragma once

#include <vector>

#include <event2/buffer.h>

namespace bulwark::network {

/** Appends a copy of `from`'s bytes to `to`, leaving `from` as it is. */
inline void copyBuffer(evbuffer* from, evbuffer* to) {
  const int n = evbuffer_peek(from, -1, nullptr, nullptr, 0);
  if (n <= 0) {
    return;
  }
  std::vector<evbuffer_iovec> vec(static_cast<size_t>(n));
  evbuffer_peek(from, -1, nullptr, vec.data(), n);
  for (const auto& v : vec) {
    evbuffer_add(to, v.iov_base, v.iov_len);
  }
}

}  // namespace bulwark::network
