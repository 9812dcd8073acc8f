#include "proxy/network/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <openssl/err.h>

#include "common/assert.h"

namespace bulwark::network {
namespace {
std::atomic<uint64_t> next_connection_id{1};
constexpr std::chrono::seconds kFlushTimeout{5};
// Bytes asked of the kernel per readable event. Larger messages take several loop turns, which
// keeps one busy connection from starving the others on the worker.
constexpr size_t kReadChunk = 32UL * 1024;
// One TLS record's worth of plaintext per SSL_write: a full record per syscall.
constexpr size_t kTlsRecord = 16UL * 1024;
}  // namespace

bool parseAddress(const std::string& address, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof(out));
  std::string host;
  std::string port;
  if (!address.empty() && address[0] == '[') {
    auto end = address.find(']');
    if (end == std::string::npos || end + 1 >= address.size() || address[end + 1] != ':') {
      return false;
    }
    host = address.substr(1, end - 1);
    port = address.substr(end + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) {
      return false;
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) {
    return false;
  }
  for (char c : port) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  int port_num = std::stoi(port);
  if (port_num > 65535) {
    return false;
  }
  if (host == "localhost" || host.empty()) {
    host = "127.0.0.1";
  }
  if (host == "*") {
    host = "0.0.0.0";
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port_num));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port_num));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

Connection::Connection(event::Dispatcher& dispatcher, evutil_socket_t fd, std::string peer_address)
    : Connection(dispatcher, fd, std::move(peer_address), false) {
  setNoDelay();
  updateReadInterest();
}

Connection::Connection(event::Dispatcher& dispatcher, evutil_socket_t fd, std::string peer_address,
                       bool connecting)
    : dispatcher_(dispatcher),
      fd_(fd),
      peer_address_(std::move(peer_address)),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      connecting_(connecting) {
  read_event_ =
      event_new(dispatcher.base(), fd_, EV_READ | EV_PERSIST, &Connection::onReadable, this);
  write_event_ =
      event_new(dispatcher.base(), fd_, EV_WRITE | EV_PERSIST, &Connection::onWritable, this);
  BULWARK_RELEASE_ASSERT(read_event_ != nullptr && write_event_ != nullptr,
                         "connection allocation failed");
}

std::unique_ptr<Connection> Connection::connect(event::Dispatcher& dispatcher,
                                                const std::string& address,
                                                std::chrono::milliseconds timeout) {
  sockaddr_storage ss;
  socklen_t len = 0;
  evutil_socket_t fd = -1;
  bool started = parseAddress(address, ss, len);
  if (started) {
    fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    started = fd >= 0 &&
              (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 || errno == EINPROGRESS);
  }
  std::unique_ptr<Connection> conn(new Connection(dispatcher, fd, address, true));
  auto* raw = conn.get();
  if (!started) {
    // Report asynchronously so callers see the same path as a refused connect.
    conn->connect_timer_ =
        dispatcher.createTimer([raw] { raw->raiseEvent(ConnectionEvent::ConnectFailure); });
    conn->connect_timer_->enableTimer(std::chrono::microseconds(0));
    return conn;
  }
  conn->setNoDelay();
  // Writability tells the outcome of a non-blocking connect (SO_ERROR says which).
  event_add(conn->write_event_, nullptr);
  conn->write_registered_ = true;
  if (timeout.count() > 0) {
    conn->connect_timer_ = dispatcher.createTimer([raw] {
      if (raw->connecting_) {
        raw->raiseEvent(ConnectionEvent::ConnectTimeout);
      }
    });
    conn->connect_timer_->enableTimer(timeout);
  }
  return conn;
}

Connection::~Connection() {
  releaseSocket();
  event_free(read_event_);
  event_free(write_event_);
}

// Deliberately not const: TCP_NODELAY changes how the connection sends, even though the only
// member touched is fd_, which is merely read.
void Connection::setNoDelay() {  // NOLINT(readability-make-member-function-const)
  if (fd_ >= 0) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
}

void Connection::write(evbuffer* data) {
  if (state_ == State::Closed) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  evbuffer_add_buffer(output_.get(), data);
  afterAppend();
}

void Connection::write(const void* data, size_t len) {
  if (state_ == State::Closed) {
    return;
  }
  evbuffer_add(output_.get(), data, len);
  afterAppend();
}

