#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>

#include "proxy/event/dispatcher.h"
#include "proxy/network/buffer.h"
#include "proxy/network/codec_connection.h"
#include "proxy/network/tls.h"

namespace bulwark::network {

enum class ConnectionEvent {
  Connected,  // TCP connected and, with TLS, the handshake done
  RemoteClose,
  LocalClose,
  ConnectTimeout,
  ConnectFailure,
  TlsFailure,  // an upstream TLS handshake failed (the reason is in the handshake metrics)
};

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
  /** The peer took no byte of pending output for the write timeout; the close follows. */
  virtual void onWriteTimeout() {}
};

/**
 * A TCP connection, downstream or upstream. Owns the socket and its two buffers.
 *
 * Built on plain events rather than a bufferevent to keep syscalls per request down: the read
 * event stays registered (no epoll_ctl per message), reads go straight into reserved buffer space
 * (no FIONREAD ioctl per read), and output is flushed once per loop turn by activating the write
 * event by hand; the kernel is only asked for writability (epoll_ctl) when a write was partial.
 * The codecs see it through CodecConnection; the class is final, so calls made on a Connection
 * itself (connection manager, pools, admin) are not virtual.
 * Thread: owning worker. Destroy through the dispatcher's deferredDelete when inside callbacks.
 */
class Connection final : public event::DeferredDeletable, public CodecConnection {
public:
  /** Wraps an accepted socket. */
  Connection(event::Dispatcher& dispatcher, evutil_socket_t fd, std::string peer_address);
  /** Starts a non-blocking connect to address (numeric "ip:port" or "[v6]:port"). */
  static std::unique_ptr<Connection> connect(event::Dispatcher& dispatcher,
                                             const std::string& address,
                                             std::chrono::milliseconds timeout);
  ~Connection() override;

  void setCallbacks(ConnectionCallbacks* callbacks) { callbacks_ = callbacks; }
  event::Dispatcher& dispatcher() override { return dispatcher_; }

  // CodecConnection
  using CodecConnection::write;
  void write(evbuffer* data) override;
  void write(const void* data, size_t len) override;
  char* reserveOutput(size_t max_len) override;
  void commitOutput(char* room, size_t len) override;
  size_t outputLength() const override;
  /** Stops (or resumes) reading from the socket; nested calls are counted. */
  void readDisable(bool disable) override;
  /**
   * Closes the connection. FlushWrite first writes pending output (bounded by a timer).
   * Raises LocalClose to callbacks once. Safe to call more than once.
   */
  void close(CloseType type) override;
  bool closing() const override { return state_ != State::Open; }
  /** dispatchBuffered() on a later loop turn; dropped if the connection is gone by then. */
  void dispatchBufferedLater() override;

  /** Bytes read and not yet consumed by the codec. */
  size_t inputLength() const { return input_.length(); }
  /** Whether an input or output buffer is held: only while bytes are in flight. */
  bool holdsBuffers() const { return input_.held() || output_.held(); }
  /** Buffers bytes as if read from the socket; dispatchBuffered() delivers them. */
  void addBufferedInput(const void* data, size_t len);
  bool readEnabled() const { return read_disable_count_ == 0; }

  bool closed() const { return state_ == State::Closed; }

  void setWatermarks(size_t low, size_t high);
  const std::string& peerAddress() const { return peer_address_; }
  uint64_t id() const { return id_; }
  /** Re-runs onData with bytes already buffered (used after a codec switch). */
  void dispatchBuffered();
  /** Disables Nagle for latency. */
  void setNoDelay();
  /**
   * Closes the connection (NoFlush, LocalClose) when output has been pending for `timeout`
   * without the peer taking a single byte (a client that stopped reading). 0 = never.
   */
  void setWriteTimeout(std::chrono::milliseconds timeout) { write_timeout_ = timeout; }
  /**
   * Speaks TLS from now on: a server connection handshakes before its first onData, a client
   * connection before it raises Connected (`sni` names the server, `session_key` the host whose
   * last session is resumed). A handshake slower than the
   * context's handshake timeout, or failing, closes the connection (TlsFailure for a client).
   */
  void enableTls(TlsContextSharedPtr context, const std::string& sni,
                 const std::string& session_key = {});
  /** The TLS state, or null for plaintext. */
  const TlsSocket* tls() const { return tls_.get(); }
  TlsSocket* tls() { return tls_.get(); }

private:
  Connection(event::Dispatcher& dispatcher, evutil_socket_t fd, std::string peer_address,
             bool connecting);
  static void onReadable(evutil_socket_t, short, void* arg);
  static void onWritable(evutil_socket_t, short, void* arg);
  void readFromSocket();
  void flushOutput();
  /** One send/sendmsg of the head of output_; drains what the kernel took. */
  ssize_t sendOutput();
  void afterAppend();
  void scheduleFlush();
  void peerClosed();
  void onConnectResult();
  void updateReadInterest();
  void releaseSocket();
  void closeNow();
  void raiseEvent(ConnectionEvent event);
  /** After a write attempt: register for writability if bytes remain, watermarks, flush-close. */
  void afterWrite(bool progress);
  void onWriteStalled();
  /** Hands input_ to the callbacks; the outermost call gives it back to the pool when empty. */
  void deliverInput();
  void tlsHandshake();
  void readTls();
  void flushTls();
  void onTlsFailure(std::string_view reason);

  enum class State { Open, Flushing, Closed };
  event::Dispatcher& dispatcher_;
  evutil_socket_t fd_;
  ::event* read_event_ = nullptr;
  ::event* write_event_ = nullptr;
  // Taken from the thread's buffer pool when bytes arrive or are written, and given back once
  // drained, so an idle connection holds no buffer.
  LazyBuffer input_;
  LazyBuffer output_;
  int delivering_ = 0;             // depth of deliverInput() calls on the stack
  bool read_registered_ = false;   // read_event_ is added to the loop
  bool write_registered_ = false;  // write_event_ is added (waiting for the kernel's writability)
  ConnectionCallbacks* callbacks_ = nullptr;
  std::string peer_address_;
  uint64_t id_;
  int read_disable_count_ = 0;
  size_t high_watermark_ = 1024UL * 1024;
  size_t low_watermark_ = 256UL * 1024;
  bool above_high_ = false;
  bool connecting_ = false;
  bool flush_pending_ = false;  // write_event_ activated by hand for this loop turn
  State state_ = State::Open;
  event::TimerPtr flush_timer_;
  event::TimerPtr connect_timer_;
  std::chrono::milliseconds write_timeout_{0};
  event::TimerPtr write_timer_;  // armed while output is pending; re-armed by any progress
  std::unique_ptr<TlsSocket> tls_;
  event::TimerPtr handshake_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted callbacks
};
using ConnectionPtr = std::unique_ptr<Connection>;

/** Parses "1.2.3.4:80", "[::1]:80" or "localhost:80" (localhost only) into a sockaddr. */
bool parseAddress(const std::string& address, sockaddr_storage& out, socklen_t& len);

}  // namespace bulwark::network
