// Path normalisation through the real binary: a route prefix cannot be bypassed with dot
// segments, encoded dots or doubled slashes, the upstream sees the path that was routed, and
// invalid or (when configured) escaped-slash paths are refused before routing.

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

struct Answer {
  int status = 0;
  std::string reason;
};

Answer get(uint16_t port, const std::string& target) {
  Http1Client client(port);
  if (!client.sendRaw("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")) {
    return {};
  }
  auto r = client.readResponse(deadlineIn(5s));
  if (!r) {
    return {};
  }
  return {r->status, r->header("x-bulwark-reason").value_or("")};
}

TEST(PathNormalizationTest, PrefixRoutesCannotBeBypassedAndUpstreamsSeeTheRoutedPath) {
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1")
                                .upstream("http1", {up.address()})
                                .route("", "/public", "public")
                                .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  for (const char* escape : {"/public/../internal", "/public/%2e%2e/internal",
                             "/public/%2E%2E/%2e%2e/internal", "/PUBLIC/x"}) {
    EXPECT_EQ(404, get(port, escape).status) << escape;
  }
  EXPECT_EQ(0u, up.requestCount());
  EXPECT_EQ(200, get(port, "//public//a/./b/../c?q=/../x").status);
  EXPECT_EQ(200, get(port, "/%2e%2e/public/%7Euser").status);
  ASSERT_TRUE(up.waitForRequests(2));
  EXPECT_EQ("/public/a/c?q=/../x", up.request(0)->path);
  EXPECT_EQ("/public/~user", up.request(1)->path);

  auto bad = get(port, "/public/%zz");
  EXPECT_EQ(400, bad.status);
  EXPECT_EQ("invalid_path", bad.reason);
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_local_replies_total", {{"reason", "invalid_path"}},
      [](double v) { return v == 1; }, deadlineIn(2s)));
}

TEST(PathNormalizationTest, EscapedSlashesAreRejectedOrRedirectedWhenConfigured) {
  FakeUpstream up(Protocol::Http1);
  BulwarkStartOptions options;
  options.listeners = {"public", "redirecting"};
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("http1", "  http: {escapedSlashes: REJECT_REQUEST}\n")
          .listener("http1", "  http: {escapedSlashes: UNESCAPE_AND_REDIRECT}\n", "redirecting")
          .upstream("http1", {up.address()})
          .route("", "/public", "public")
          .yaml(),
      options);
  ASSERT_TRUE(proxy);
  auto rejected = get(proxy->port("public"), "/public/a%2F..%2F..%2Finternal");
  EXPECT_EQ(400, rejected.status);
  EXPECT_EQ("invalid_path", rejected.reason);

  Http1Client client(proxy->port("redirecting"));
  ASSERT_TRUE(client.sendRaw("GET /public/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto redirect = client.readResponse(deadlineIn(5s));
  ASSERT_TRUE(redirect) << client.lastError();
  EXPECT_EQ(307, redirect->status);
  EXPECT_EQ("/public/a/b", redirect->header("location").value_or(""));
  EXPECT_EQ(0u, up.requestCount());
}

}  // namespace
}  // namespace bulwark::testing
