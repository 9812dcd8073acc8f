// limits.writeTimeout through the real binary: a client that stops reading while bulwark has a
// response to deliver is cut after the timeout (no progress at all), counted as write_timeout;
// a slow reader that keeps taking bytes is not.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/socket_util.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** A loopback client with a small receive buffer, so an unread response backs up quickly. */
int connectSmallWindow(uint16_t port, int receive_buffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

double writeTimeouts(uint16_t admin) {
  return metricValue(admin, "bulwark_downstream_protocol_errors_total",
                     {{"listener", "public"}, {"reason", "write_timeout"}})
      .value_or(0);
}

TEST(WriteTimeoutTest, AClientThatStopsReadingIsCutAndASlowReaderIsNot) {
  FakeUpstream up(Protocol::Http1);
  up.script().forPath("/big", respond(200, {}, std::string(16UL << 20, 'x')));
  up.script().forPath("/medium", respond(200, {}, std::string(1UL << 20, 'y')));
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1", "  limits: {writeTimeout: 500ms}\n")
                                .upstream("http1", {up.address()})
                                .route()
                                .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  const uint16_t admin = proxy->adminPort();
  std::string error;

  // Reads a little, then keeps taking 64 KiB every 100 ms: slow, never stalled for 500 ms.
  int slow = connectSmallWindow(port, 64 * 1024);
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(sendAll(slow, "GET /medium HTTP/1.1\r\nHost: h\r\n\r\n", deadlineIn(2s), &error));
  size_t received = 0;
  std::string buf(64 * 1024, '\0');
  const auto slow_deadline = deadlineIn(60s);
  while (received < (1UL << 20) && Clock::now() < slow_deadline) {
    auto r = recvSome(slow, buf.data(), buf.size(), deadlineIn(5s));
    if (r.n <= 0) {
      break;
    }
    received += static_cast<size_t>(r.n);
    waitFor([] { return false; }, deadlineIn(100ms));  // the reader's pace, not a sync point
  }
  EXPECT_GT(received, 1UL << 20) << "the slow reader was cut after " << received << " bytes";
  ::close(slow);
  EXPECT_EQ(0, writeTimeouts(admin));

  // Asks for 16 MiB and never reads.
  int stalled = connectSmallWindow(port, 4096);
  ASSERT_GE(stalled, 0);
  ASSERT_TRUE(sendAll(stalled, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n", deadlineIn(2s), &error));
  EXPECT_TRUE(waitFor([&] { return writeTimeouts(admin) == 1; }, deadlineIn(10s)));
  // Draining now ends early: the connection is gone.
  size_t drained = 0;
  for (;;) {
    auto r = recvSome(stalled, buf.data(), buf.size(), deadlineIn(5s));
    if (r.n <= 0) {
      break;
    }
    drained += static_cast<size_t>(r.n);
  }
  EXPECT_LT(drained, 16UL << 20);
  ::close(stalled);
}

}  // namespace
}  // namespace bulwark::testing