char* Connection::reserveOutput(size_t max_len) {
  evbuffer_iovec room;
  const int chains =
      evbuffer_reserve_space(output_.get(), static_cast<ev_ssize_t>(max_len), &room, 1);
  BULWARK_RELEASE_ASSERT(chains == 1, "evbuffer_reserve_space failed");
  return static_cast<char*>(room.iov_base);
}

void Connection::commitOutput(char* room, size_t len) {
  if (state_ == State::Closed) {
    output_.release();  // writes after the close are dropped, as write() drops them
    return;
  }
  evbuffer_iovec written{room, len};
  BULWARK_RELEASE_ASSERT(evbuffer_commit_space(output_.get(), &written, 1) == 0,
                         "evbuffer_commit_space failed");
  afterAppend();
}

void Connection::afterAppend() {
  if (!above_high_ && outputLength() > high_watermark_) {
    above_high_ = true;
    if (callbacks_) {
      callbacks_->onAboveWriteBufferHighWatermark();
    }
  }
  scheduleFlush();
}

size_t Connection::outputLength() const { return output_.length(); }

void Connection::addBufferedInput(const void* data, size_t len) {
  evbuffer_add(input_.get(), data, len);
}

void Connection::deliverInput() {
  ++delivering_;
  callbacks_->onData(input_.get());
  --delivering_;
  // Only the outermost delivery gives the buffer back: a nested one (dispatchBuffered from a
  // codec switch) returns to callers still holding the pointer.
  if (delivering_ == 0 && input_.length() == 0) {
    input_.release();
  }
}

void Connection::scheduleFlush() {
  // While connecting or waiting for the kernel's writability, the write event fires on its own.
  if (flush_pending_ || write_registered_ || connecting_ || fd_ < 0) {
    return;
  }
  // One write per loop turn for everything produced in it (headers, body, trailers), without
  // asking epoll: an activated event runs after the current callbacks.
  flush_pending_ = true;
  event_active(write_event_, EV_WRITE, 0);
}

void Connection::readDisable(bool disable) {
  if (disable) {
    if (read_disable_count_++ == 0) {
      updateReadInterest();
    }
  } else if (read_disable_count_ > 0) {
    if (--read_disable_count_ == 0 && state_ == State::Open) {
      updateReadInterest();
      // Bytes OpenSSL already holds (read ahead) do not make the socket readable: read them now.
      if (tls_ && tls_->handshakeDone() && SSL_has_pending(tls_->ssl()) == 1) {
        event_active(read_event_, EV_READ, 0);
      }
      // Bytes that arrived while disabled are already in the input buffer; deliver them.
      if (inputLength() > 0) {
        auto* self = this;
        std::weak_ptr<bool> alive = alive_;
        dispatcher_.post([self, alive] {
          if (alive.expired()) {
            return;  // the connection was destroyed meanwhile
          }
          if (self->state_ == State::Open && self->read_disable_count_ == 0 && self->callbacks_ &&
              self->inputLength() > 0) {
            self->deliverInput();
          }
        });
      }
    }
  }
}

void Connection::updateReadInterest() {
  bool want = state_ == State::Open && !connecting_ && read_disable_count_ == 0 && fd_ >= 0;
  if (want && !read_registered_) {
    event_add(read_event_, nullptr);
    read_registered_ = true;
  } else if (!want && read_registered_) {
    event_del(read_event_);
    read_registered_ = false;
  }
}

void Connection::dispatchBuffered() {
  if (state_ == State::Open && callbacks_ && inputLength() > 0) {
    deliverInput();
  }
}

