#pragma once

#include <chrono>
#include <map>
#include <memory>

#include "proxy/event/dispatcher.h"

namespace bulwark::event {

class DeadlineQueue;

/**
 * What an object embeds to wait in a DeadlineQueue: two list links, the queue and the due time,
 * in place of a Timer and its libevent event of its own (a connection idling between requests
 * holds no event for its idle deadline). Disarmed on destruction.
 * Thread: the queue's dispatcher.
 */
class DeadlineEntry {
public:
  DeadlineEntry() = default;
  virtual ~DeadlineEntry() { disarm(); }
  DeadlineEntry(const DeadlineEntry&) = delete;
  DeadlineEntry& operator=(const DeadlineEntry&) = delete;

  /** The deadline passed. The entry is already out of its queue; it may arm itself again. */
  virtual void onDeadline() = 0;
  bool armed() const { return queue_ != nullptr; }
  void disarm();

private:
  friend class DeadlineQueue;
  DeadlineQueue* queue_ = nullptr;
  DeadlineEntry* prev_ = nullptr;
  DeadlineEntry* next_ = nullptr;
  std::chrono::steady_clock::time_point due_{};
};

/**
 * Deadlines that all lie the same duration after their arming, kept in arming order: the
 * clock only moves forward, so the list is sorted by due time without a heap, arming and
 * disarming are O(1), and one timer armed for the head serves every entry. This is what
 * libevent's common timeouts do, without an event per waiting object.
 * Thread: the dispatcher's.
 */
class DeadlineQueue {
public:
  DeadlineQueue(Dispatcher& dispatcher, std::chrono::microseconds duration);
  ~DeadlineQueue();
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  /** (Re)arms `entry` to fire one duration from now, taking it out of any queue it was in. */
  void arm(DeadlineEntry& entry);
  bool empty() const { return head_ == nullptr; }

private:
  friend class DeadlineEntry;
  void unlink(DeadlineEntry& entry);
  void onTimer();
  void armTimerForHead(std::chrono::steady_clock::time_point now);

  std::chrono::microseconds duration_;
  DeadlineEntry* head_ = nullptr;
  DeadlineEntry* tail_ = nullptr;
  TimerPtr timer_;
  // Armed for the head of its arming; a later head needs no re-arming until it fires.
  bool timer_armed_ = false;
};

/**
 * A dispatcher's deadline queues, one per duration, made on first use and kept for the
 * dispatcher's life (a process uses a handful: each listener's idle and header-read timeouts).
 * Thread: the dispatcher's.
 */
class DeadlineQueues {
public:
  explicit DeadlineQueues(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  DeadlineQueue& forDuration(std::chrono::microseconds duration);

private:
  Dispatcher& dispatcher_;
  std::map<std::chrono::microseconds, std::unique_ptr<DeadlineQueue>> queues_;
};

}  // namespace bulwark::event
