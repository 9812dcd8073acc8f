// WebSocket through the real binary with a real client and server (python3-websockets): a route
// that lists `upgrades: [websocket]` forwards the handshake once, and after the upstream's 101
// relays bytes both ways until either side closes, with backpressure (1 MiB messages), the
// stream idle timeout, and a drain that lets the open tunnel finish. Never retried or hedged.

#include <csignal>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/http1_client.h"
#include "tests/support/process.h"
#include "tests/support/socket_util.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kPeer[] = BULWARK_SOURCE_DIR "/tests/integration/websocket_peer.py";

std::unique_ptr<ChildProcess> startPeer(const std::vector<std::string>& args) {
  ProcessOptions options;
  options.path = "/usr/bin/python3";
  options.args = {kPeer};
  options.args.insert(options.args.end(), args.begin(), args.end());
  std::string error;
  auto child = ChildProcess::spawn(options, &error);
  EXPECT_TRUE(child) << error;
  return child;
}

/** The echo server: a running peer and its port. */
struct EchoServer {
  std::unique_ptr<ChildProcess> process;
  uint16_t port = 0;

  size_t handshakes(const std::string& path) const {
    size_t n = 0;
    for (const auto& line : process->lines()) {
      n += line.text == "handshake " + path ? 1 : 0;
    }
    return n;
  }
};

EchoServer startEchoServer() {
  EchoServer server;
  server.process = startPeer({"server"});
  if (server.process) {
    auto port = server.process->waitForListeningPort(deadlineIn(20s));
    EXPECT_TRUE(port) << "python3-websockets missing? " << server.process->output();
    server.port = port.value_or(0);
  }
  return server;
}

std::string url(const BulwarkProcess& proxy, const std::string& path) {
  return "ws://127.0.0.1:" + std::to_string(proxy.port("public")) + path;
}

// Retries and hedging configured on the route: neither may touch an upgrade.
constexpr char kTunnelRoute[] =
    "  upgrades: [websocket]\n"
    "  retries: {attempts: 3, retryOn: [5xx, reset, connect-failure]}\n"
    "  hedging: {delay: 20ms, maxRequests: 2}\n";

TEST(WebSocketTest, TenThousandMessagesEchoThroughATunnelThatSurvivesADrain) {
  EchoServer server = startEchoServer();
  ASSERT_NE(0, server.port);
  BulwarkStartOptions options;
  options.log_level = "info";  // for "drain complete"
  auto proxy = startBulwark(ConfigBuilder()
                                .drain("0s", "60s")
                                .listener("http1")
                                .upstream("http1", {"127.0.0.1:" + std::to_string(server.port)})
                                .route(kTunnelRoute)
                                .yaml(),
                            options);
  ASSERT_TRUE(proxy);

  auto client = startPeer({"client", url(*proxy, "/echo"), "10000", "2000"});
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->waitForLine("^echoed 2000$", deadlineIn(60s))) << client->output();
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_tunnels_active", {{"route", "all"}},
      [](double v) { return v == 1; }, deadlineIn(5s)));

  // Drain mid-conversation: the listener closes, the open tunnel carries on.
  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  ASSERT_TRUE(waitFor(
      [&] {
        std::string error;
        int fd = connectTcp("127.0.0.1", proxy->port("public"), deadlineIn(1s), &error);
        if (fd >= 0) {
          closeAbortive(fd);
          return false;
        }
        return true;
      },
      deadlineIn(10s)))
      << "the listener still accepts after SIGTERM";
  ASSERT_TRUE(client->signal(SIGUSR1));

  auto done = client->waitForLine("^done (\\d+)$", deadlineIn(120s));
  ASSERT_TRUE(done) << client->output();
  EXPECT_EQ("10000", (*done)[1]);
  auto client_exit = client->waitForExit(deadlineIn(10s));
  ASSERT_TRUE(client_exit);
  EXPECT_TRUE(client_exit->exited && client_exit->code == 0) << client->output();

  // The tunnel was the last thing in flight: its close ends the drain well before the timeout.
  auto code = proxy->waitForExit(20s);
  ASSERT_TRUE(code) << "bulwark still draining after the tunnel closed";
  EXPECT_EQ(0, *code);
  EXPECT_TRUE(proxy->process().waitForLine("drain complete", deadlineIn(1s)));
  EXPECT_EQ(1u, server.handshakes("/echo"));
}

