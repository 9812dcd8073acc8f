#include "tests/support/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bulwark::testing {

namespace {

int remainingMs(Deadline deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  // Round up so a sub-millisecond remainder still waits instead of spinning.
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 1000 * 1000));
}

}  // namespace

short pollFd(int fd, short events, Deadline deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int ms = Clock::now() >= deadline ? 0 : remainingMs(deadline);
    const int rc = poll(&p, 1, ms);
    if (rc > 0) {
      return p.revents;
    }
    if (rc == 0) {
      if (Clock::now() >= deadline) {
        return 0;
      }
      continue;
    }
    if (errno != EINTR) {
      return POLLERR;
    }
  }
}

int connectTcp(const std::string& host, uint16_t port, Deadline deadline, std::string* error,
               int rcvbuf, const std::string& source_host) {
  sockaddr_storage ss{};
  socklen_t sslen;
  int family;
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = family = AF_INET;
    sin->sin_port = htons(port);
    sslen = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = family = AF_INET6;
    sin6->sin6_port = htons(port);
    sslen = sizeof(sockaddr_in6);
  } else {
    if (error) {
      *error = "not a numeric address: " + host;
    }
    return -1;
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (error) {
      *error = std::string("socket: ") + std::strerror(errno);
    }
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (rcvbuf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  if (!source_host.empty()) {
    sockaddr_storage local{};
    auto* local4 = reinterpret_cast<sockaddr_in*>(&local);
    auto* local6 = reinterpret_cast<sockaddr_in6*>(&local);
    bool parsed = family == AF_INET
                      ? inet_pton(AF_INET, source_host.c_str(), &local4->sin_addr) == 1
                      : inet_pton(AF_INET6, source_host.c_str(), &local6->sin6_addr) == 1;
    local.ss_family = static_cast<sa_family_t>(family);
    if (!parsed || bind(fd, reinterpret_cast<sockaddr*>(&local), sslen) != 0) {
      if (error) {
        *error =
            "bind source " + source_host + ": " + (parsed ? std::strerror(errno) : "bad address");
      }
      close(fd);
      return -1;
    }
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), sslen) != 0 && errno != EINPROGRESS) {
    if (error) {
      *error = "connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    }
    ::close(fd);
    return -1;
  }
  const short re = pollFd(fd, POLLOUT, deadline);
  int soerr = 0;
  socklen_t len = sizeof(soerr);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (re == 0 || soerr != 0) {
    if (error) {
      *error = "connect " + host + ":" + std::to_string(port) + ": " +
               (re == 0 ? std::string("deadline exceeded") : std::strerror(soerr));
    }
    ::close(fd);
    return -1;
  }
  return fd;
}

bool sendAll(int fd, std::string_view data, Deadline deadline, std::string* error) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const short re = pollFd(fd, POLLOUT, deadline);
      if (re == 0) {
        if (error) {
          *error = "send: deadline exceeded";
        }
        return false;
      }
      if (re & (POLLERR | POLLNVAL)) {
        // Fall through to send() again, which reports the precise error.
        if (::send(fd, data.data(), 0, MSG_NOSIGNAL) < 0) {
          if (error) {
            *error = std::string("send: ") + std::strerror(errno);
          }
          return false;
        }
      }
      continue;
    }
    if (error) {
      *error = std::string("send: ") + std::strerror(errno);
    }
    return false;
  }
  return true;
}

RecvResult recvSome(int fd, char* buf, size_t len, Deadline deadline) {
  while (true) {
    const ssize_t n = ::recv(fd, buf, len, 0);
    if (n >= 0) {
      return RecvResult{n, 0};
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return RecvResult{-1, errno};
    }
    const short re = pollFd(fd, POLLIN, deadline);
    if (re == 0) {
      return RecvResult{-2, ETIMEDOUT};
    }
  }
}

void closeAbortive(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::close(fd);
}

}  // namespace bulwark::testing
