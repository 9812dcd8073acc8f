#include "proxy/event/deadline_queue.h"

#include "common/assert.h"

namespace bulwark::event {

void DeadlineEntry::disarm() {
  if (queue_ != nullptr) {
    queue_->unlink(*this);
  }
}

DeadlineQueue::DeadlineQueue(Dispatcher& dispatcher, std::chrono::microseconds duration)
    : duration_(duration), timer_(dispatcher.createTimer([this] { onTimer(); })) {}

DeadlineQueue::~DeadlineQueue() {
  while (head_ != nullptr) {
    unlink(*head_);
  }
}

void DeadlineQueue::arm(DeadlineEntry& entry) {
  entry.disarm();
  const auto now = std::chrono::steady_clock::now();
  entry.due_ = now + duration_;
  entry.queue_ = this;
  entry.prev_ = tail_;
  entry.next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = &entry;
  } else {
    head_ = &entry;
  }
  tail_ = &entry;
  if (!timer_armed_) {
    armTimerForHead(now);
  }
}

void DeadlineQueue::unlink(DeadlineEntry& entry) {
  BULWARK_ASSERT(entry.queue_ == this);
  if (entry.prev_ != nullptr) {
    entry.prev_->next_ = entry.next_;
  } else {
    head_ = entry.next_;
  }
  if (entry.next_ != nullptr) {
    entry.next_->prev_ = entry.prev_;
  } else {
    tail_ = entry.prev_;
  }
  entry.queue_ = nullptr;
  entry.prev_ = entry.next_ = nullptr;
  // The timer stays armed for a head that left: when it fires it finds nothing due and re-arms
  // for the new head, which saves an event_del/event_add per keep-alive request.
}

void DeadlineQueue::armTimerForHead(std::chrono::steady_clock::time_point now) {
  if (head_ == nullptr) {
    timer_armed_ = false;
    return;
  }
  timer_armed_ = true;
  timer_->enableTimer(std::chrono::ceil<std::chrono::microseconds>(head_->due_ - now));
}

void DeadlineQueue::onTimer() {
  timer_armed_ = false;
  const auto now = std::chrono::steady_clock::now();
  // Entries are taken out before their callback runs; a callback may disarm, re-arm or destroy
  // any entry, so the head is read again each time.
  while (head_ != nullptr && head_->due_ <= now) {
    DeadlineEntry& due = *head_;
    unlink(due);
    due.onDeadline();
  }
  if (!timer_armed_) {
    armTimerForHead(now);
  }
}

DeadlineQueue& DeadlineQueues::forDuration(std::chrono::microseconds duration) {
  auto& queue = queues_[duration];
  if (!queue) {
    queue = std::make_unique<DeadlineQueue>(dispatcher_, duration);
  }
  return *queue;
}

}  // namespace bulwark::event
