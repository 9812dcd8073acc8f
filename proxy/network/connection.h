#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/event/dispatcher.h"

namespace bulwark::network {

enum class ConnectionEvent { Connected, RemoteClose, LocalClose, ConnectTimeout, ConnectFailure };

/** Callbacks a codec or pool registers on a connection. Thread: the connection's worker. */
class ConnectionCallbacks {
public:
  virtual ~ConnectionCallbacks() = default;
  /** New bytes arrived; consume what you can from `input` (leftover stays buffered). */
  virtual void onData(evbuffer* input) = 0;
  /** Connected, closed by the peer, or failed. After a close event no more onData follows. */
  virtual void onEvent(ConnectionEvent event) = 0;
  /** The output buffer crossed the high watermark: stop producing for this connection. */
  virtual void onAboveWriteBufferHighWatermark() {}
  /** The output buffer drained below the low watermark: producing may resume. */
  virtual void onBelowWriteBufferLowWatermark() {}
};

/**
 * A TCP connection on a bufferevent, downstream or upstream. Owns the socket.
 * Thread: owning worker. Destroy through the dispatcher's deferredDelete when inside callbacks.
 */
class Connection : public event::DeferredDeletable {
public:
  /** Wraps an accepted socket. */
  Connection(event::Dispatcher& dispatcher, evutil_socket_t fd, std::string peer_address);
  /** Starts a non-blocking connect to address (numeric "ip:port" or "[v6]:port"). */
  static std::unique_ptr<Connection> connect(event::Dispatcher& dispatcher, const std::string& address,
                                             std::chrono::milliseconds timeout);
  ~Connection() override;

  void setCallbacks(ConnectionCallbacks* callbacks) { callbacks_ = callbacks; }
  event::Dispatcher& dispatcher() { return dispatcher_; }

  /** Appends all of data (moved, data is left empty). */
  void write(evbuffer* data);
  void write(const void* data, size_t len);
  void write(std::string_view s) { write(s.data(), s.size()); }
  evbuffer* input() { return bufferevent_get_input(bev_); }
  size_t outputLength() const;

  /** Stops (or resumes) reading from the socket; nested calls are counted. */
  void readDisable(bool disable);
  bool readEnabled() const { return read_disable_count_ == 0; }

  enum class CloseType { FlushWrite, NoFlush };
  /**
   * Closes the connection. FlushWrite first writes pending output (bounded by a timer).
   * Raises LocalClose to callbacks once. Safe to call more than once.
   */
  void close(CloseType type);
  bool closed() const { return state_ == State::Closed; }
  bool closing() const { return state_ != State::Open; }

  void setWatermarks(size_t low, size_t high);
  const std::string& peerAddress() const { return peer_address_; }
  uint64_t id() const { return id_; }
  /** Re-runs onData with bytes already buffered (used after a codec switch). */
  void dispatchBuffered();
  /** dispatchBuffered() on a later loop turn; dropped if the connection is gone by then. */
  void dispatchBufferedLater();
  /** Disables Nagle for latency. */
  void setNoDelay();

private:
  Connection(event::Dispatcher& dispatcher, bufferevent* bev, std::string peer_address);
  static void onRead(bufferevent*, void* arg);
  static void onWrite(bufferevent*, void* arg);
  static void onBevEvent(bufferevent*, short what, void* arg);
  void closeNow();
  void raiseEvent(ConnectionEvent event);

  enum class State { Open, Flushing, Closed };
  event::Dispatcher& dispatcher_;
  bufferevent* bev_;
  ConnectionCallbacks* callbacks_ = nullptr;
  std::string peer_address_;
  uint64_t id_;
  int read_disable_count_ = 0;
  size_t high_watermark_ = 1024 * 1024;
  size_t low_watermark_ = 256 * 1024;
  bool above_high_ = false;
  bool connecting_ = false;
  State state_ = State::Open;
  event::TimerPtr flush_timer_;
  event::TimerPtr connect_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted callbacks
};
using ConnectionPtr = std::unique_ptr<Connection>;

/** Parses "1.2.3.4:80", "[::1]:80" or "localhost:80" (localhost only) into a sockaddr. */
bool parseAddress(const std::string& address, sockaddr_storage& out, socklen_t& len);

}  // namespace bulwark::network
