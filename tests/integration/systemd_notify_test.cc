// systemd's readiness protocol through the real binary: the test binds the unix datagram socket
// that systemd would (NOTIFY_SOCKET) and reads what bulwark reports at start, reload, drain and
// for the watchdog.

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/process.h"
#include "tests/support/socket_util.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** The service manager's end: a bound AF_UNIX datagram socket. Thread: the test thread. */
class NotifySocket {
public:
  /** `name` starting with '@' binds in the abstract namespace, else a path in a temp dir. */
  explicit NotifySocket(const std::string& name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (name.front() == '@') {
      address_ = name;
    } else {
      address_ = std::filesystem::path(writeTempFile("placeholder", "")).parent_path() / name;
    }
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    if (address_.front() == '@') {
      addr.sun_path[0] = '\0';
    } else {
      len += 1;
    }
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~NotifySocket() {
    ::close(fd_);
    if (address_.front() == '/') {
      ::unlink(address_.c_str());
    }
  }
  bool bound() const { return bound_; }
  const std::string& address() const { return address_; }

  /** The next datagram, or nullopt at the deadline. */
  std::optional<std::string> receive(Deadline deadline) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return std::nullopt;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
        if (n >= 0) {
          return std::string(buf, static_cast<size_t>(n));
        }
      }
    }
  }

  /** The next datagram whose first line is not WATCHDOG=1 (pings interleave with states). */
  std::optional<std::string> receiveState(Deadline deadline) {
    while (auto message = receive(deadline)) {
      if (message->rfind("WATCHDOG=1", 0) != 0) {
        return message;
      }
    }
    return std::nullopt;
  }

private:
  int fd_ = -1;
  bool bound_ = false;
  std::string address_;
};

const std::string kConfig = ConfigBuilder()
                                .drain("0s", "5s")
                                .listener("http1")
                                .upstream("http1", {"127.0.0.1:1"})
                                .route()
                                .yaml();

struct Started {
  std::unique_ptr<ChildProcess> child;
  uint16_t admin_port = 0;
  uint16_t listener_port = 0;
  std::string config_path;
};

Started startBulwark(const std::vector<std::pair<std::string, std::string>>& env) {
  Started s;
  s.config_path = writeTempFile("bulwark.yaml", kConfig);
  ProcessOptions options;
  options.path = bulwarkBinary();
  options.args = {"run", "-c", s.config_path, "--log-level", "info"};
  options.env = env;
  std::string error;
  s.child = ChildProcess::spawn(options, &error);
  EXPECT_TRUE(s.child) << error;
  return s;
}

/** Reads the ports bulwark announced (it prints them before READY=1). */
void readPorts(Started& s) {
  auto admin = s.child->waitForLine(std::regex(R"(admin listening on 127\.0\.0\.1:(\d+))"));
  auto listener =
      s.child->waitForLine(std::regex(R"(listener public listening on 127\.0\.0\.1:(\d+))"));
  ASSERT_TRUE(admin && listener) << s.child->output();
  s.admin_port = static_cast<uint16_t>(std::stoi((*admin)[1]));
  s.listener_port = static_cast<uint16_t>(std::stoi((*listener)[1]));
}

TEST(SystemdNotify, ReadyOnceListenersAreBoundThenStoppingAtDrain) {
  NotifySocket notify("notify.sock");
  ASSERT_TRUE(notify.bound());
  auto s = startBulwark({{"NOTIFY_SOCKET", notify.address()}});
  ASSERT_TRUE(s.child);
  auto ready = notify.receiveState(deadlineIn(10s));
  ASSERT_TRUE(ready) << "no notification; output:\n" << s.child->output();
  EXPECT_EQ(ready->rfind("READY=1\n", 0), 0u) << *ready;
  EXPECT_NE(ready->find("STATUS=serving with 2 workers"), std::string::npos) << *ready;
  // READY=1 means traffic can come: the listener and the admin port accept at once.
  readPorts(s);
  std::string error;
  int fd = connectTcp("127.0.0.1", s.listener_port, deadlineIn(1s), &error);
  EXPECT_GE(fd, 0) << error;
  if (fd >= 0) {
    ::close(fd);
  }
  EXPECT_EQ(adminGet(s.admin_port, "/ready").status, 200);

  s.child->signal(SIGTERM);
  auto stopping = notify.receiveState(deadlineIn(5s));
  ASSERT_TRUE(stopping);
  EXPECT_EQ(stopping->rfind("STOPPING=1\n", 0), 0u) << *stopping;
  auto exit = s.child->waitForExit(deadlineIn(10s));
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->exited && exit->code == 0);
  // Nothing after STOPPING=1.
  EXPECT_FALSE(notify.receiveState(deadlineIn(50ms)));
}