TEST(WebSocketTest, HandshakeIsSentOnceEvenWhenRefusedOrSlow) {
  EchoServer server = startEchoServer();
  ASSERT_NE(0, server.port);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1")
                                .upstream("http1", {"127.0.0.1:" + std::to_string(server.port)})
                                .route(kTunnelRoute)
                                .yaml());
  ASSERT_TRUE(proxy);

  // A 503 to the handshake goes back as it is: retryOn 5xx does not apply to an upgrade.
  auto refused = startPeer({"client", url(*proxy, "/refuse"), "1"});
  ASSERT_TRUE(refused);
  auto refused_exit = refused->waitForExit(deadlineIn(20s));
  ASSERT_TRUE(refused_exit);
  EXPECT_NE(0, refused_exit->code);
  EXPECT_NE(std::string::npos, refused->output().find("503")) << refused->output();
  EXPECT_EQ(1u, server.handshakes("/refuse"));

  // A handshake slower than the hedging delay is not hedged.
  auto slow = startPeer({"client", url(*proxy, "/slow"), "50"});
  ASSERT_TRUE(slow);
  ASSERT_TRUE(slow->waitForLine("^done 50$", deadlineIn(30s))) << slow->output();
  EXPECT_EQ(1u, server.handshakes("/slow"));

  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_upgrades_total",
      {{"route", "all"}, {"upgrade", "websocket"}, {"result", "switched"}},
      [](double v) { return v == 1; }, deadlineIn(5s)));
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_upgrades_total",
      {{"route", "all"}, {"upgrade", "websocket"}, {"result", "refused_by_upstream"}},
      [](double v) { return v == 1; }, deadlineIn(5s)));
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_retries_total").value_or(0));
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_hedges_total").value_or(0));
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_tunnels_active", {{"route", "all"}},
      [](double v) { return v == 0; }, deadlineIn(5s)));
}

TEST(WebSocketTest, IdleTunnelIsClosedByTheStreamIdleTimeout) {
  EchoServer server = startEchoServer();
  ASSERT_NE(0, server.port);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1")
                                .upstream("http1", {"127.0.0.1:" + std::to_string(server.port)})
                                .route("  upgrades: [websocket]\n  timeouts: {idle: 300ms}\n")
                                .yaml());
  ASSERT_TRUE(proxy);
  auto client = startPeer({"idle", url(*proxy, "/quiet")});
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->waitForLine("^echoed 1$", deadlineIn(20s))) << client->output();
  // No close frame from anyone: the proxy drops both connections (1006, abnormal closure).
  ASSERT_TRUE(client->waitForLine("^closed by peer 1006$", deadlineIn(10s))) << client->output();
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_stream_idle_timeouts_total",
      {{"route", "all"}, {"action", "reset"}}, [](double v) { return v == 1; }, deadlineIn(5s)));
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_tunnels_active", {{"route", "all"}},
      [](double v) { return v == 0; }, deadlineIn(5s)));
}

TEST(WebSocketTest, OtherUpgradeProtocolsAreRefusedOnAWebSocketRoute) {
  EchoServer server = startEchoServer();
  ASSERT_NE(0, server.port);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1")
                                .upstream("http1", {"127.0.0.1:" + std::to_string(server.port)})
                                .route("  upgrades: [websocket]\n")
                                .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  ASSERT_TRUE(
      client.sendRaw("GET /other HTTP/1.1\r\nHost: example.test\r\nUpgrade: irc/6.9\r\n"
                     "Connection: Upgrade\r\n\r\n"));
  auto r = client.readResponse(deadlineIn(5s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(403, r->status);
  EXPECT_EQ("upgrade_not_allowed", r->header("x-bulwark-reason").value_or(""));
  EXPECT_EQ(0u, server.handshakes("/other"));
}

}  // namespace
}  // namespace bulwark::testing
