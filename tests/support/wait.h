#pragma once

#include <chrono>
#include <functional>

namespace bulwark::testing {

/** Monotonic deadlines everywhere: wall-clock jumps must not make tests flaky. */
using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

/** Default budget for one blocking test-support call when the caller gives no deadline. */
inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};

/** Deadline `d` from now. */
inline Deadline deadlineIn(Clock::duration d) { return Clock::now() + d; }

/** The deadline used by default arguments: now + kDefaultTimeout. */
inline Deadline defaultDeadline() { return deadlineIn(kDefaultTimeout); }

/**
 * Waits until `predicate` returns true or `deadline` passes, whichever is first. Returns the
 * last value of the predicate (evaluated once more at the deadline), so
 * `ASSERT_TRUE(waitFor(...))` fails exactly when the condition never held.
 *
 * Between evaluations it blocks on a process-wide condition variable for at most a few
 * milliseconds; every support class calls notifyWaiters() when its observable state changes
 * (a request logged, a connection closed, a child printed a line), so most waits wake at once
 * rather than at the next poll. It never sleeps past the deadline.
 * Thread: any. The predicate runs on the calling thread and must be thread-safe with respect to
 * whatever it reads.
 */
bool waitFor(const std::function<bool()>& predicate, Deadline deadline = defaultDeadline());

/** Same, with a relative timeout. */
bool waitFor(const std::function<bool()>& predicate, Clock::duration timeout);

/**
 * Wakes every waitFor() so it re-evaluates its predicate now. Cheap; call it after any state
 * change a test might be waiting for.
 * Thread: any.
 */
void notifyWaiters();

}  // namespace bulwark::testing
