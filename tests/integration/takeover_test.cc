// A second bulwark on a port another one already serves: refused unless --takeover asks for the
// SO_REUSEPORT handover, with which it shares the port and keeps serving once the old one left.

#include <csignal>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string configOn(const FakeUpstream& up, const std::string& listener_address) {
  return ConfigBuilder()
      .listener("http1", "", "public", listener_address)
      .upstream("http1", {up.address()})
      .route()
      .yaml();
}

// Proves a stray second process cannot silently take half the connections: it exits non-zero
// naming the listener and the flag, before binding anything (its admin port never announced).
TEST(TakeoverTest, SecondProcessOnAServedPortIsRefused) {
  FakeUpstream up(Protocol::Http1);
  auto first = startBulwark(configOn(up, "127.0.0.1:0"));
  ASSERT_TRUE(first);
  std::string address = "127.0.0.1:" + std::to_string(first->port("public"));
  auto second = runBulwarkCli({"run", "-c", writeTempFile("second.yaml", configOn(up, address))});
  ASSERT_TRUE(second.code.has_value());
  EXPECT_EQ(1, *second.code);
  std::string all = second.stdout_text + second.stderr_text;
  EXPECT_NE(std::string::npos,
            all.find("listener public: " + address + " is already served by another process"))
      << all;
  EXPECT_NE(std::string::npos, all.find("--takeover")) << all;
  EXPECT_EQ(std::string::npos, all.find("listening on")) << all;
}

// Proves the handover: with --takeover the new process binds the same port and, once the old one
// has drained and exited, answers on it.
TEST(TakeoverTest, TakeoverSharesThePortAndServesAfterTheOldProcessLeaves) {
  FakeUpstream up(Protocol::Http1);
  auto first = startBulwark(configOn(up, "127.0.0.1:0"));
  ASSERT_TRUE(first);
  uint16_t port = first->port("public");
  BulwarkStartOptions options;
  options.extra_args = {"--takeover"};
  auto second = startBulwark(configOn(up, "127.0.0.1:" + std::to_string(port)), options);
  ASSERT_TRUE(second);
  EXPECT_EQ(port, second->port("public"));
  ASSERT_EQ(0, first->stop(SIGTERM).value_or(-1));
  Http1Client client(port);
  auto r = client.get("/after-handover", {}, deadlineIn(5s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  auto seen = up.requests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ("/after-handover", seen.back().path);
}

}  // namespace
}  // namespace bulwark::testing
