#include "proxy/upstream/hash_key.h"

#include <gtest/gtest.h>

#include "policies/lb/hash.h"
#include "proxy/network/address.h"

namespace bulwark::upstream {
namespace {

config::UpstreamSpec ringSpec(config::ConsistentHashSpec ch) {
  config::UpstreamSpec spec;
  spec.load_balancer.policy = config::LbPolicy::RingHash;
  spec.load_balancer.consistent_hash = ch;
  return spec;
}

TEST(HashKeyTest, HeaderThenCookieThenSourceIp) {
  config::ConsistentHashSpec ch;
  ch.http_header_name = "x-user";
  ch.http_cookie_name = "session";
  ch.use_source_ip = true;
  auto spec = ringSpec(ch);
  http::RequestHeaders h;
  EXPECT_EQ(hashKeyFor(spec, h, "10.1.2.3:5555"), policies::lb::hashKey("10.1.2.3"));
  h.headers.add("cookie", "a=1; session=\"abc\"; b=2");
  EXPECT_EQ(hashKeyFor(spec, h, "10.1.2.3:5555"), policies::lb::hashKey("abc"));
  h.headers.add("x-user", "u7");
  EXPECT_EQ(hashKeyFor(spec, h, "10.1.2.3:5555"), policies::lb::hashKey("u7"));
}

TEST(HashKeyTest, NoKeyWithoutConsistentHashingOrInput) {
  config::ConsistentHashSpec ch;
  ch.http_header_name = "x-user";
  auto spec = ringSpec(ch);
  http::RequestHeaders h;
  EXPECT_EQ(hashKeyFor(spec, h, "10.1.2.3:5555"), std::nullopt);
  h.headers.add("x-user", "u7");
  spec.load_balancer.policy = config::LbPolicy::RoundRobin;
  EXPECT_EQ(hashKeyFor(spec, h, "10.1.2.3:5555"), std::nullopt);
}

TEST(HashKeyTest, AddressIpStripsPortsAndBrackets) {
  EXPECT_EQ(network::addressIp("1.2.3.4:80"), "1.2.3.4");
  EXPECT_EQ(network::addressIp("[::1]:80"), "::1");
  EXPECT_EQ(network::addressIp("::1"), "::1");
  EXPECT_EQ(network::addressIp("1.2.3.4"), "1.2.3.4");
}

TEST(HashKeyTest, CookieNamesMatchExactly) {
  http::HeaderMap h;
  h.add("cookie", "xsession=1; session=2");
  EXPECT_EQ(findCookie(h, "session"), "2");
  EXPECT_EQ(findCookie(h, "other"), std::nullopt);
}

}  // namespace
}  // namespace bulwark::upstream
