#include "proxy/network/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>

namespace bulwark::network {
namespace {
std::atomic<uint64_t> next_connection_id{1};
constexpr std::chrono::seconds kFlushTimeout{5};
}  // namespace

bool parseAddress(const std::string& address, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof(out));
  std::string host;
  std::string port;
  if (!address.empty() && address[0] == '[') {
    auto end = address.find(']');
    if (end == std::string::npos || end + 1 >= address.size() || address[end + 1] != ':') return false;
    host = address.substr(1, end - 1);
    port = address.substr(end + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  int port_num = std::stoi(port);
  if (port_num > 65535) return false;
  if (host == "localhost" || host.empty()) host = "127.0.0.1";
  if (host == "*") host = "0.0.0.0";
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
    : Connection(dispatcher,
                 bufferevent_socket_new(dispatcher.base(), fd, BEV_OPT_CLOSE_ON_FREE),
                 std::move(peer_address)) {
  setNoDelay();
}

Connection::Connection(event::Dispatcher& dispatcher, bufferevent* bev, std::string peer_address)
    : dispatcher_(dispatcher), bev_(bev), peer_address_(std::move(peer_address)),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)) {
  bufferevent_setcb(bev_, &Connection::onRead, &Connection::onWrite, &Connection::onBevEvent, this);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
}

std::unique_ptr<Connection> Connection::connect(event::Dispatcher& dispatcher, const std::string& address,
                                                std::chrono::milliseconds timeout) {
  sockaddr_storage ss;
  socklen_t len = 0;
  bufferevent* bev = bufferevent_socket_new(dispatcher.base(), -1, BEV_OPT_CLOSE_ON_FREE);
  std::unique_ptr<Connection> conn(new Connection(dispatcher, bev, address));
  conn->connecting_ = true;
  if (!parseAddress(address, ss, len) ||
      bufferevent_socket_connect(bev, reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len)) != 0) {
    // Report asynchronously so callers see the same path as a refused connect.
    auto* raw = conn.get();
    conn->connect_timer_ = dispatcher.createTimer([raw] { raw->raiseEvent(ConnectionEvent::ConnectFailure); });
    conn->connect_timer_->enableTimer(std::chrono::microseconds(0));
    return conn;
  }
  conn->setNoDelay();
  if (timeout.count() > 0) {
    auto* raw = conn.get();
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
  if (bev_ != nullptr) {
    bufferevent_free(bev_);
  }
}

void Connection::setNoDelay() {
  evutil_socket_t fd = bufferevent_getfd(bev_);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
}

void Connection::write(evbuffer* data) {
  if (state_ == State::Closed) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  bufferevent_write_buffer(bev_, data);
  if (!above_high_ && outputLength() > high_watermark_) {
    above_high_ = true;
    if (callbacks_) callbacks_->onAboveWriteBufferHighWatermark();
  }
}

void Connection::write(const void* data, size_t len) {
  if (state_ == State::Closed) return;
  bufferevent_write(bev_, data, len);
  if (!above_high_ && outputLength() > high_watermark_) {
    above_high_ = true;
    if (callbacks_) callbacks_->onAboveWriteBufferHighWatermark();
  }
}

size_t Connection::outputLength() const { return evbuffer_get_length(bufferevent_get_output(bev_)); }

void Connection::readDisable(bool disable) {
  if (disable) {
    if (read_disable_count_++ == 0 && state_ == State::Open) {
      bufferevent_disable(bev_, EV_READ);
    }
  } else if (read_disable_count_ > 0) {
    if (--read_disable_count_ == 0 && state_ == State::Open) {
      bufferevent_enable(bev_, EV_READ);
      // Bytes that arrived while disabled are already in the input buffer; deliver them.
      if (evbuffer_get_length(input()) > 0) {
        auto* self = this;
        std::weak_ptr<bool> alive = alive_;
        dispatcher_.post([self, alive] {
          if (alive.expired()) return;  // the connection was destroyed meanwhile
          if (self->state_ == State::Open && self->read_disable_count_ == 0 && self->callbacks_ &&
              evbuffer_get_length(self->input()) > 0) {
            self->callbacks_->onData(self->input());
          }
        });
      }
    }
  }
}

void Connection::dispatchBuffered() {
  if (state_ == State::Open && callbacks_ && evbuffer_get_length(input()) > 0) {
    callbacks_->onData(input());
  }
}

void Connection::dispatchBufferedLater() {
  std::weak_ptr<bool> alive = alive_;
  dispatcher_.post([this, alive] {
    if (!alive.expired()) dispatchBuffered();
  });
}

void Connection::setWatermarks(size_t low, size_t high) {
  low_watermark_ = low;
  high_watermark_ = high;
  bufferevent_setwatermark(bev_, EV_WRITE, low, 0);
}

void Connection::close(CloseType type) {
  if (state_ == State::Closed) return;
  if (type == CloseType::FlushWrite && outputLength() > 0) {
    if (state_ == State::Flushing) return;
    state_ = State::Flushing;
    bufferevent_disable(bev_, EV_READ);
    // The write callback fires when output is empty (low watermark 0 set here).
    bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
    flush_timer_ = dispatcher_.createTimer([this] { closeNow(); });
    flush_timer_->enableTimer(kFlushTimeout);
    return;
  }
  closeNow();
}

void Connection::closeNow() {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  if (flush_timer_) flush_timer_->disableTimer();
  if (connect_timer_) connect_timer_->disableTimer();
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  // Free the socket now so the peer sees the close immediately; the object itself may still be
  // referenced by callbacks on the stack.
  bufferevent_free(bev_);
  bev_ = bufferevent_socket_new(dispatcher_.base(), -1, 0);
  if (callbacks_) callbacks_->onEvent(ConnectionEvent::LocalClose);
}

void Connection::raiseEvent(ConnectionEvent event) {
  if (state_ == State::Closed) return;
  connecting_ = false;
  if (connect_timer_) connect_timer_->disableTimer();
  if (event == ConnectionEvent::Connected) {
    if (callbacks_) callbacks_->onEvent(event);
    return;
  }
  state_ = State::Closed;
  if (flush_timer_) flush_timer_->disableTimer();
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  bufferevent_free(bev_);
  bev_ = bufferevent_socket_new(dispatcher_.base(), -1, 0);
  if (callbacks_) callbacks_->onEvent(event);
}

void Connection::onRead(bufferevent*, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->state_ != State::Open || self->callbacks_ == nullptr) return;
  self->callbacks_->onData(self->input());
}

void Connection::onWrite(bufferevent*, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->state_ == State::Flushing) {
    if (self->outputLength() == 0) self->closeNow();
    return;
  }
  if (self->above_high_ && self->outputLength() <= self->low_watermark_) {
    self->above_high_ = false;
    if (self->callbacks_) self->callbacks_->onBelowWriteBufferLowWatermark();
  }
}

void Connection::onBevEvent(bufferevent*, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->raiseEvent(ConnectionEvent::Connected);
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    if (self->connecting_) {
      self->raiseEvent(ConnectionEvent::ConnectFailure);
      return;
    }
    // Deliver any bytes still buffered before reporting the close (a response followed by FIN).
    if (self->state_ == State::Open && self->callbacks_ && evbuffer_get_length(self->input()) > 0) {
      self->callbacks_->onData(self->input());
    }
    if (self->state_ == State::Flushing) {
      self->closeNow();
      return;
    }
    self->raiseEvent(ConnectionEvent::RemoteClose);
  }
}

}  // namespace bulwark::network
