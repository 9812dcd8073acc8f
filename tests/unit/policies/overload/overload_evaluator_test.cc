#include "policies/overload/overload_evaluator.h"

#include <gtest/gtest.h>

namespace bulwark::policies {
namespace {

constexpr uint64_t kMiB = 1 << 20;

OverloadEvaluator ladder() {
  return OverloadEvaluator(100 * kMiB, {{OverloadAction::DisableKeepalive, 0.8},
                                        {OverloadAction::StopAcceptingConnections, 0.9},
                                        {OverloadAction::ResetHighMemoryStreams, 0.95}});
}

TEST(OverloadEvaluatorTest, ActionsTurnOnAtTheirThresholds) {
  auto e = ladder();
  EXPECT_FALSE(e.evaluate(79 * kMiB).isActive(OverloadAction::DisableKeepalive));
  auto s = e.evaluate(80 * kMiB);
  EXPECT_TRUE(s.isActive(OverloadAction::DisableKeepalive));
  EXPECT_FALSE(s.isActive(OverloadAction::StopAcceptingConnections));
  s = e.evaluate(91 * kMiB);
  EXPECT_TRUE(s.isActive(OverloadAction::StopAcceptingConnections));
  EXPECT_FALSE(s.isActive(OverloadAction::ResetHighMemoryStreams));
  s = e.evaluate(200 * kMiB);
  EXPECT_TRUE(s.isActive(OverloadAction::ResetHighMemoryStreams));
}

TEST(OverloadEvaluatorTest, AnActionTurnsOffOnlyBelowItsHysteresis) {
  auto e = ladder();
  e.evaluate(91 * kMiB);
  // 0.87 is under 0.9 but within the 5 % hysteresis: still on.
  EXPECT_TRUE(e.evaluate(87 * kMiB).isActive(OverloadAction::StopAcceptingConnections));
  EXPECT_FALSE(e.evaluate(84 * kMiB).isActive(OverloadAction::StopAcceptingConnections));
  EXPECT_TRUE(e.state().isActive(OverloadAction::DisableKeepalive));
  EXPECT_FALSE(e.evaluate(10 * kMiB).isActive(OverloadAction::DisableKeepalive));
}

TEST(OverloadEvaluatorTest, UnconfiguredActionsAndAZeroLimitStayOff) {
  OverloadEvaluator only_reset(100 * kMiB, {{OverloadAction::ResetHighMemoryStreams, 0.5}});
  auto s = only_reset.evaluate(99 * kMiB);
  EXPECT_TRUE(s.isActive(OverloadAction::ResetHighMemoryStreams));
  EXPECT_FALSE(s.isActive(OverloadAction::StopAcceptingConnections));
  EXPECT_FALSE(s.isActive(OverloadAction::DisableKeepalive));
  OverloadEvaluator off(0, {{OverloadAction::DisableKeepalive, 0.1}});
  EXPECT_FALSE(off.evaluate(1ull << 40).isActive(OverloadAction::DisableKeepalive));
}

TEST(OverloadEvaluatorTest, BytesOverIsMeasuredFromTheActionsThreshold) {
  auto e = ladder();
  EXPECT_EQ(5 * kMiB, e.bytesOver(OverloadAction::ResetHighMemoryStreams, 100 * kMiB));
  EXPECT_EQ(0u, e.bytesOver(OverloadAction::ResetHighMemoryStreams, 90 * kMiB));
}

TEST(OverloadEvaluatorTest, NamesRoundTrip) {
  for (auto a : {OverloadAction::DisableKeepalive, OverloadAction::StopAcceptingConnections,
                 OverloadAction::ResetHighMemoryStreams}) {
    EXPECT_EQ(a, overloadActionFromName(overloadActionName(a)));
  }
  EXPECT_FALSE(overloadActionFromName("stopAcceptingRequests"));
}

TEST(SelectStreamsToResetTest, LargestFirstUntilTheTargetIsFreed) {
  const std::vector<uint64_t> bytes = {2 * kMiB, 8 * kMiB, 0, 4 * kMiB, 8 * kMiB};
  EXPECT_EQ((std::vector<size_t>{1, 4}), selectStreamsToReset(bytes, 10 * kMiB, kMiB));
  EXPECT_EQ((std::vector<size_t>{1}), selectStreamsToReset(bytes, 8 * kMiB, kMiB));
  EXPECT_EQ((std::vector<size_t>{1, 4, 3, 0}), selectStreamsToReset(bytes, 100 * kMiB, kMiB));
}

TEST(SelectStreamsToResetTest, AtLeastOneWhenAnyQualifiesAndNoneBelowTheMinimum) {
  const std::vector<uint64_t> bytes = {512 * 1024, 3 * kMiB};
  EXPECT_EQ((std::vector<size_t>{1}), selectStreamsToReset(bytes, 0, kMiB));
  EXPECT_TRUE(selectStreamsToReset({512 * 1024, 1000}, 100 * kMiB, kMiB).empty());
  EXPECT_TRUE(selectStreamsToReset({}, kMiB, kMiB).empty());
}

}  // namespace
}  // namespace bulwark::policies
