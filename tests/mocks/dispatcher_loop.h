#pragma once

// Driving a real event::Dispatcher from a test thread: run what is ready now, or run until a
// condition holds (bounded by a deadline, never a sleep). Thread: the dispatcher's (the test's).

#include <chrono>
#include <functional>

#include "proxy/event/dispatcher.h"

namespace bulwark::mocks {

/** Runs the events that are ready now (posts, expired timers, deferred deletes); never blocks. */
void runReady(event::Dispatcher& dispatcher);

/**
 * Runs the loop until `done` holds or `timeout` passed, whichever comes first, blocking in the
 * loop (not sleeping) between events.
 * @return the last value of `done`, so ASSERT_TRUE(runUntil(...)) fails when it never held.
 */
bool runUntil(event::Dispatcher& dispatcher, const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::seconds(3));

}  // namespace bulwark::mocks
