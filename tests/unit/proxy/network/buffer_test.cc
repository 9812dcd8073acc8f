// network::copyBuffer, LazyBuffer and the per-thread empty buffer: copies keep every byte in order
// (also across more chains than one peek covers), a lazy buffer exists only once written, and the
// empty buffer is empty at every hand-out.

#include "proxy/network/buffer.h"

#include <string>
#include <vector>

#include <event2/buffer.h>
#include <gtest/gtest.h>

namespace bulwark::network {
namespace {

std::string contents(evbuffer* buffer) {
  std::string out(evbuffer_get_length(buffer), '\0');
  evbuffer_copyout(buffer, out.data(), out.size());
  return out;
}

TEST(BufferTest, CopyKeepsTheSourceAndEveryByteAcrossManyChains) {
  evbuffer* from = evbuffer_new();
  evbuffer* to = evbuffer_new();
  std::string expected;
  // evbuffer_add_reference makes one chain per call: 40 chains, more than one peek of 16 covers.
  std::vector<std::string> pieces;
  pieces.reserve(40);
  for (int i = 0; i < 40; ++i) {
    pieces.push_back("piece-" + std::to_string(i) + std::string(static_cast<size_t>(i), 'x') + ";");
  }
  for (const auto& piece : pieces) {
    evbuffer_add_reference(from, piece.data(), piece.size(), nullptr, nullptr);
    expected += piece;
  }
  ASSERT_GT(evbuffer_peek(from, -1, nullptr, nullptr, 0), 16);
  evbuffer_add(to, "head:", 5);
  copyBuffer(from, to);
  EXPECT_EQ(contents(to), "head:" + expected);
  EXPECT_EQ(contents(from), expected);
  evbuffer_free(from);
  evbuffer_free(to);
}

TEST(BufferTest, CopyOfAnEmptyBufferAddsNothing) {
  evbuffer* from = evbuffer_new();
  evbuffer* to = evbuffer_new();
  copyBuffer(from, to);
  EXPECT_EQ(evbuffer_get_length(to), 0U);
  evbuffer_free(from);
  evbuffer_free(to);
}

TEST(BufferTest, LazyBufferIsMadeByTheFirstWrite) {
  LazyBuffer lazy;
  EXPECT_EQ(lazy.length(), 0U);
  lazy.clear();
  evbuffer* handed = lazy.getOrEmpty();
  EXPECT_EQ(handed, emptyBuffer()) << "an unwritten buffer hands on the thread's empty one";
  evbuffer_add(lazy.get(), "abc", 3);
  EXPECT_EQ(lazy.length(), 3U);
  EXPECT_NE(lazy.getOrEmpty(), emptyBuffer());
  EXPECT_EQ(contents(lazy.getOrEmpty()), "abc");
  lazy.clear();
  EXPECT_EQ(lazy.length(), 0U);
}

TEST(BufferTest, EmptyBufferIsEmptyAtEveryHandOut) {
  evbuffer* empty = emptyBuffer();
  evbuffer_add(empty, "left by a callee", 16);
  EXPECT_EQ(evbuffer_get_length(emptyBuffer()), 0U);
  EXPECT_EQ(emptyBuffer(), empty);
}

TEST(BufferTest, ReleasedBuffersComeBackEmptyFromThePool) {
  evbuffer* first = acquireBuffer();
  evbuffer_add(first, "left over", 9);
  releaseBuffer(first);
  evbuffer* again = acquireBuffer();
  EXPECT_EQ(again, first) << "a released buffer is reused, not freed and made again";
  EXPECT_EQ(evbuffer_get_length(again), 0U)
      << "bytes left in a released buffer leak into the next user";
  evbuffer* second = acquireBuffer();
  EXPECT_NE(second, again);
  releaseBuffer(second);
  releaseBuffer(again);
}

}  // namespace
}  // namespace bulwark::network
