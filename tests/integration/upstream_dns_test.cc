// DNS discovery through the real binary against a DNS server of the test's own on loopback
// (BULWARK_DNS_SERVER): records added and removed change the host set without a restart, and a
// failing resolver keeps the last good set.

#include <cstdlib>
#include <sstream>

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
  std::ostringstream y;
  y << "apiVersion: bulwark.dev/v1alpha1\nkind: ProxyConfig\nmetadata: {name: dns}\n"
    << "admin: {address: 127.0.0.1:0}\n"
    << "runtime: {concurrency: 1, drain: {minDuration: 0s, timeout: 5s}}\n"
    << "listeners:\n- {name: public, address: 127.0.0.1:0, protocol: http1}\n"
    << "upstreams:\n- name: backend\n  protocol: http1\n  endpoints:\n"
    << "    dns: {name: backend.bulwark.test, port: " << port << ", refreshInterval: 100ms}\n"
    << "routes:\n- name: all\n  match: {path: {prefix: /}}\n  upstream: backend\n"
    // Only 127.0.0.1 has a listener, so about half the requests need a retry once 127.0.0.2 is
    // added; the budget allows that many back to back (the default 20 % would not: it is not what
    // this test is about).
    << "  retries: {attempts: 3, retryOn: [connect-failure], backoff: {baseInterval: 1ms, "
       "maxInterval: 5ms},\n"
    << "            budget: {percent: 100, minRetryConcurrency: 10}}\n";
  return y.str();
}

bool upstreamsContain(uint16_t admin, const std::string& needle) {
  return adminGet(admin, "/upstreams").body.find(needle) != std::string::npos;
}

TEST(UpstreamDnsTest, RecordsAddAndRemoveHostsWithoutRestart) {
  DnsServer dns;
  ASSERT_TRUE(dns.ok());
  auto up = FakeUpstream::start(Protocol::Http1);
  dns.setRecords("backend.bulwark.test", {"127.0.0.1"});
  ::setenv("BULWARK_DNS_SERVER", dns.address().c_str(), 1);
  std::string error;
  auto proxy = BulwarkProcess::start(dnsConfig(up->port()), {"public"}, &error);
  ::unsetenv("BULWARK_DNS_SERVER");
  ASSERT_NE(proxy, nullptr) << error;
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

}  // namespace
}  // namespace bulwark::testing
