#pragma once

#include <cstddef>
#include <string_view>

#include <event2/buffer.h>

#include "proxy/event/dispatcher.h"

namespace bulwark::network {

/**
 * What an HTTP codec needs from the connection it speaks on: output, close, read-disable and the
 * dispatcher for its timers. network::Connection implements it over a socket; the codec fuzz
 * harnesses implement it in memory, so a codec runs deterministically without a socket or a loop
 * turn between writes. The hot per-byte work stays inside the codec; what crosses this seam is
 * one virtual call per write or state change.
 * Thread: the owning worker (every call comes from the codec on that thread).
 */
class CodecConnection {
public:
  enum class CloseType { FlushWrite, NoFlush };

  virtual ~CodecConnection() = default;

  /** The loop the codec's timers and deferred deletions run on. */
  virtual event::Dispatcher& dispatcher() = 0;
  /** Appends all of data (moved, data is left empty). */
  virtual void write(evbuffer* data) = 0;
  virtual void write(const void* data, size_t len) = 0;
  void write(std::string_view s) { write(s.data(), s.size()); }
  /**
   * Contiguous room for up to `max_len` bytes at the end of the output, for a message head
   * written in place instead of through a string; commitOutput(room, n) then appends the first
   * n of them. Nothing else may be written in between.
   */
  virtual char* reserveOutput(size_t max_len) = 0;
  virtual void commitOutput(char* room, size_t len) = 0;
  /** Bytes written and not yet taken by the peer. */
  virtual size_t outputLength() const = 0;
  /** Stops (or resumes) reading from the peer; nested calls are counted. */
  virtual void readDisable(bool disable) = 0;
  /**
   * Closes the connection. FlushWrite first writes pending output. The owner hears of the
   * close (LocalClose) once and tells the codec; safe to call more than once.
   */
  virtual void close(CloseType type) = 0;
  /** A close was asked for (output may still be flushing). */
  virtual bool closing() const = 0;
  /** Hands bytes already buffered to the codec again on a later loop turn. */
  virtual void dispatchBufferedLater() = 0;
};

}  // namespace bulwark::network
