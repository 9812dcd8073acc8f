#pragma once

// What the codec fuzz targets (http1_server, http1_client, http2_server) share: the input split
// into decisions and a byte stream, an in-memory connection behaving like network::Connection
// towards its codec, and the dispatcher whose zero-delay timers and deferred deletions the
// harness runs between steps. Thread: the fuzzing thread (everything here is single-threaded).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "proxy/event/dispatcher.h"
#include "proxy/network/codec_connection.h"

namespace bulwark::fuzz {

/**
 * The input of a codec target: byte 0 is the length N of the decision section, the next N bytes
 * are decisions (read in order; 0 once used up, which every harness treats as "the plain case":
 * feed everything, answer normally), and the rest is the byte stream the codec parses. A seed
 * that is just a request or response with a leading 0 byte thus runs as a plain exchange.
 * Thread: the fuzzing thread.
 */
class CodecInput {
public:
  CodecInput(const uint8_t* data, size_t size) {
    if (size == 0) {
      return;
    }
    const size_t n = data[0] < size - 1 ? data[0] : size - 1;
    decisions_ = std::string_view(reinterpret_cast<const char*>(data) + 1, n);
    stream_ = std::string_view(reinterpret_cast<const char*>(data) + 1 + n, size - 1 - n);
  }

  /** The next decision byte, 0 when none is left. */
  uint8_t next() {
    if (decisions_.empty()) {
      return 0;
    }
    const auto b = static_cast<uint8_t>(decisions_.front());
    decisions_.remove_prefix(1);
    return b;
  }
  bool decisionsLeft() const { return !decisions_.empty(); }

  /** Up to `len` bytes of the stream, taken. */
  std::string_view take(size_t len) {
    const std::string_view piece = stream_.substr(0, len);
    stream_.remove_prefix(piece.size());
    return piece;
  }
  size_t streamLeft() const { return stream_.size(); }

  /** Length of the next piece: the whole rest on decision 0, else 1 to 255 bytes. */
  size_t nextChunk() {
    const uint8_t d = next();
    return d == 0 ? stream_.size() : d;
  }

private:
  std::string_view decisions_;
  std::string_view stream_;
};

/**
 * One dispatcher for the process (an event_base; codecs create their flush timers on it). Each
 * run() turns the loop without blocking, so zero-delay timers (HTTP/2 flushes, deferred resets)
 * fire, and deferred deletions happen, at the points the harness chooses.
 */
inline event::Dispatcher& dispatcher() {
  static event::Dispatcher* d = [] {
    evthread_use_pthreads();
    return new event::Dispatcher();
  }();
  return *d;
}

inline void runLoop() {
  // Two turns: a timer's callback may arm another zero-delay timer or queue a deletion.
  for (int i = 0; i < 2; ++i) {
    event_base_loop(dispatcher().base(), EVLOOP_NONBLOCK);
  }
}

/**
 * network::Connection towards its codec, in memory: output accumulates until the peer takes it
 * (takeOutput), the high watermark fires inside write() and the low one when the peer drains
 * below it, close(NoFlush) or a close with nothing pending raises the close at once (as
 * Connection::closeNow does, through its owner into the codec), and a FlushWrite close with
 * output pending completes when the peer has taken it. Writes after the close are dropped.
 * Thread: the fuzzing thread.
 */
class FakeConnection : public network::CodecConnection {
public:
  static constexpr size_t kHighWatermark = 16UL * 1024;
  static constexpr size_t kLowWatermark = 4UL * 1024;

  FakeConnection() : output_(evbuffer_new()) {}
  ~FakeConnection() override { evbuffer_free(output_); }
  FakeConnection(const FakeConnection&) = delete;
  FakeConnection& operator=(const FakeConnection&) = delete;

  /** The owner's reactions, as ConnectionCallbacks would deliver them. */
  std::function<void()> on_closed;
  std::function<void(bool above)> on_watermark;

  event::Dispatcher& dispatcher() override { return fuzz::dispatcher(); }
  void write(evbuffer* data) override {
    if (state_ == State::Closed) {
      evbuffer_drain(data, evbuffer_get_length(data));
      return;
    }
    evbuffer_add_buffer(output_, data);
    afterAppend();
  }
  void write(const void* data, size_t len) override {
    if (state_ == State::Closed) {
      return;
    }
    evbuffer_add(output_, data, len);
    afterAppend();
  }
  char* reserveOutput(size_t max_len) override {
    evbuffer_iovec room;
    evbuffer_reserve_space(output_, static_cast<ev_ssize_t>(max_len), &room, 1);
    return static_cast<char*>(room.iov_base);
  }
  void commitOutput(char* room, size_t len) override {
    if (state_ == State::Closed) {
      return;
    }
    evbuffer_iovec written{room, len};
    evbuffer_commit_space(output_, &written, 1);
    afterAppend();
  }
  using CodecConnection::write;
  size_t outputLength() const override { return evbuffer_get_length(output_); }
  void readDisable(bool disable) override {
    if (disable) {
      ++read_disable_count_;
    } else if (read_disable_count_ > 0) {
      --read_disable_count_;
    }
  }
  void close(CloseType type) override {
    if (state_ == State::Closed) {
      return;
    }
    if (type == CloseType::FlushWrite && outputLength() > 0) {
      state_ = State::Flushing;
      return;
    }
    closeNow();
  }
  bool closing() const override { return state_ != State::Open; }
  void dispatchBufferedLater() override { redispatch_ = true; }

  /** The peer reads up to `len` bytes of output (all of it when len is 0) into `seen`. */
  void takeOutput(size_t len, std::string& seen) {
    const size_t avail = outputLength();
    const size_t n = len == 0 || len > avail ? avail : len;
    const size_t at = seen.size();
    seen.resize(at + n);
    evbuffer_remove(output_, seen.data() + at, n);
    if (above_high_ && outputLength() < kLowWatermark) {
      above_high_ = false;
      if (on_watermark) {
        on_watermark(false);
      }
    }
    if (state_ == State::Flushing && outputLength() == 0) {
      closeNow();
    }
  }
  /** The peer closed (or the harness ends the connection): the close reaches the codec once. */
  void remoteClose() {
    if (state_ != State::Closed) {
      closeNow();
    }
  }

  bool closed() const { return state_ == State::Closed; }
  bool readDisabled() const { return read_disable_count_ > 0; }
  /** A dispatchBufferedLater() is pending; reading it clears it. */
  bool takeRedispatch() {
    const bool r = redispatch_;
    redispatch_ = false;
    return r;
  }

private:
  enum class State { Open, Flushing, Closed };

  void afterAppend() {
    if (!above_high_ && outputLength() > kHighWatermark) {
      above_high_ = true;
      if (on_watermark) {
        on_watermark(true);
      }
    }
  }
  void closeNow() {
    // Output still pending is lost, as when Connection closes its socket.
    evbuffer_drain(output_, evbuffer_get_length(output_));
    state_ = State::Closed;
    if (on_closed) {
      on_closed();
    }
  }

  evbuffer* output_;
  State state_ = State::Open;
  int read_disable_count_ = 0;
  bool above_high_ = false;
  bool redispatch_ = false;
};

}  // namespace bulwark::fuzz
