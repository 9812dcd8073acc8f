#include "tests/support/wait.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace bulwark::testing {

namespace {

// Upper bound on one blind wait: state owned by code that does not call notifyWaiters() (the
// proxy under test, a child process's /proc entry) is still noticed within this delay.
constexpr std::chrono::milliseconds kMaxPollInterval{5};

struct WaitSignal {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t generation = 0;
};

WaitSignal& signal() {
  static WaitSignal s;
  return s;
}

}  // namespace

bool waitFor(const std::function<bool()>& predicate, Deadline deadline) {
  auto& s = signal();
  while (true) {
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      seen = s.generation;
    }
    if (predicate()) {
      return true;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      return predicate();
    }
    std::unique_lock<std::mutex> lock(s.mu);
    s.cv.wait_until(lock, std::min(deadline, now + kMaxPollInterval),
                    [&] { return s.generation != seen; });
  }
}

bool waitFor(const std::function<bool()>& predicate, Clock::duration timeout) {
  return waitFor(predicate, deadlineIn(timeout));
}

void notifyWaiters() {
  auto& s = signal();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    ++s.generation;
  }
  s.cv.notify_all();
}

}  // namespace bulwark::testing
