// Path normalisation: what a route prefix can be bypassed with, and what each option does.

#include "proxy/http/path.h"

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

std::string forwarded(std::string_view target, PathOptions options = {}) {
  PathResult r = normalizePath(target, options);
  EXPECT_EQ(PathResult::Action::Forward, r.action) << target << ": " << r.reason;
  return r.unchanged ? std::string(target) : r.path;
}

TEST(PathTest, AlreadyNormalPathsAreLeftWithoutACopy) {
  for (const char* normal :
       {"/", "/a/b", "/a/b/", "/a.b/..c/.d?x=/../y", "/v1/tasks?id=%2e", "*"}) {
    PathResult r = normalizePath(normal, {});
    EXPECT_EQ(PathResult::Action::Forward, r.action) << normal;
    EXPECT_TRUE(r.unchanged) << normal;
    EXPECT_TRUE(r.path.empty()) << normal;
  }
  for (const char* needs_work : {"//a", "/a/./b", "/a/..", "/%41", "/a\\b"}) {
    EXPECT_FALSE(normalizePath(needs_work, {}).unchanged) << needs_work;
  }
}

TEST(PathTest, DotSegmentsAreResolvedAndNeverClimbAboveTheRoot) {
  EXPECT_EQ("/internal", forwarded("/public/../internal"));
  EXPECT_EQ("/internal", forwarded("/../../internal"));
  EXPECT_EQ("/a/c", forwarded("/a/./b/../c"));
  EXPECT_EQ("/a/", forwarded("/a/b/.."));
  EXPECT_EQ("/", forwarded("/.."));
  EXPECT_EQ("/a/b", forwarded("/a/b"));
  EXPECT_EQ("/a/b/", forwarded("/a/b/"));
  EXPECT_EQ("/", forwarded("/"));
}

TEST(PathTest, EncodedDotsAndUnreservedCharactersAreDecodedBeforeDotSegments) {
  EXPECT_EQ("/internal", forwarded("/%2e%2e/internal"));
  EXPECT_EQ("/internal", forwarded("/public/%2E%2E/internal"));
  EXPECT_EQ("/Abc~", forwarded("/%41bc%7e"));
  // Reserved characters stay encoded, with upper-case hex.
  EXPECT_EQ("/a%3Fb%20c", forwarded("/a%3fb%20c"));
}

TEST(PathTest, SlashesAreMergedAndBackslashesAreSeparators) {
  EXPECT_EQ("/internal", forwarded("//internal"));
  EXPECT_EQ("/a/b/", forwarded("/a///b//"));
  EXPECT_EQ("/a/b", forwarded("/a\\b"));
  PathOptions keep;
  keep.merge_slashes = false;
  EXPECT_EQ("//internal", forwarded("//internal", keep));
}

TEST(PathTest, TheQueryIsKeptAsItCame) {
  EXPECT_EQ("/b?x=/../y&z=%2e", forwarded("/a/../b?x=/../y&z=%2e"));
}

TEST(PathTest, InvalidPercentEncodingIsRejected) {
  for (const char* bad : {"/a%", "/a%2", "/a%zz", "/%g1/b"}) {
    PathResult r = normalizePath(bad, {});
    EXPECT_EQ(PathResult::Action::Reject, r.action) << bad;
    EXPECT_EQ("invalid percent-encoding", r.reason);
  }
}

TEST(PathTest, EscapedSlashesFollowTheConfiguredAction) {
  PathOptions options;
  EXPECT_EQ("/a%2Fb", forwarded("/a%2fb", options));  // KEEP_UNCHANGED: not a separator
  options.escaped_slashes = EscapedSlashes::RejectRequest;
  EXPECT_EQ(PathResult::Action::Reject, normalizePath("/a%2Fb", options).action);
  options.escaped_slashes = EscapedSlashes::UnescapeAndForward;
  EXPECT_EQ("/internal", forwarded("/public%2F..%2Finternal", options));
  options.escaped_slashes = EscapedSlashes::UnescapeAndRedirect;
  PathResult redirect = normalizePath("/a%2Fb%5Cc", options);
  EXPECT_EQ(PathResult::Action::Redirect, redirect.action);
  EXPECT_EQ("/a/b/c", redirect.path);
}

TEST(PathTest, NormalisationOffLeavesThePathAlone) {
  PathOptions off;
  off.normalize = false;
  off.merge_slashes = false;
  EXPECT_EQ("/public/../internal", forwarded("/public/../internal", off));
  EXPECT_EQ("/%2E%2E", forwarded("/%2e%2E", off));  // only the hex case changes
  EXPECT_EQ("/a\\b", forwarded("/a\\b", off));
}

}  // namespace
}  // namespace bulwark::http