void Connection::dispatchBufferedLater() {
  if (inputLength() == 0) {
    // Nothing buffered (every keep-alive request but a pipelined one): bytes still to come
    // arrive through the read event, so there is nothing to post.
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  dispatcher_.post([this, alive] {
    if (!alive.expired()) {
      dispatchBuffered();
    }
  });
}

void Connection::setWatermarks(size_t low, size_t high) {
  low_watermark_ = low;
  high_watermark_ = high;
}

void Connection::close(CloseType type) {
  if (state_ == State::Closed) {
    return;
  }
  if (type == CloseType::FlushWrite && outputLength() > 0 && fd_ >= 0) {
    if (state_ == State::Flushing) {
      return;
    }
    state_ = State::Flushing;
    updateReadInterest();
    flush_timer_ = dispatcher_.createTimer([this] { closeNow(); });
    flush_timer_->enableTimer(kFlushTimeout);
    scheduleFlush();
    return;
  }
  closeNow();
}

void Connection::releaseSocket() {
  // event_del also takes an event off the active queue (a pending hand-activated flush).
  event_del(read_event_);
  event_del(write_event_);
  read_registered_ = false;
  write_registered_ = false;
  flush_pending_ = false;
  if (tls_ && tls_->handshakeDone() && fd_ >= 0) {
    SSL_shutdown(tls_->ssl());  // close_notify, best effort: the socket closes either way
    ERR_clear_error();
  }
  if (handshake_timer_) {
    handshake_timer_->disableTimer();
  }
  if (write_timer_) {
    write_timer_->disableTimer();
  }
  if (fd_ >= 0) {
    evutil_closesocket(fd_);
    fd_ = -1;
  }
}

void Connection::closeNow() {
  if (state_ == State::Closed) {
    return;
  }
  state_ = State::Closed;
  if (flush_timer_) {
    flush_timer_->disableTimer();
  }
  if (connect_timer_) {
    connect_timer_->disableTimer();
  }
  // Close the socket now so the peer sees it immediately; the object itself may still be
  // referenced by callbacks on the stack.
  releaseSocket();
  output_.release();
  if (callbacks_) {
    callbacks_->onEvent(ConnectionEvent::LocalClose);
  }
}

void Connection::raiseEvent(ConnectionEvent event) {
  if (state_ == State::Closed) {
    return;
  }
  connecting_ = false;
  if (connect_timer_) {
    connect_timer_->disableTimer();
  }
  if (event == ConnectionEvent::Connected) {
    if (callbacks_) {
      callbacks_->onEvent(event);
    }
    return;
  }
  state_ = State::Closed;
  if (flush_timer_) {
    flush_timer_->disableTimer();
  }
  releaseSocket();
  output_.release();
  if (callbacks_) {
    callbacks_->onEvent(event);
  }
}

void Connection::onReadable(evutil_socket_t, short, void* arg) {
  static_cast<Connection*>(arg)->readFromSocket();
}

void Connection::readFromSocket() {
  if (tls_) {
    readTls();
    return;
  }
  // Read onto the stack and append what came. Reserving the chunk in the buffer instead would
  // allocate a 32 KiB chain per read and free it once the codec drained it: glibc serves that
  // from its heap top, coalescing and consolidating on every free (a tenth of the CPU of a
  // proxied request). Appending allocates a chain the size of what arrived, small and reused.
  char chunk[kReadChunk];
  // recv, not read: a socket call skips the file layer (fdget_pos, the iov_iter setup).
  const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return;
  }
  if (n <= 0) {
    peerClosed();  // EOF, or a reset / error: the same for the codecs above
    return;
  }
  if (evbuffer_add(input_.get(), chunk, static_cast<size_t>(n)) != 0) {
    peerClosed();  // out of memory for the buffer: nothing sane left to do with this connection
    return;
  }
  if (state_ == State::Open && callbacks_ != nullptr) {
    deliverInput();
  }
}

void Connection::onWritable(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->connecting_) {
    self->onConnectResult();
    return;
  }
  self->flushOutput();
}

void Connection::onConnectResult() {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
    raiseEvent(ConnectionEvent::ConnectFailure);
    return;
  }
  event_del(write_event_);
  write_registered_ = false;
  connecting_ = false;
  updateReadInterest();
  if (tls_) {
    if (connect_timer_) {
      connect_timer_->disableTimer();
    }
    tlsHandshake();  // Connected is raised when it completes
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  raiseEvent(ConnectionEvent::Connected);
  // Bytes written before the connect completed (an HTTP/2 preface, a request) go out now.
  if (!alive.expired() && state_ != State::Closed && outputLength() > 0) {
    scheduleFlush();
  }
}

void Connection::flushOutput() {
  flush_pending_ = false;
  if (fd_ < 0 || state_ == State::Closed) {
    return;
  }
  if (tls_) {
    flushTls();
    return;
  }
  const size_t before = outputLength();
  if (before > 0) {
    const ssize_t n = sendOutput();
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      peerClosed();  // EPIPE / ECONNRESET: the peer is gone
      return;
    }
  }
  afterWrite(outputLength() < before);
}

