#pragma once

// Token-bucket rate limiting (route `rateLimit`: requestsPerSecond, burst), per route or per key,
// with what a 429 and the RateLimit headers need: remaining tokens, retry-after, reset time.

#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policies/time.h"

namespace bulwark::policies {

/** The answer for one request. Thread: value type. */
struct RateLimitDecision {
  bool allowed = false;
  uint32_t limit = 0;       // bucket capacity (the quota)
  uint32_t remaining = 0;   // whole tokens left after this decision
  Duration retry_after{0};  // denied: until enough tokens exist; allowed: 0
  Duration reset_after{0};  // until the bucket is full again
};

/**
 * Classic token bucket: capacity `burst`, refilled continuously at `rate` tokens per second,
 * starting full. Refill is computed from the elapsed time at each call (no timer).
 * Thread: not synchronised (RateLimiter locks around it).
 */
class TokenBucket {
public:
  /**
   * @param rate tokens per second; must be > 0.
   * @param burst capacity; 0 means max(1, ceil(rate)) (one second's worth).
   * @param now creation time; the bucket starts full.
   */
  TokenBucket(double rate, uint32_t burst, MonotonicTime now);

  /** Takes `cost` tokens if available at `now`; otherwise takes nothing. */
  RateLimitDecision tryConsume(MonotonicTime now, uint32_t cost = 1);

  /** @return tokens available at `now` (fractional). */
  double available(MonotonicTime now) const;

  uint32_t capacity() const { return capacity_; }
  double rate() const { return rate_; }

private:
  void refill(MonotonicTime now);
  Duration timeFor(double tokens) const;  // time to accumulate `tokens`, rounded up

  double rate_;
  uint32_t capacity_;
  double tokens_;
  MonotonicTime last_;
};

/**
 * Token buckets per key (header value, tenant, client IP; "" for a route-wide bucket) with
 * bounded memory: at most max_keys buckets, least recently used evicted first. An evicted key
 * starts again with a full bucket; that only matters for a key idle while max_keys other keys
 * were seen, and a bucket idle for burst / rate seconds is full anyway. An attacker rotating
 * keys gets each new key's burst, which a per-client-IP or route-wide limit in front bounds.
 * Thread: any. One mutex guards the map and the LRU list (a lookup and a few arithmetic ops).
 */
class RateLimiter {
public:
  struct Options {
    double requests_per_second = 1;
    uint32_t burst = 0;       // 0 = max(1, ceil(requests_per_second))
    size_t max_keys = 10000;  // >= 1
  };

  explicit RateLimiter(const Options& options);

  /** Takes one token from `key`'s bucket (creating it full if new). */
  RateLimitDecision tryAcquire(std::string_view key, MonotonicTime now);

  size_t keyCount() const;
  uint64_t evictedTotal() const;
  const Options& options() const { return options_; }

private:
  using Lru = std::list<std::pair<std::string, TokenBucket>>;

  Options options_;
  mutable std::mutex mu_;
  Lru lru_;  // guarded by mu_; front = most recently used
  std::unordered_map<std::string_view, Lru::iterator> index_;  // guarded by mu_; keys view lru_
  uint64_t evicted_ = 0;                                       // guarded by mu_
};

enum class RateLimitHeaderStyle : uint8_t { Off, Draft, Legacy };

/** Parses RateLimitSpec.headers: "draft" | "legacy" | "off". */
std::optional<RateLimitHeaderStyle> parseRateLimitHeaderStyle(std::string_view value);

/** @return whole seconds for a Retry-After / reset field: ceil(d), at least `min_seconds`. */
int64_t ceilSeconds(Duration d, int64_t min_seconds = 0);

/**
 * Response headers describing one limit (lower-case names):
 *  - Draft (draft-ietf-httpapi-ratelimit-headers-11, Structured Fields):
 *      ratelimit-policy: "<name>";q=<capacity>;w=<seconds to refill fully>
 *      ratelimit: "<name>";r=<remaining>;t=<seconds until full>
 *  - Legacy (draft-03 `X-RateLimit-*`, what Envoy emits):
 *      x-ratelimit-limit: <capacity>, <capacity>;w=<window>
 *      x-ratelimit-remaining: <remaining>
 *      x-ratelimit-reset: <seconds until full>
 *  - Off: none.
 * Retry-After is not included; on a 429 add `retry-after: ceilSeconds(retry_after, 1)`.
 * They go on every allowed response, so what does not change between responses (the quoted
 * name, the capacity's value) is formatted once, here.
 * Thread: any (immutable).
 */
class RateLimitHeaders {
public:
  /**
   * @param policy_name identifier (e.g. the route name); quoted and escaped as an sf-string.
   * @param rate tokens per second of the bucket, to derive the window.
   * @param capacity the bucket's usual capacity, whose value is kept formatted.
   */
  RateLimitHeaders(RateLimitHeaderStyle style, std::string_view policy_name, double rate,
                   uint32_t capacity);

  struct Header {
    std::string_view name;
    std::string value;
  };
  /** Up to three headers, in the order listed above. */
  struct Rendered {
    std::array<Header, 3> headers;
    size_t size = 0;
    Header* begin() { return headers.data(); }
    Header* end() { return headers.data() + size; }
  };

  Rendered render(const RateLimitDecision& decision) const;
  RateLimitHeaderStyle style() const { return style_; }

private:
  /** ratelimit-policy (Draft) or x-ratelimit-limit (Legacy) for a bucket of `capacity`. */
  std::string capacityValue(uint32_t capacity) const;

  RateLimitHeaderStyle style_;
  std::string quoted_name_;  // Draft: the sf-string
  double rate_;
  uint32_t capacity_;
  std::string capacity_value_;  // capacityValue(capacity_)
};

}  // namespace bulwark::policies
