#include "policies/lb/hash.h"

#include <gtest/gtest.h>

namespace bulwark::policies::lb {
namespace {

// Consistent hashing must agree across builds and replicas: pin the reference XXH64 vectors
// (xxHash's own sanity values), including inputs that exercise the 32-byte stripe loop and the
// 8/4/1-byte tails.
TEST(XxHash64Test, MatchesReferenceVectors) {
  EXPECT_EQ(0xEF46DB3751D8E999ULL, xxHash64(""));
  EXPECT_EQ(0xD5AFBA1336A3BE4BULL, xxHash64("", 1));
  EXPECT_EQ(0xD24EC4F1A98C6E5BULL, xxHash64("a"));
  EXPECT_EQ(0x44BC2CF5AD770999ULL, xxHash64("abc"));
  EXPECT_EQ(0x1C330FB2D66BE179ULL, xxHash64("as"));
  EXPECT_EQ(0x631C37CE72A97393ULL, xxHash64("asd"));
  EXPECT_EQ(0x415872F599CEA71EULL, xxHash64("asdf"));
  EXPECT_EQ(0xFBCEA83C8A378BF1ULL, xxHash64("Nobody inspects the spammish repetition"));
}

TEST(XxHash64Test, SeedChangesTheHash) {
  EXPECT_NE(xxHash64("10.0.0.1:8080", 0), xxHash64("10.0.0.1:8080", 1));
  EXPECT_EQ(hashKey("user-42"), xxHash64("user-42", 0));
}

}  // namespace
}  // namespace bulwark::policies::lb
