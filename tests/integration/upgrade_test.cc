// HTTP/1.1 protocol switches (WebSocket's Upgrade handshake) through the real binary on a route
// that does not list the protocol in `upgrades`: bulwark answers 403 upgrade_not_allowed itself,
// closes the connection, and the upstream never sees the request (it used to be forwarded, fail
// as a protocol error and be retried: the handshake reached the backend twice). Tunnels on routes
// that allow them are in websocket_test.cc.

#include <string>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

TEST(UpgradeTest, WebSocketHandshakeIsRefusedOnceAndNeverForwarded) {
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1")
                                .upstream("http1", {up.address()})
                                .route("  retries: {attempts: 3, retryOn: [5xx, reset]}\n")
                                .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  // The handshake, then a first WebSocket frame the client may send before the answer.
  ASSERT_TRUE(client.sendRaw(
      "GET /chat HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"));
  auto r = client.readResponse(deadlineIn(5s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(403, r->status);
  EXPECT_EQ("upgrade_not_allowed", r->header("x-bulwark-reason").value_or(""));
  EXPECT_TRUE(client.waitForClose(deadlineIn(5s)));
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_local_replies_total", {{"reason", "upgrade_not_allowed"}},
      [](double v) { return v == 1; }, deadlineIn(2s)));
  EXPECT_EQ(0u, up.requestCount());

  // An ordinary request on a new connection still goes through.
  Http1Client plain(proxy->port("public"));
  auto ok = plain.get("/after", {}, deadlineIn(5s));
  ASSERT_TRUE(ok) << plain.lastError();
  EXPECT_EQ(200, ok->status);
  EXPECT_EQ(1u, up.requestCount());
}

}  // namespace
}  // namespace bulwark::testing
