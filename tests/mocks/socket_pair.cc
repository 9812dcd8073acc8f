#include "tests/mocks/socket_pair.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <event2/buffer.h>
#include <gtest/gtest.h>

namespace bulwark::mocks {

SocketPair::SocketPair(event::Dispatcher& dispatcher) {
  // As main() does: writing to a socket whose peer left must be an error, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    ADD_FAILURE() << "socketpair: " << std::strerror(errno);
    return;
  }
  connection_fd_ = fds[0];
  peer_fd_ = fds[1];
  connection_ = std::make_unique<network::Connection>(dispatcher, connection_fd_, "10.0.0.1:40000");
}

SocketPair::~SocketPair() { closePeer(); }

void SocketPair::feed(std::string_view bytes) {
  ASSERT_NE(connection_, nullptr) << "feed() after the connection was handed over";
  connection_->addBufferedInput(bytes.data(), bytes.size());
  connection_->dispatchBuffered();
}

void SocketPair::peerWrite(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(peer_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << "peer write: " << std::strerror(errno);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void SocketPair::peerShutdownWrite() { ::shutdown(peer_fd_, SHUT_WR); }

void SocketPair::closePeer() {
  if (peer_fd_ >= 0) {
    ::close(peer_fd_);
    peer_fd_ = -1;
  }
}

const std::string& SocketPair::received() {
  char buf[16384];
  while (peer_fd_ >= 0 && !peer_saw_close_) {
    ssize_t n = ::recv(peer_fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      received_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      peer_saw_close_ = true;
    }
    break;
  }
  return received_;
}

void SocketPair::clearReceived() {
  received();
  received_.clear();
}

bool SocketPair::peerSawClose() {
  received();
  return peer_saw_close_;
}

void SocketPair::shrinkSocketBuffers(int bytes) {
  ::setsockopt(connection_fd_, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  ::setsockopt(peer_fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

}  // namespace bulwark::mocks
