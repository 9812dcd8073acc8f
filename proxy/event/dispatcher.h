#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <event2/event.h>

namespace bulwark::event {

/** Anything whose destruction must wait until the current callback stack unwinds. */
class DeferredDeletable {
public:
  virtual ~DeferredDeletable() = default;
};
using DeferredDeletablePtr = std::unique_ptr<DeferredDeletable>;

class Timer;
using TimerPtr = std::unique_ptr<Timer>;

/**
 * One libevent event_base plus a cross-thread mailbox and deferred deletion.
 * The base is made without libevent's locks (one thread drives it); other threads reach it only
 * through post(), which queues under a mutex and wakes the loop through an eventfd. A post from
 * the loop's own thread takes neither the mutex nor a syscall.
 * Thread: owning thread for everything except post(), which any thread may call.
 */
class Dispatcher {
public:
  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  event_base* base() const { return base_; }

  /** Runs the loop until exit() is called. Binds the dispatcher to the calling thread. */
  void run();
  /** Thread: any. Makes run() return after the current iteration. */
  void exit();

  /** Thread: any. Runs fn on the loop thread after the current callback returns. */
  void post(std::function<void()> fn);

  /** Destroys obj at the end of this loop iteration, so callbacks on the stack stay valid. */
  void deferredDelete(DeferredDeletablePtr&& obj);

  /** Creates a one-shot/re-armable timer that calls cb on this loop. */
  TimerPtr createTimer(std::function<void()> cb);

  bool isThisThread() const { return thread_id_.load() == std::this_thread::get_id(); }

  /** The monotonic clock, behind one seam so time can be faked later. */
  std::chrono::steady_clock::time_point now() const;

private:
  static void onMailbox(evutil_socket_t, short, void* arg);
  static void onLocalPosts(evutil_socket_t, short, void* arg);
  static void onDeferred(evutil_socket_t, short, void* arg);
  void drainMailbox();
  void drainLocalPosts();
  void clearDeferred();

  event_base* base_;
  int wake_fd_;             // eventfd: readable while other threads' posts wait in mailbox_
  ::event* mailbox_event_;  // read event on wake_fd_
  ::event* local_event_;    // activated by hand for posts made on the loop thread
  ::event* deferred_event_;
  std::mutex mailbox_mutex_;
  std::vector<std::function<void()>> mailbox_;        // guarded by mailbox_mutex_
  std::vector<std::function<void()>> local_posts_;    // loop thread only
  std::vector<std::function<void()>> running_posts_;  // the batch drainLocalPosts runs
  std::vector<DeferredDeletablePtr> to_delete_;
  std::vector<DeferredDeletablePtr> deleting_;  // the batch clearDeferred destroys
  std::atomic<std::thread::id> thread_id_;
  std::atomic<std::thread::id> loop_thread_{};  // the thread inside run(), or none
};

/** A timer on one dispatcher. Thread: the dispatcher's. Disarmed on destruction. */
class Timer {
public:
  Timer(Dispatcher& dispatcher, std::function<void()> cb);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void enableTimer(std::chrono::microseconds delay);
  void disableTimer();
  bool enabled() const;

private:
  static void onFire(evutil_socket_t, short, void* arg);
  void arm(std::chrono::microseconds delay);
  std::function<void()> cb_;
  ::event* ev_;
  // libevent reads CLOCK_MONOTONIC_COARSE (ticks of ~4 ms), so a timer may fire up to a tick
  // before steady_clock says it is due; onFire re-arms for the rest instead of running early.
  // (EVENT_BASE_FLAG_PRECISE_TIMER would cost a timerfd_settime per loop turn on epoll.)
  std::chrono::steady_clock::time_point due_{};
};

}  // namespace bulwark::event
