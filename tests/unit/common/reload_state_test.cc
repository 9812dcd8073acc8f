#include "common/reload_state.h"

#include <gtest/gtest.h>

namespace bulwark {
namespace {

struct Counter {
  int value = 0;
};
struct Other {};

std::function<std::shared_ptr<Counter>()> makeCounter(int& made) {
  return [&made] {
    ++made;
    return std::make_shared<Counter>();
  };
}

// A reload that asks for the same key gets the same object: nothing is reset.
TEST(ReloadableStateTest, SameKeySameObjectAcrossBuilds) {
  ReloadableState state;
  int made = 0;
  state.beginBuild();
  auto first = state.getOrCreate<Counter>("route/a/x", makeCounter(made));
  first->value = 7;
  state.endBuild();
  state.beginBuild();
  auto second = state.getOrCreate<Counter>("route/a/x", makeCounter(made));
  state.endBuild();
  EXPECT_EQ(first, second);
  EXPECT_EQ(second->value, 7);
  EXPECT_EQ(made, 1);
}

// Changed settings mean another key: a fresh object; the old one goes once no build asks for it.
TEST(ReloadableStateTest, UnaskedEntriesAreDroppedByTheNextBuild) {
  ReloadableState state;
  int made = 0;
  state.beginBuild();
  auto old_one = state.getOrCreate<Counter>("route/a/x", makeCounter(made));
  state.endBuild();
  state.beginBuild();
  auto new_one = state.getOrCreate<Counter>("route/a/y", makeCounter(made));
  state.endBuild();
  EXPECT_NE(old_one, new_one);
  EXPECT_EQ(state.size(), 1u);
  EXPECT_EQ(state.all<Counter>().front(), new_one);
}

// A failed build (no endBuild) keeps what the running config uses.
TEST(ReloadableStateTest, AFailedBuildDropsNothing) {
  ReloadableState state;
  int made = 0;
  state.beginBuild();
  auto kept = state.getOrCreate<Counter>("k", makeCounter(made));
  state.endBuild();
  state.beginBuild();  // fails before asking for "k"
  state.beginBuild();
  EXPECT_EQ(state.getOrCreate<Counter>("k", makeCounter(made)), kept);
  state.endBuild();
  EXPECT_EQ(made, 1);
}

// The same key asked with another type is a different piece of state, never a bad cast.
TEST(ReloadableStateTest, AnotherTypeUnderTheSameKeyIsRebuilt) {
  ReloadableState state;
  int made = 0;
  state.beginBuild();
  state.getOrCreate<Counter>("k", makeCounter(made));
  auto other = state.getOrCreate<Other>("k", [] { return std::make_shared<Other>(); });
  EXPECT_NE(other, nullptr);
  EXPECT_TRUE(state.all<Counter>().empty());
  EXPECT_EQ(state.all<Other>().size(), 1u);
}

}  // namespace
}  // namespace bulwark