ssize_t Connection::sendOutput() {
  // send/sendmsg rather than evbuffer_write's writev: a socket call skips the file layer
  // (fdget_pos, vfs_writev), a few percent of the CPU of a small proxied request. Up to
  // kWriteVecs chains per call; more calls while the kernel takes everything offered.
  constexpr int kWriteVecs = 16;
  ssize_t total = 0;
  evbuffer* output = output_.get();
  while (evbuffer_get_length(output) > 0) {
    evbuffer_iovec vec[kWriteVecs];
    const int chains = std::min(evbuffer_peek(output, -1, nullptr, vec, kWriteVecs), kWriteVecs);
    iovec iov[kWriteVecs];
    size_t offered = 0;
    for (int i = 0; i < chains; ++i) {
      iov[i].iov_base = vec[i].iov_base;
      iov[i].iov_len = vec[i].iov_len;
      offered += vec[i].iov_len;
    }
    ssize_t sent;
    do {
      if (chains == 1) {
        sent = ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<size_t>(chains);
        sent = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      }
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      return total > 0 ? total : sent;  // errno tells the caller why (EAGAIN: come back later)
    }
    evbuffer_drain(output, static_cast<size_t>(sent));
    total += sent;
    if (static_cast<size_t>(sent) < offered) {
      break;  // the socket buffer is full
    }
  }
  return total;
}

void Connection::onWriteStalled() {
  if (state_ == State::Closed || outputLength() == 0) {
    return;
  }
  if (callbacks_ != nullptr) {
    callbacks_->onWriteTimeout();
  }
  closeNow();
}

void Connection::afterWrite(bool progress) {
  if (write_timeout_.count() > 0) {
    // No progress at all for write_timeout_ while bytes wait: the peer stopped reading.
    if (outputLength() == 0) {
      if (write_timer_) {
        write_timer_->disableTimer();
      }
    } else if (progress || !write_timer_ || !write_timer_->enabled()) {
      if (!write_timer_) {
        write_timer_ = dispatcher_.createTimer([this] { onWriteStalled(); });
      }
      write_timer_->enableTimer(write_timeout_);
    }
  }
  // A partial write waits for the kernel's writability; a complete one needs no registration.
  bool pending = outputLength() > 0;
  if (!pending) {
    output_.release();  // an idle connection holds no buffer
  }
  if (pending && !write_registered_) {
    event_add(write_event_, nullptr);
    write_registered_ = true;
  } else if (!pending && write_registered_) {
    event_del(write_event_);
    write_registered_ = false;
  }
  if (state_ == State::Flushing) {
    if (!pending) {
      closeNow();
    }
    return;
  }
  if (above_high_ && outputLength() <= low_watermark_) {
    above_high_ = false;
    if (callbacks_) {
      callbacks_->onBelowWriteBufferLowWatermark();
    }
  }
}

void Connection::peerClosed() {
  if (connecting_) {
    raiseEvent(ConnectionEvent::ConnectFailure);
    return;
  }
  // Deliver any bytes still buffered before reporting the close (a response followed by FIN).
  if (state_ == State::Open && callbacks_ && inputLength() > 0) {
    deliverInput();
  }
  if (state_ == State::Flushing) {
    closeNow();
    return;
  }
  raiseEvent(ConnectionEvent::RemoteClose);
}

void Connection::enableTls(TlsContextSharedPtr context, const std::string& sni,
                           const std::string& session_key) {
  SSL* ssl = fd_ >= 0 ? context->newSsl(sni, session_key) : nullptr;
  if (ssl == nullptr) {
    return;  // no socket (a failed connect reports itself) or out of memory: plaintext never
  }
  SSL_set_fd(ssl, fd_);
  const auto timeout = context->handshakeTimeout();
  tls_ = std::make_unique<TlsSocket>(std::move(context), ssl, session_key);
  handshake_timer_ = dispatcher_.createTimer([this] { onTlsFailure("timeout"); });
  handshake_timer_->enableTimer(timeout);
}

