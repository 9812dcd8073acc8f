// event::DeadlineQueue on a real dispatcher: entries fire in arming order and never before one
// duration has passed, a disarmed entry never fires, re-arming moves an entry to the back, a
// callback may re-arm itself or disarm another entry, and entries outlive their queue safely.
// Waits run the loop until a condition holds, with a deadline; no sleeps.

#include "proxy/event/deadline_queue.h"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/mocks/dispatcher_loop.h"

namespace bulwark::event {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/** Records when it fired, then runs an optional action. Thread: test. */
class Recorded : public DeadlineEntry {
public:
  Recorded(std::string name, std::vector<std::string>& log) : name_(std::move(name)), log_(log) {}
  void onDeadline() override {
    fired_at.push_back(Clock::now());
    log_.push_back(name_);
    if (then) {
      then();
    }
  }
  std::vector<Clock::time_point> fired_at;
  std::function<void()> then;

private:
  std::string name_;
  std::vector<std::string>& log_;
};

class DeadlineQueueTest : public ::testing::Test {
protected:
  bool waitForLog(size_t n) {
    return mocks::runUntil(dispatcher_, [&] { return log_.size() >= n; });
  }
  Dispatcher dispatcher_;
  DeadlineQueues queues_{dispatcher_};
  std::vector<std::string> log_;
};

TEST_F(DeadlineQueueTest, EntriesFireInArmingOrderAndNeverEarly) {
  auto& queue = queues_.forDuration(20ms);
  Recorded a("a", log_), b("b", log_), c("c", log_);
  const auto armed_a = Clock::now();
  queue.arm(a);
  queue.arm(b);
  queue.arm(c);
  const auto armed_c = Clock::now();
  EXPECT_TRUE(a.armed());
  ASSERT_TRUE(waitForLog(3));
  EXPECT_EQ(log_, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_GE(a.fired_at.at(0) - armed_a, 20ms) << "fired before its duration passed";
  EXPECT_GE(c.fired_at.at(0) - armed_c, 20ms);
  EXPECT_FALSE(a.armed());
  EXPECT_TRUE(queue.empty());
}

TEST_F(DeadlineQueueTest, ADisarmedEntryNeverFires) {
  auto& queue = queues_.forDuration(10ms);
  Recorded gone("gone", log_), barrier("barrier", log_);
  queue.arm(gone);
  queue.arm(barrier);  // due after `gone`: once it fired, `gone` would have too
  gone.disarm();
  EXPECT_FALSE(gone.armed());
  ASSERT_TRUE(waitForLog(1));
  EXPECT_EQ(log_, std::vector<std::string>{"barrier"});
}

TEST_F(DeadlineQueueTest, RearmingMovesAnEntryBehindTheOthers) {
  auto& queue = queues_.forDuration(10ms);
  Recorded a("a", log_), b("b", log_);
  queue.arm(a);
  queue.arm(b);
  queue.arm(a);  // a keep-alive connection's next request: its idle deadline starts again
  ASSERT_TRUE(waitForLog(2));
  EXPECT_EQ(log_, (std::vector<std::string>{"b", "a"}));
}

TEST_F(DeadlineQueueTest, ACallbackMayRearmItselfAndDisarmAnother) {
  auto& queue = queues_.forDuration(5ms);
  Recorded a("a", log_), b("b", log_), c("c", log_);
  a.then = [&] {
    b.disarm();
    if (a.fired_at.size() < 3) {
      queue.arm(a);
    }
  };
  queue.arm(a);
  queue.arm(b);
  queue.arm(c);
  ASSERT_TRUE(waitForLog(4));
  EXPECT_EQ(log_, (std::vector<std::string>{"a", "c", "a", "a"}));
  EXPECT_TRUE(b.fired_at.empty());
}

TEST_F(DeadlineQueueTest, QueuesOfDifferentDurationsAreIndependent) {
  Recorded slow("slow", log_), fast("fast", log_);
  queues_.forDuration(200ms).arm(slow);
  queues_.forDuration(5ms).arm(fast);
  EXPECT_EQ(&queues_.forDuration(5ms), &queues_.forDuration(5ms));
  ASSERT_TRUE(waitForLog(1));
  EXPECT_EQ(log_, std::vector<std::string>{"fast"}) << "a later arming in a shorter queue waited";
  ASSERT_TRUE(waitForLog(2));
  EXPECT_EQ(log_, (std::vector<std::string>{"fast", "slow"}));
}

TEST_F(DeadlineQueueTest, EntriesOutliveTheirQueue) {
  Recorded a("a", log_);
  {
    DeadlineQueue queue(dispatcher_, 1h);
    queue.arm(a);
  }
  EXPECT_FALSE(a.armed()) << "an entry still points at a destroyed queue";
}

}  // namespace
}  // namespace bulwark::event
