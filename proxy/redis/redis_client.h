#pragma once

// The shared-state connection: one Redis connection per worker (hiredis' async API on the
// worker's libevent loop), used by the blocks that share state across bulwark instances
// (global rate limits, the Redis idempotency store). Every operation has a deadline
// (redis.timeout); a breaker stops paying that deadline on every request while Redis is down.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "proxy/config/spec.h"
#include "proxy/event/dispatcher.h"

struct redisAsyncContext;
struct redisReply;

namespace bulwark::upstream {
class DnsResolver;
}

namespace bulwark::redis {

/** How one operation ended. */
enum class OpResult : uint8_t {
  Ok,              // Redis answered (the reply may still be a Redis error: see Reply::isError)
  Timeout,         // no answer within redis.timeout
  Unavailable,     // not sent: not connected, or the breaker is open
  ConnectionLost,  // the connection closed or was dropped while the operation waited
};

/** @return the `result` label of bulwark_redis_operations_total. */
std::string_view opResultLabel(OpResult result);

/** A Lua script by body and SHA-1: sent with EVALSHA, with EVAL when Redis lacks it. */
class Script {
public:
  explicit Script(std::string body);
  const std::string& body() const { return body_; }
  const std::string& sha1() const { return sha1_; }

private:
  std::string body_;
  std::string sha1_;  // lower-case hex
};

/**
 * Process-wide Redis metrics and the counts /ready reports. Thread: any (prometheus handles and
 * atomics).
 */
class RedisMetrics {
public:
  explicit RedisMetrics(prometheus::Registry& registry);

  /** bulwark_redis_operations_total{op, result}; result: an opResultLabel() or "error". */
  prometheus::Counter& operation(std::string_view op, std::string_view result);

  /** Worker connections that answered their last probe or command (bulwark_redis_connected). */
  void connectedDelta(int delta);
  int connected() const { return connected_.load(); }
  /** Workers holding a client for the current config. */
  void clientsDelta(int delta) { clients_.fetch_add(delta); }
  int clients() const { return clients_.load(); }

private:
  prometheus::Family<prometheus::Counter>& operations_;
  prometheus::Gauge& connected_gauge_;
  std::atomic<int> connected_{0};
  std::atomic<int> clients_{0};
};

/**
 * One worker's connection to Redis.
 *
 * Operations: command() sends an argv command, evalScript() a script; the callback runs later on
 * this worker (never inline), exactly once, unless the caller cancels its handle first. When
 * the client cannot send (not connected, breaker open) they return nullptr and the caller
 * applies its failure mode at once: nothing waits for a Redis known to be down.
 *
 * Breaker: after kFailuresToOpen consecutive timeouts or connection failures the connection is
 * dropped and operations fail fast; a reconnect followed by a PING probe, backed off from
 * kMinRetryInterval to kMaxRetryInterval, closes it again. A dropped connection also opens it.
 *
 * Names are resolved with c-ares on this worker's loop; IP literals are used as they are.
 * Thread: owning worker (its dispatcher's thread), created and destroyed there.
 */
class RedisClient {
public:
  /** What a callback sees: `reply` is valid during the callback only (null unless Ok). */
  struct Reply {
    OpResult result = OpResult::Unavailable;
    const redisReply* reply = nullptr;
    /** True when Redis answered with an error reply (e.g. a script error). */
    bool isError() const;
  };
  using Callback = std::function<void(const Reply&)>;

  /** Cancels an operation's callback when destroyed (the operation itself may still run). */
  class Handle {
  public:
    explicit Handle(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    ~Handle() {
      if (cancel_) {
        cancel_();
      }
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

  private:
    std::function<void()> cancel_;
  };
  using HandlePtr = std::unique_ptr<Handle>;

  static constexpr int kFailuresToOpen = 3;
  static constexpr std::chrono::milliseconds kMinRetryInterval{100};
  static constexpr std::chrono::milliseconds kMaxRetryInterval{1000};

  RedisClient(event::Dispatcher& dispatcher, config::RedisSpec spec,
              std::shared_ptr<RedisMetrics> metrics);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /**
   * Sends `args` (binary-safe) as one command. `op` labels the metrics and must be a string
   * that outlives the operation (the callers pass literals). A null callback sends
   * the command without waiting for its answer (counted all the same).
   * @return a handle whose destruction cancels the callback; nullptr when not sent (Unavailable
   *         is counted, the callback never runs).
   */
  HandlePtr command(std::string_view op, const std::vector<std::string>& args, Callback callback);

  /** EVALSHA `script` with `keys` and `args` (EVAL when Redis answers NOSCRIPT). */
  HandlePtr evalScript(std::string_view op, const Script& script,
                       const std::vector<std::string>& keys, const std::vector<std::string>& args,
                       Callback callback);

  const config::RedisSpec& spec() const { return spec_; }
  /** Connected and the breaker closed: operations are sent. */
  bool available() const { return state_ == State::Ready; }

private:
  enum class State : uint8_t { Idle, Resolving, Probing, Ready, Backoff };
  struct Operation;

  static void onConnected(const redisAsyncContext* ac, int status);
  static void onDisconnected(const redisAsyncContext* ac, int status);
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);

  void connect();
  void connectTo(const std::string& ip);
  /** Drops the connection (what waits on it ends ConnectionLost) and backs off. */
  void fail(std::string_view why);
  /** The connection is gone (or never came): back off, then connect again. Idempotent. */
  void lost(std::string_view why);
  void setReady(bool ready);
  /** @return the operation's id, 0 when not sent. */
  uint64_t send(std::string_view op, const std::vector<std::string>& args, Callback callback,
                bool internal);
  void complete(uint64_t id, OpResult result, const redisReply* reply);
  void onTimeouts();
  prometheus::Counter& counter(std::string_view op, std::string_view result);

  event::Dispatcher& dispatcher_;
  const config::RedisSpec spec_;
  std::shared_ptr<RedisMetrics> metrics_;
  std::string host_;
  int port_ = 0;
  bool host_is_literal_ = false;
  std::unique_ptr<upstream::DnsResolver> resolver_;
  redisAsyncContext* context_ = nullptr;
  State state_ = State::Idle;
  bool counted_connected_ = false;
  int consecutive_failures_ = 0;
  std::chrono::milliseconds retry_interval_ = kMinRetryInterval;
  event::TimerPtr retry_timer_;
  event::TimerPtr timeout_timer_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Operation>> operations_;
  // op -> result -> counter; transparent lookups, so counting allocates nothing.
  std::map<std::string, std::map<std::string, prometheus::Counter*, std::less<>>, std::less<>>
      counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};
using RedisClientSharedPtr = std::shared_ptr<RedisClient>;

/** @return the string of a reply element (status, string or error), empty otherwise. */
std::string_view replyString(const redisReply* reply);
/** @return the integer of a reply element (0 unless an integer). */
long long replyInteger(const redisReply* reply);
/** @return element `i` of an array reply, nullptr when absent. */
const redisReply* replyElement(const redisReply* reply, size_t i);

}  // namespace bulwark::redis
