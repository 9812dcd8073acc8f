#include "proxy/event/dispatcher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "common/assert.h"

namespace bulwark::event {

Dispatcher::Dispatcher() : thread_id_(std::this_thread::get_id()) {
  event_config* config = event_config_new();
  BULWARK_RELEASE_ASSERT(config != nullptr, "event_config_new failed");
  // Every event_add/event_del would otherwise take and release a mutex nobody contends.
  event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(config);
  event_config_free(config);
  BULWARK_RELEASE_ASSERT(base_ != nullptr, "event_base_new failed");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  BULWARK_RELEASE_ASSERT(wake_fd_ >= 0, "eventfd failed");
  // Persistent read on the eventfd also keeps the loop running with no socket registered.
  mailbox_event_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &Dispatcher::onMailbox, this);
  local_event_ = event_new(base_, -1, 0, &Dispatcher::onLocalPosts, this);
  deferred_event_ = event_new(base_, -1, 0, &Dispatcher::onDeferred, this);
  event_add(mailbox_event_, nullptr);
}

Dispatcher::~Dispatcher() {
  clearDeferred();
  event_free(mailbox_event_);
  event_free(local_event_);
  event_free(deferred_event_);
  event_base_free(base_);
  ::close(wake_fd_);
}

void Dispatcher::run() {
  thread_id_ = std::this_thread::get_id();
  loop_thread_ = std::this_thread::get_id();
  event_base_loop(base_, 0);
  drainLocalPosts();
  drainMailbox();
  loop_thread_ = std::thread::id{};
  clearDeferred();
}

void Dispatcher::exit() {
  post([this] { event_base_loopexit(base_, nullptr); });
}

void Dispatcher::post(std::function<void()> fn) {
  if (loop_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    local_posts_.push_back(std::move(fn));
    if (local_posts_.size() == 1) {
      event_active(local_event_, EV_READ, 0);
    }
    return;
  }
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mailbox_mutex_);
    wake = mailbox_.empty();
    mailbox_.push_back(std::move(fn));
  }
  // One wake-up per batch: the loop reads the eventfd before it takes the batch, so a post that
  // finds the mailbox non-empty is sure to be taken by a drain still to come.
  if (wake) {
    const uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(wake_fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }
}

void Dispatcher::onMailbox(evutil_socket_t fd, short, void* arg) {
  uint64_t count = 0;
  while (::read(fd, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
  static_cast<Dispatcher*>(arg)->drainMailbox();
}

void Dispatcher::onLocalPosts(evutil_socket_t, short, void* arg) {
  static_cast<Dispatcher*>(arg)->drainLocalPosts();
}

void Dispatcher::drainLocalPosts() {
  // Swapped with a member rather than a local: both vectors keep their capacity, so a post per
  // request does not allocate the vector again on every loop turn. Posts made by the work land
  // in local_posts_ (the other vector) and run on the next turn.
  running_posts_.swap(local_posts_);
  for (auto& fn : running_posts_) {
    fn();
  }
  running_posts_.clear();
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
  // Destructors may defer more objects; loop until stable. The batch is a member so both
  // vectors keep their capacity (no allocation per loop turn for the first deferred object).
  while (!to_delete_.empty()) {
    deleting_.swap(to_delete_);
    deleting_.clear();
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
