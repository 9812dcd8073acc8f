// event::Dispatcher's mailbox: posts from other threads wake a loop that has nothing else to do
// (the base has no libevent locks; an eventfd carries the wake-up), every post runs once and in
// the order each thread made them, and a post made on the loop thread runs after the callback
// that made it returns.

#include "proxy/event/dispatcher.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::event {
namespace {

using namespace std::chrono_literals;

/** Runs a dispatcher's loop on its own thread for the test's lifetime. Thread: test. */
class LoopThread {
public:
  LoopThread() {
    std::promise<void> running;
    auto started = running.get_future();
    thread_ = std::thread([this, &running] {
      dispatcher_.post([&running] { running.set_value(); });
      dispatcher_.run();
    });
    started.wait();
  }
  ~LoopThread() {
    dispatcher_.exit();
    thread_.join();
  }
  Dispatcher& dispatcher() { return dispatcher_; }

private:
  Dispatcher dispatcher_;
  std::thread thread_;
};

TEST(DispatcherTest, PostFromAnotherThreadWakesAnIdleLoop) {
  LoopThread loop;
  for (int round = 0; round < 50; ++round) {
    std::promise<std::thread::id> ran;
    auto ran_on = ran.get_future();
    loop.dispatcher().post([&ran] { ran.set_value(std::this_thread::get_id()); });
    ASSERT_EQ(ran_on.wait_for(5s), std::future_status::ready) << "round " << round;
    EXPECT_NE(ran_on.get(), std::this_thread::get_id());
  }
}

TEST(DispatcherTest, PostsFromManyThreadsRunOnceInEachThreadsOrder) {
  LoopThread loop;
  constexpr int kThreads = 4;
  constexpr int kPosts = 2000;
  std::vector<int> last_seen(kThreads, -1);  // touched on the loop thread only
  std::atomic<int> out_of_order{0};
  std::atomic<int> ran{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        loop.dispatcher().post([&, t, i] {
          if (last_seen[t] != i - 1) {
            out_of_order.fetch_add(1);
          }
          last_seen[t] = i;
          ran.fetch_add(1);
        });
      }
    });
  }
  for (auto& p : posters) {
    p.join();
  }
  std::promise<void> drained;
  auto done = drained.get_future();
  loop.dispatcher().post([&drained] { drained.set_value(); });
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(ran.load(), kThreads * kPosts);
  EXPECT_EQ(out_of_order.load(), 0);
}

TEST(DispatcherTest, PostOnTheLoopThreadRunsAfterTheCallbackThatMadeIt) {
  LoopThread loop;
  std::vector<int> order;
  std::promise<void> finished;
  auto done = finished.get_future();
  loop.dispatcher().post([&] {
    loop.dispatcher().post([&] {
      order.push_back(3);
      loop.dispatcher().post([&] {
        order.push_back(4);
        finished.set_value();
      });
    });
    order.push_back(1);
    order.push_back(2);
  });
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

TEST(DispatcherTest, PostsMadeBeforeTheLoopRunsAreRunByIt) {
  Dispatcher dispatcher;
  int ran = 0;
  dispatcher.post([&ran] { ++ran; });
  dispatcher.post([&dispatcher, &ran] {
    ++ran;
    dispatcher.exit();
  });
  std::thread runner([&dispatcher] { dispatcher.run(); });
  runner.join();
  EXPECT_EQ(ran, 2);
}

/** Logs its destruction; may defer a child from its destructor, as a stream's owner does. */
class Tracked : public DeferredDeletable {
public:
  Tracked(std::vector<std::string>& log, std::string name, Dispatcher* defer_child_on,
          std::promise<void>* last)
      : log_(log), name_(std::move(name)), defer_child_on_(defer_child_on), last_(last) {}
  ~Tracked() override {
    log_.push_back("~" + name_);
    if (defer_child_on_ != nullptr) {
      defer_child_on_->deferredDelete(
          std::make_unique<Tracked>(log_, name_ + "-child", nullptr, last_));
    } else if (last_ != nullptr) {
      last_->set_value();
    }
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;

private:
  std::vector<std::string>& log_;
  std::string name_;
  Dispatcher* defer_child_on_;
  std::promise<void>* last_;
};

TEST(DispatcherTest, DeferredObjectsDieAfterTheirCallbackAndMayDeferMore) {
  LoopThread loop;
  Dispatcher& dispatcher = loop.dispatcher();
  std::vector<std::string> log;
  // Twice: the second round runs on the vectors the first one left behind.
  for (const std::string round : {"a", "b"}) {
    std::promise<void> finished;
    auto done = finished.get_future();
    dispatcher.post([&, round] {
      dispatcher.deferredDelete(std::make_unique<Tracked>(log, round, &dispatcher, &finished));
      log.push_back(round + " callback done");
    });
    ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"a callback done", "~a", "~a-child", "b callback done",
                                           "~b", "~b-child"}));
}

}  // namespace
}  // namespace bulwark::event
