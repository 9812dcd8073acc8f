#include "common/cidr.h"

#include <gtest/gtest.h>

namespace bulwark {
namespace {

TEST(CidrTest, Ipv4RangesAndSingleHosts) {
  auto loopback = Cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(loopback);
  EXPECT_TRUE(loopback->contains("127.0.0.1"));
  EXPECT_TRUE(loopback->contains("127.255.0.9"));
  EXPECT_FALSE(loopback->contains("128.0.0.1"));
  auto host = Cidr::parse("127.0.0.1");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains("127.0.0.1"));
  EXPECT_FALSE(host->contains("127.0.0.2"));
  auto odd = Cidr::parse("10.1.128.0/17");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("10.1.200.3"));
  EXPECT_FALSE(odd->contains("10.1.127.255"));
  auto all = Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains("203.0.113.7"));
  EXPECT_FALSE(all->contains("::1"));  // families never mix
}

TEST(CidrTest, Ipv6AndMappedIpv4) {
  auto v6 = Cidr::parse("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fd12:3456::1"));
  EXPECT_FALSE(v6->contains("fe80::1"));
  auto loopback = Cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(loopback);
  EXPECT_TRUE(loopback->contains("::ffff:127.0.0.1"));
}

TEST(CidrTest, MalformedIsRefused) {
  for (const char* bad : {"", "/8", "127.0.0.1/33", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                          "host.example", "10.0.0.0/8/8", "1.2.3"}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
  auto any = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(any);
  EXPECT_FALSE(any->contains("not-an-ip"));
}

}  // namespace
}  // namespace bulwark
