// DNS discovery through the real binary against a DNS server of the test's own on loopback
// (BULWARK_DNS_SERVER): records added and removed change the host set without a restart, and a
// failing resolver keeps the last good set.

#include <cstdlib>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/dns_server.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string dnsConfig(uint16_t port) {
  // Only 127.0.0.1 has a listener, so about half the requests need a retry once 127.0.0.2 is
  // added; the budget allows that many back to back (the default 20 % would not: it is not what
  // this test is about).
  return ConfigBuilder()
      .concurrency(1)
      .listener("http1")
      .dnsUpstream("http1", "backend.bulwark.test", port, "100ms")
      .route(
          "  retries: {attempts: 3, retryOn: [connect-failure], backoff: {baseInterval: 1ms, "
          "maxInterval: 5ms},\n"
          "            budget: {percent: 100, minRetryConcurrency: 10}}\n")
      .yaml();
}

bool upstreamsContain(uint16_t admin, const std::string& needle) {
  return adminGet(admin, "/upstreams").body.find(needle) != std::string::npos;
}

TEST(UpstreamDnsTest, RecordsAddAndRemoveHostsWithoutRestart) {
  DnsServer dns;
  ASSERT_TRUE(dns.ok());
  auto up = FakeUpstream::start(Protocol::Http1);
  dns.setRecords("backend.bulwark.test", {"127.0.0.1"});
  BulwarkStartOptions options;
  options.env = {{"BULWARK_DNS_SERVER", dns.address()}};
  auto proxy = startBulwark(dnsConfig(up->port()), options);
  ASSERT_NE(proxy, nullptr);
  uint16_t admin = proxy->adminPort();
  std::string live = "127.0.0.1:" + std::to_string(up->port());
  std::string added = "127.0.0.2:" + std::to_string(up->port());
  ASSERT_TRUE(waitFor([&] { return upstreamsContain(admin, live); }, deadlineIn(3s)));
  Http1Client c(proxy->port("public"));
  auto ok = [&] {
    auto r = c.get("/x");
    return r && r->status == 200;
  };
  EXPECT_TRUE(ok());
  // A second address appears...
  dns.setRecords("backend.bulwark.test", {"127.0.0.1", "127.0.0.2"});
  ASSERT_TRUE(waitFor([&] { return upstreamsContain(admin, added); }, deadlineIn(3s)));
  EXPECT_TRUE(waitForMetric(admin, "bulwark_upstream_endpoints", {{"upstream", "backend"}},
                            [](double v) { return v == 2; }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(ok());
  }
  // ...and goes again.
  dns.setRecords("backend.bulwark.test", {"127.0.0.1"});
  ASSERT_TRUE(waitFor([&] { return !upstreamsContain(admin, added); }, deadlineIn(3s)));
  // A failing resolver keeps the last good set.
  dns.setFailing(true);
  uint64_t queries = dns.queries();
  ASSERT_TRUE(waitFor([&] { return dns.queries() >= queries + 2; }, deadlineIn(5s)));
  EXPECT_TRUE(upstreamsContain(admin, live));
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(ok());
  }
}

// Proves AAAA records: a name with only an IPv6 address resolves to a host on ::1 that serves.
TEST(UpstreamDnsTest, AaaaRecordsGiveIpv6Hosts) {
  DnsServer dns;
  ASSERT_TRUE(dns.ok());
  auto up = FakeUpstream::start(
      FakeUpstreamOptions().withProtocol(Protocol::Http1).withHost("::1").withName("v6"));
  ASSERT_TRUE(up->ok()) << up->error();
  dns.setRecords("backend.bulwark.test", {"::1"});
  BulwarkStartOptions options;
  options.env = {{"BULWARK_DNS_SERVER", dns.address()}};
  auto proxy = startBulwark(ConfigBuilder()
                                .concurrency(1)
                                .listener("http1")
                                .dnsUpstream("http1", "backend.bulwark.test", up->port(), "100ms")
                                .route()
                                .yaml(),
                            options);
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  ASSERT_TRUE(waitFor([&] { return upstreamsContain(admin, "::1"); }, deadlineIn(3s)))
      << adminGet(admin, "/upstreams").body;
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 5; ++i) {
    auto r = c.get("/v6");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 200) << r->header("x-bulwark-reason").value_or("");
    EXPECT_EQ(r->header("x-upstream-name").value_or(""), "v6");
  }
  EXPECT_EQ(up->requestCount(), 5u);
}

}  // namespace
}  // namespace bulwark::testing
