#include "tests/mocks/dispatcher_loop.h"

#include <algorithm>

#include <event2/event.h>

namespace bulwark::mocks {

void runReady(event::Dispatcher& dispatcher) {
  event_base_loop(dispatcher.base(), EVLOOP_NONBLOCK);
}

bool runUntil(event::Dispatcher& dispatcher, const std::function<bool()>& done,
              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // The wake-up timer bounds each blocking turn, so the deadline is checked even when no event
  // of the code under test is pending.
  auto wake = dispatcher.createTimer([] {});
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return done();
    }
    wake->enableTimer(std::min<std::chrono::microseconds>(
        std::chrono::milliseconds(5),
        std::chrono::ceil<std::chrono::microseconds>(deadline - now)));
    event_base_loop(dispatcher.base(), EVLOOP_ONCE);
  }
  return true;
}

}  // namespace bulwark::mocks
