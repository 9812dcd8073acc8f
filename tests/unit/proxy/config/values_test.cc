#include <gtest/gtest.h>

#include "proxy/config/address.h"
#include "proxy/config/byte_size.h"
#include "proxy/config/suggest.h"
#include "proxy/config/vocabulary.h"

namespace bulwark::config {
namespace {

// Plain integers and binary suffixes are byte sizes; decimal suffixes are not.
TEST(ByteSizeTest, ParsesIntegersAndBinarySuffixes) {
  EXPECT_EQ(*parseByteSize("0"), 0u);
  EXPECT_EQ(*parseByteSize("65536"), 65536u);
  EXPECT_EQ(*parseByteSize("64Ki"), 64u * 1024);
  EXPECT_EQ(*parseByteSize("1Mi"), 1024u * 1024);
  EXPECT_EQ(*parseByteSize("1Gi"), 1024u * 1024 * 1024);
  EXPECT_EQ(parseByteSize("10MB").error(),
            "expected a byte size like 65536 or \"64Ki\", got \"10MB\" (suffixes are Ki, Mi and "
            "Gi)");
  EXPECT_EQ(parseByteSize("-1").error(),
            "expected a byte size like 65536 or \"64Ki\", got \"-1\" (sizes cannot be negative)");
  EXPECT_FALSE(parseByteSize("").isOk());
  EXPECT_FALSE(parseByteSize("Ki").isOk());
  EXPECT_FALSE(parseByteSize("1.5Mi").isOk());
  EXPECT_FALSE(parseByteSize("99999999999999999999Gi").isOk());
  EXPECT_EQ(formatByteSize(65536), "64Ki");
  EXPECT_EQ(formatByteSize(1u << 30), "1Gi");
  EXPECT_EQ(formatByteSize(1000), "1000");
}

// Near misses find the intended name; unrelated words find nothing.
TEST(SuggestTest, FindsNearMisses) {
  const std::vector<std::string> fields = {"attempts", "perTryTimeout", "retryOn", "backoff"};
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(editDistance("", "abc"), 3u);
  EXPECT_EQ(closestMatch("per_try_timeout", fields), "perTryTimeout");
  EXPECT_EQ(closestMatch("PerTryTimeout", fields), "perTryTimeout");
  EXPECT_EQ(closestMatch("retry-on", fields), "retryOn");
  EXPECT_EQ(closestMatch("atempts", fields), "attempts");
  EXPECT_EQ(closestMatch("backof", fields), "backoff");
  EXPECT_EQ(closestMatch("frobnicate", fields), std::nullopt);
  EXPECT_EQ(closestMatch("on", fields), std::nullopt);
  EXPECT_EQ(didYouMean("atempts", fields), "; did you mean \"attempts\"?");
  EXPECT_EQ(didYouMean("zzz", fields), "");
}

// host:port forms: IPv4, bracketed IPv6, names; port 0 allowed (bind to any free port).
TEST(AddressTest, ParsesHostPort) {
  auto v4 = parseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(v4.isOk());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  EXPECT_EQ(v4->kind, HostPort::Kind::Ipv4);
  auto v6 = parseHostPort("[::]:0");
  ASSERT_TRUE(v6.isOk());
  EXPECT_EQ(v6->host, "::");
  EXPECT_EQ(v6->kind, HostPort::Kind::Ipv6);
  EXPECT_TRUE(v6->isWildcard());
  auto name = parseHostPort("ranking.default.svc:50051");
  ASSERT_TRUE(name.isOk());
  EXPECT_EQ(name->kind, HostPort::Kind::Name);
  EXPECT_EQ(parseHostPort("127.0.0.1:65535")->port, 65535);

  EXPECT_FALSE(parseHostPort("127.0.0.1:65536").isOk());
  EXPECT_FALSE(parseHostPort("127.0.0.1").isOk());
  EXPECT_FALSE(parseHostPort("127.0.0.1:").isOk());
  EXPECT_FALSE(parseHostPort("::1:80").isOk());
  EXPECT_FALSE(parseHostPort("[::1:80").isOk());
  EXPECT_FALSE(parseHostPort("[zz]:80").isOk());
  EXPECT_FALSE(parseHostPort(":80").isOk());
  EXPECT_FALSE(parseHostPort("999.1.1.1:80").isOk());
  EXPECT_FALSE(parseHostPort("bad host:80").isOk());
  EXPECT_FALSE(parseHostPort("-bad:80").isOk());
}

TEST(VocabularyTest, AllRetryOnTokensAreHttpThenGrpc) {
  EXPECT_EQ(allRetryOnTokens().size(), httpRetryOnTokens().size() + grpcRetryOnTokens().size());
  EXPECT_EQ(allRetryOnTokens().front(), httpRetryOnTokens().front());
  EXPECT_EQ(allRetryOnTokens().back(), grpcRetryOnTokens().back());
}

}  // namespace
}  // namespace bulwark::config