void Connection::tlsHandshake() {
  ERR_clear_error();
  SSL* ssl = tls_->ssl();
  const int r = SSL_do_handshake(ssl);
  if (r == 1) {
    tls_->setHandshakeDone();
    handshake_timer_->disableTimer();
    tls_->context().record("ok", std::chrono::steady_clock::now() - tls_->started(),
                           SSL_session_reused(ssl) == 1);
    if (!tls_->context().isServer()) {
      std::weak_ptr<bool> alive = alive_;
      raiseEvent(ConnectionEvent::Connected);
      if (alive.expired() || state_ == State::Closed) {
        return;
      }
    }
    if (outputLength() > 0) {
      scheduleFlush();
    }
    readTls();  // application data may have come with the last handshake flight
    return;
  }
  const int error = SSL_get_error(ssl, r);
  if (error == SSL_ERROR_WANT_READ) {
    if (write_registered_ && outputLength() == 0) {
      event_del(write_event_);  // level-triggered writability would spin until the peer answers
      write_registered_ = false;
    }
    return;
  }
  if (error == SSL_ERROR_WANT_WRITE) {
    if (!write_registered_) {
      event_add(write_event_, nullptr);
      write_registered_ = true;
    }
    return;
  }
  onTlsFailure(tls_->failureReason(error));
}

void Connection::onTlsFailure(std::string_view reason) {
  if (state_ == State::Closed || !tls_ || tls_->handshakeDone()) {
    return;
  }
  tls_->context().record(reason, std::chrono::steady_clock::now() - tls_->started(), false);
  if (tls_->context().isServer()) {
    closeNow();
  } else {
    raiseEvent(ConnectionEvent::TlsFailure);
  }
}

void Connection::readTls() {
  if (!tls_->handshakeDone()) {
    tlsHandshake();
    return;
  }
  SSL* ssl = tls_->ssl();
  size_t total = 0;
  bool eof = false;
  // Decrypted into a stack buffer and appended: reserving evbuffer space for a read that then
  // finds nothing would leave an empty 16 KiB chain on every idle connection.
  char plain[kTlsRecord];
  while (total < kReadChunk) {
    ERR_clear_error();
    const int n = SSL_read(ssl, plain, static_cast<int>(sizeof(plain)));
    if (n > 0) {
      evbuffer_add(input_.get(), plain, static_cast<size_t>(n));
      total += static_cast<size_t>(n);
      tls_->setReceivedData();
      if (SSL_has_pending(ssl) == 0) {
        break;  // nothing buffered: the socket's next readable event brings the rest
      }
      continue;
    }
    const int error = SSL_get_error(ssl, n);
    if (error == SSL_ERROR_WANT_READ) {
      break;
    }
    if (error == SSL_ERROR_WANT_WRITE) {
      if (!write_registered_) {
        event_add(write_event_, nullptr);
        write_registered_ = true;
      }
      break;
    }
    if (error == SSL_ERROR_SSL && !tls_->context().isServer() && !tls_->receivedData()) {
      // An alert before the first response byte: the server refused the session after our
      // handshake finished (TLS 1.3 client certificates are checked then).
      tls_->context().record(tls_->failureReason(error),
                             std::chrono::steady_clock::now() - tls_->started(), false);
      raiseEvent(ConnectionEvent::TlsFailure);
      return;
    }
    // close_notify, EOF, a reset or a bad record: the same for the codecs above.
    ERR_clear_error();
    eof = true;
    break;
  }
  if (total > 0 && state_ == State::Open && callbacks_ != nullptr) {
    std::weak_ptr<bool> alive = alive_;
    deliverInput();
    if (alive.expired() || state_ == State::Closed) {
      return;
    }
  }
  if (eof) {
    peerClosed();
    return;
  }
  if (total >= kReadChunk && SSL_has_pending(ssl) == 1 && read_registered_) {
    event_active(read_event_, EV_READ, 0);  // the rest on a later loop turn, as for plaintext
  }
}

void Connection::flushTls() {
  if (!tls_->handshakeDone()) {
    tlsHandshake();
    return;
  }
  SSL* ssl = tls_->ssl();
  const size_t before = outputLength();
  while (outputLength() > 0) {
    const size_t chunk = std::min(outputLength(), kTlsRecord);
    const unsigned char* data = evbuffer_pullup(output_.get(), static_cast<ev_ssize_t>(chunk));
    ERR_clear_error();
    const int n = SSL_write(ssl, data, static_cast<int>(chunk));
    if (n > 0) {
      evbuffer_drain(output_.get(), static_cast<size_t>(n));
      continue;
    }
    const int error = SSL_get_error(ssl, n);
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
      break;
    }
    ERR_clear_error();
    peerClosed();  // the peer is gone
    return;
  }
  afterWrite(outputLength() < before);
}

}  // namespace bulwark::network
