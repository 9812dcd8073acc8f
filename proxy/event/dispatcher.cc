#include "proxy/event/dispatcher.h"

#include <event2/thread.h>

#include "common/assert.h"

namespace bulwark::event {

Dispatcher::Dispatcher() : thread_id_(std::this_thread::get_id()) {
  base_ = event_base_new();
  BULWARK_RELEASE_ASSERT(base_ != nullptr, "event_base_new failed");
  mailbox_event_ = event_new(base_, -1, EV_PERSIST, &Dispatcher::onMailbox, this);
  deferred_event_ = event_new(base_, -1, 0, &Dispatcher::onDeferred, this);
  // The mailbox event is persistent and only ever activated by post(); add it so the loop
  // keeps running even with no sockets registered.
  event_add(mailbox_event_, nullptr);
}

Dispatcher::~Dispatcher() {
  clearDeferred();
  event_free(mailbox_event_);
  event_free(deferred_event_);
  event_base_free(base_);
}

void Dispatcher::run() {
  thread_id_ = std::this_thread::get_id();
  event_base_loop(base_, 0);
  drainMailbox();
  clearDeferred();
}

void Dispatcher::exit() {
  post([this] { event_base_loopexit(base_, nullptr); });
}

void Dispatcher::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    mailbox_.push_back(std::move(fn));
  }
  // Needs evthread_use_pthreads() before the base was created (done in main and tests).
  event_active(mailbox_event_, EV_READ, 0);
}

void Dispatcher::onMailbox(evutil_socket_t, short, void* arg) {
  static_cast<Dispatcher*>(arg)->drainMailbox();
}

void Dispatcher::drainMailbox() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    work.swap(mailbox_);
  }
  for (auto& fn : work) {
    fn();
  }
}

void Dispatcher::deferredDelete(DeferredDeletablePtr&& obj) {
  if (!obj) {
    return;
  }
  to_delete_.push_back(std::move(obj));
  if (to_delete_.size() == 1) {
    event_active(deferred_event_, EV_TIMEOUT, 0);
  }
}

void Dispatcher::onDeferred(evutil_socket_t, short, void* arg) {
  static_cast<Dispatcher*>(arg)->clearDeferred();
}

void Dispatcher::clearDeferred() {
  // Destructors may defer more objects; loop until stable.
  while (!to_delete_.empty()) {
    std::vector<DeferredDeletablePtr> batch;
    batch.swap(to_delete_);
    batch.clear();
  }
}

TimerPtr Dispatcher::createTimer(std::function<void()> cb) {
  return std::make_unique<Timer>(*this, std::move(cb));
}

std::chrono::steady_clock::time_point Dispatcher::now() const {
  return std::chrono::steady_clock::now();
}

Timer::Timer(Dispatcher& dispatcher, std::function<void()> cb) : cb_(std::move(cb)) {
  ev_ = evtimer_new(dispatcher.base(), &Timer::onFire, this);
}

Timer::~Timer() { event_free(ev_); }

void Timer::enableTimer(std::chrono::microseconds delay) {
  if (delay.count() < 0) {
    delay = std::chrono::microseconds(0);
  }
  due_ = std::chrono::steady_clock::now() + delay;
  arm(delay);
}

void Timer::arm(std::chrono::microseconds delay) {
  timeval tv;
  tv.tv_sec = static_cast<long>(delay.count() / 1000000);
  tv.tv_usec = static_cast<long>(delay.count() % 1000000);
  evtimer_add(ev_, &tv);
}

void Timer::disableTimer() { evtimer_del(ev_); }

bool Timer::enabled() const { return evtimer_pending(ev_, nullptr) != 0; }

void Timer::onFire(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Timer*>(arg);
  const auto now = std::chrono::steady_clock::now();
  if (now < self->due_) {
    self->arm(std::chrono::ceil<std::chrono::microseconds>(self->due_ - now));
    return;
  }
  self->cb_();
}

}  // namespace bulwark::event