TEST(SystemdNotify, ReloadIsBracketedByReloadingAndReadyAppliedOrRejected) {
  NotifySocket notify("@bulwark-notify-test-" + std::to_string(::getpid()));
  ASSERT_TRUE(notify.bound());
  auto s = startBulwark({{"NOTIFY_SOCKET", notify.address()}});
  ASSERT_TRUE(s.child);
  auto ready = notify.receiveState(deadlineIn(10s));
  ASSERT_TRUE(ready && ready->rfind("READY=1", 0) == 0) << s.child->output();
  readPorts(s);

  // An applied reload (POST /reload).
  ASSERT_EQ(adminPost(s.admin_port, "/reload").status, 200);
  auto reloading = notify.receiveState(deadlineIn(5s));
  ASSERT_TRUE(reloading);
  EXPECT_EQ(reloading->rfind("RELOADING=1\n", 0), 0u) << *reloading;
  EXPECT_TRUE(std::regex_search(*reloading, std::regex(R"(\nMONOTONIC_USEC=\d+(\n|$))")))
      << *reloading;
  auto ready_again = notify.receiveState(deadlineIn(5s));
  ASSERT_TRUE(ready_again);
  EXPECT_EQ(ready_again->rfind("READY=1\n", 0), 0u) << *ready_again;

  // A rejected reload (SIGHUP, invalid file): the old config keeps serving, so READY=1 again.
  {
    std::ofstream out(s.config_path);
    out << "listeners: [\n";
  }
  s.child->signal(SIGHUP);
  reloading = notify.receiveState(deadlineIn(5s));
  ASSERT_TRUE(reloading);
  EXPECT_EQ(reloading->rfind("RELOADING=1\n", 0), 0u) << *reloading;
  ready_again = notify.receiveState(deadlineIn(5s));
  ASSERT_TRUE(ready_again);
  EXPECT_EQ(ready_again->rfind("READY=1\n", 0), 0u) << *ready_again;
  EXPECT_EQ(adminGet(s.admin_port, "/ready").status, 200);
  s.child->signal(SIGTERM);
  EXPECT_TRUE(s.child->waitForExit(deadlineIn(10s)));
}

TEST(SystemdNotify, WatchdogPingsAtHalfTheTimeout) {
  NotifySocket notify("notify.sock");
  ASSERT_TRUE(notify.bound());
  // 200 ms timeout: a ping every 100 ms.
  auto s = startBulwark({{"NOTIFY_SOCKET", notify.address()}, {"WATCHDOG_USEC", "200000"}});
  ASSERT_TRUE(s.child);
  int pings = 0;
  bool ready = false;
  auto start = Clock::now();
  auto deadline = deadlineIn(10s);
  while (pings < 5) {
    auto message = notify.receive(deadline);
    ASSERT_TRUE(message) << "after " << pings << " pings; output:\n" << s.child->output();
    if (message->rfind("READY=1", 0) == 0) {
      ready = true;
      start = Clock::now();
    } else if (*message == "WATCHDOG=1") {
      EXPECT_TRUE(ready) << "a ping before READY=1";
      ++pings;
    }
  }
  // Five pings at 100 ms take about 400 ms after the first; well under the 200 ms timeout each.
  EXPECT_LT(Clock::now() - start, 3s);
  s.child->signal(SIGTERM);
  EXPECT_TRUE(s.child->waitForExit(deadlineIn(10s)));
}

TEST(SystemdNotify, NoWatchdogPingsForAnotherProcessesWatchdog) {
  NotifySocket notify("notify.sock");
  ASSERT_TRUE(notify.bound());
  // WATCHDOG_PID names another process (pid 1): the variables were inherited, not meant for us.
  auto s = startBulwark(
      {{"NOTIFY_SOCKET", notify.address()}, {"WATCHDOG_USEC", "100000"}, {"WATCHDOG_PID", "1"}});
  ASSERT_TRUE(s.child);
  auto ready = notify.receive(deadlineIn(10s));
  ASSERT_TRUE(ready && ready->rfind("READY=1", 0) == 0) << s.child->output();
  // Ten ping intervals without a datagram.
  EXPECT_FALSE(notify.receive(deadlineIn(500ms)));
  s.child->signal(SIGTERM);
  auto stopping = notify.receive(deadlineIn(5s));
  ASSERT_TRUE(stopping);
  EXPECT_EQ(stopping->rfind("STOPPING=1", 0), 0u) << *stopping;
  EXPECT_TRUE(s.child->waitForExit(deadlineIn(10s)));
}

}  // namespace
}  // namespace bulwark::testing
