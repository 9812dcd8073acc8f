// DNS discovery (UpstreamManager over DnsResolver on c-ares) against a DNS server of the test's
// own on loopback (tests/support/dns_server.h, its own thread), named by BULWARK_DNS_SERVER:
// the host set follows the records, a failed lookup keeps the last good set, and an address
// that stays keeps its Host object (and with it health, ejection and counters).

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/dns_resolver.h"
#include "proxy/upstream/upstream_manager.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/support/dns_server.h"

namespace bulwark::upstream {
namespace {

using namespace std::chrono_literals;

constexpr const char* kName = "backend.unit.bulwark.test";

std::vector<std::string> addressesOf(const UpstreamSharedPtr& upstream) {
  std::vector<std::string> out;
  for (const auto& host : upstream->hosts()->hosts) {
    out.push_back(host->address);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/**
 * An UpstreamManager discovering kName from a DnsServer on loopback. Thread: test (the
 * manager's dispatcher); the DNS server runs on its own thread.
 */
class DnsDiscoveryTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(dns_.ok());
    ::setenv(DnsResolver::kServerEnv, dns_.address().c_str(), 1);
  }
  void TearDown() override {
    manager_.reset();
    mocks::runReady(dispatcher_);
    ::unsetenv(DnsResolver::kServerEnv);
  }

  /** Starts discovery of kName, port 8080, refreshed every 20 ms. */
  void start() {
    config::UpstreamSpec spec;
    spec.name = "u";
    spec.dns = config::DnsSpec{kName, 8080, 20ms};
    manager_ = std::make_unique<UpstreamManager>(dispatcher_, registry_);
    auto upstreams = manager_->prepare({spec});
    manager_->activate(upstreams);
    upstream_ = upstreams.at("u");
  }
  bool waitForAddresses(const std::vector<std::string>& expected) {
    return mocks::runUntil(dispatcher_, [&] { return addressesOf(upstream_) == expected; });
  }
  /**
   * Runs until the resolver finished `lookups` more lookups. One lookup asks A and AAAA and may
   * ask each twice (ARES_OPT_TRIES), and the next lookup starts only once the previous one was
   * handled: queries beyond lookups x 4 prove that many lookups were handled.
   */
  bool waitForLookups(uint64_t lookups) {
    const uint64_t target = dns_.queries() + lookups * 4 + 1;
    return mocks::runUntil(
        dispatcher_, [&] { return dns_.queries() >= target; }, 10s);
  }

  testing::DnsServer dns_;
  event::Dispatcher dispatcher_;
  prometheus::Registry registry_;
  std::unique_ptr<UpstreamManager> manager_;
  UpstreamSharedPtr upstream_;
};

TEST_F(DnsDiscoveryTest, HostSetFollowsTheRecords) {
  dns_.setRecords(kName, {"10.0.0.1", "10.0.0.2"});
  start();
  ASSERT_TRUE(waitForAddresses({"10.0.0.1:8080", "10.0.0.2:8080"}));
  dns_.setRecords(kName, {"10.0.0.3"});
  ASSERT_TRUE(waitForAddresses({"10.0.0.3:8080"}));
}

TEST_F(DnsDiscoveryTest, AFailingResolverKeepsTheLastGoodSet) {
  dns_.setRecords(kName, {"10.0.0.1", "10.0.0.2"});
  start();
  ASSERT_TRUE(waitForAddresses({"10.0.0.1:8080", "10.0.0.2:8080"}));
  auto before = upstream_->hosts();

  dns_.setFailing(true);
  ASSERT_TRUE(waitForLookups(2));
  EXPECT_EQ(upstream_->hosts(), before) << "a SERVFAIL replaced the host set";

  dns_.setFailing(false);
  dns_.setRecords(kName, {});  // NXDOMAIN
  ASSERT_TRUE(waitForLookups(2));
  EXPECT_EQ(upstream_->hosts(), before) << "NXDOMAIN emptied the host set";
}

TEST_F(DnsDiscoveryTest, AnAddressThatStaysKeepsItsHost) {
  dns_.setRecords(kName, {"10.0.0.1", "10.0.0.2"});
  start();
  ASSERT_TRUE(waitForAddresses({"10.0.0.1:8080", "10.0.0.2:8080"}));
  HostSharedPtr kept;
  for (const auto& host : upstream_->hosts()->hosts) {
    if (host->address == "10.0.0.2:8080") {
      kept = host;
    }
  }
  ASSERT_NE(kept, nullptr);
  kept->requests_total = 7;

  dns_.setRecords(kName, {"10.0.0.2", "10.0.0.3"});
  ASSERT_TRUE(waitForAddresses({"10.0.0.2:8080", "10.0.0.3:8080"}));
  for (const auto& host : upstream_->hosts()->hosts) {
    if (host->address == "10.0.0.2:8080") {
      EXPECT_EQ(host, kept) << "the staying address got a new Host object";
      EXPECT_EQ(host->requests_total.load(), 7u);
    }
  }
}

TEST_F(DnsDiscoveryTest, ResolverReportsAFailureAsAnError) {
  dns_.setFailing(true);
  DnsResolver resolver(dispatcher_);
  ASSERT_TRUE(resolver.ok());
  std::optional<Result<DnsAnswer>> answer;
  resolver.resolve(kName, [&](Result<DnsAnswer> a) { answer = std::move(a); });
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return answer.has_value(); }));
  EXPECT_FALSE(answer->isOk());
}

TEST_F(DnsDiscoveryTest, ResolverReturnsEveryAddressAndTheSmallestTtl) {
  dns_.setRecords(kName, {"10.0.0.1", "10.0.0.2", "::1"}, 42);
  DnsResolver resolver(dispatcher_);
  std::optional<Result<DnsAnswer>> answer;
  resolver.resolve(kName, [&](Result<DnsAnswer> a) { answer = std::move(a); });
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return answer.has_value(); }));
  ASSERT_TRUE(answer->isOk()) << answer->error();
  auto addresses = (*answer)->addresses;
  std::sort(addresses.begin(), addresses.end());
  EXPECT_EQ(addresses, (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "::1"}));
  EXPECT_EQ((*answer)->ttl, 42s);
}

}  // namespace
}  // namespace bulwark::upstream
