#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/event/dispatcher.h"

namespace bulwark::server {

/**
 * The service manager's notification protocol (sd_notify(3)) spoken directly, without
 * libsystemd: one datagram of `KEY=VALUE` lines per state change, sent to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). systemd sets it for
 * `Type=notify` units; without it every call is a no-op, so a foreground run or a container pays
 * nothing. A failed send is logged once and never fails the proxy: readiness is reported, not
 * required, and systemd's own start timeout handles a notification that never arrives.
 * Thread: the main loop's (start, reload and drain all run there).
 */
class SystemdNotifier {
public:
  /** Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment. */
  static SystemdNotifier fromEnvironment();
  SystemdNotifier(std::string socket_path, std::optional<std::chrono::microseconds> watchdog);
  ~SystemdNotifier();
  // The watchdog timer points back at this object: it stays where it was made.
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return !socket_path_.empty(); }
  /** WATCHDOG_USEC when it is set for this process (WATCHDOG_PID absent or ours). */
  std::optional<std::chrono::microseconds> watchdogTimeout() const { return watchdog_; }

  /** Every listener is bound and a config is live. */
  void ready(std::string_view status);
  /** A reload started; ready() again when it ends, applied or rejected. */
  void reloading();
  /** The drain started; the process exits when it ends. Later ready() calls are dropped. */
  void stopping();
  /**
   * With a watchdog timeout, sends WATCHDOG=1 every timeout/2 on the dispatcher while
   * `healthy()` holds; a stalled process stops pinging and systemd restarts it. Without one,
   * does nothing. Stop with stopWatchdog() before the dispatcher goes away.
   */
  void startWatchdog(event::Dispatcher& dispatcher, std::function<bool()> healthy);
  void stopWatchdog();

  /** Sends one notification datagram; false when disabled or the send failed. */
  bool send(std::string_view state);

private:
  std::string socket_path_;
  std::optional<std::chrono::microseconds> watchdog_;
  int fd_ = -1;
  bool send_error_logged_ = false;
  bool stopping_ = false;
  event::TimerPtr watchdog_timer_;
  std::function<bool()> healthy_;
};

}  // namespace bulwark::server
