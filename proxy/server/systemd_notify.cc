#include "proxy/server/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace bulwark::server {
namespace {

/** A positive decimal number, or nullopt (systemd's variables are plain decimals). */
std::optional<unsigned long long> parseDecimal(const char* text) {
  if (text == nullptr || *text == '\0') {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || value == 0) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

SystemdNotifier SystemdNotifier::fromEnvironment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  std::optional<std::chrono::microseconds> watchdog;
  if (auto usec = parseDecimal(std::getenv("WATCHDOG_USEC"))) {
    // WATCHDOG_PID names the process the watchdog is for; a child that inherited the
    // environment must not ping on its parent's behalf.
    auto pid = parseDecimal(std::getenv("WATCHDOG_PID"));
    if (!pid || *pid == static_cast<unsigned long long>(::getpid())) {
      watchdog = std::chrono::microseconds(*usec);
    }
  }
  return SystemdNotifier(socket != nullptr ? socket : "", watchdog);
}

SystemdNotifier::SystemdNotifier(std::string socket_path,
                                 std::optional<std::chrono::microseconds> watchdog)
    : socket_path_(std::move(socket_path)), watchdog_(watchdog) {
  // Only absolute paths and abstract names are valid; anything else is ignored as sd_notify does.
  if (!socket_path_.empty() && socket_path_.front() != '/' && socket_path_.front() != '@') {
    socket_path_.clear();
  }
  if (socket_path_.empty()) {
    watchdog_.reset();
  }
}

SystemdNotifier::~SystemdNotifier() {
  stopWatchdog();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

bool SystemdNotifier::send(std::string_view state) {
  if (!enabled()) {
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) {
    return false;
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  if (addr.sun_path[0] == '@') {
    addr.sun_path[0] = '\0';  // abstract namespace: no terminating NUL counts
  } else {
    len += 1;
  }
  if (fd_ < 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  ssize_t sent = fd_ < 0 ? -1
                         : ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                                    reinterpret_cast<const sockaddr*>(&addr), len);
  if (sent != static_cast<ssize_t>(state.size())) {
    if (!send_error_logged_) {
      send_error_logged_ = true;
      spdlog::warn("systemd notification to {} failed: {}", socket_path_, std::strerror(errno));
    }
    return false;
  }
  return true;
}

void SystemdNotifier::ready(std::string_view status) {
  if (stopping_) {
    return;  // a reload during the drain does not make the service ready again
  }
  send(fmt::format("READY=1\nSTATUS={}", status));
}

void SystemdNotifier::reloading() {
  // MONOTONIC_USEC lets systemd (Type=notify-reload) match this to the reload it asked for.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
              static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  send(fmt::format("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC={}", usec));
}

void SystemdNotifier::stopping() {
  stopping_ = true;
  send("STOPPING=1\nSTATUS=draining");
}

void SystemdNotifier::startWatchdog(event::Dispatcher& dispatcher, std::function<bool()> healthy) {
  if (!watchdog_ || watchdog_timer_) {
    return;
  }
  healthy_ = std::move(healthy);
  // Half the timeout, as sd_watchdog_enabled(3) advises: one late loop turn is not a restart.
  auto interval = *watchdog_ / 2;
  watchdog_timer_ = dispatcher.createTimer([this, interval] {
    if (!healthy_ || healthy_()) {
      send("WATCHDOG=1");
    }
    watchdog_timer_->enableTimer(interval);
  });
  send("WATCHDOG=1");
  watchdog_timer_->enableTimer(interval);
}

void SystemdNotifier::stopWatchdog() { watchdog_timer_.reset(); }

}  // namespace bulwark::server
