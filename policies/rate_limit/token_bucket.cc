#include "policies/rate_limit/token_bucket.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string_view>

namespace bulwark::policies {
namespace {

// Refill arithmetic is in double; compare with a tolerance so that, e.g., 10 x 100 ms at 10/s
// yields exactly 10 tokens despite binary rounding.
constexpr double kEpsilon = 1e-9;

}  // namespace

TokenBucket::TokenBucket(double rate, uint32_t burst, MonotonicTime now)
    : rate_(rate > 0 ? rate : 1e-9),
      capacity_(burst > 0 ? burst
                          : static_cast<uint32_t>(std::max(1.0, std::ceil(rate_ - kEpsilon)))),
      tokens_(capacity_),
      last_(now) {}

void TokenBucket::refill(MonotonicTime now) {
  if (now <= last_) {
    return;  // time never runs backwards here; equal instants add nothing
  }
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(static_cast<double>(capacity_), tokens_ + elapsed * rate_);
  last_ = now;
}

double TokenBucket::available(MonotonicTime now) const {
  if (now <= last_) {
    return tokens_;
  }
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  return std::min(static_cast<double>(capacity_), tokens_ + elapsed * rate_);
}

Duration TokenBucket::timeFor(double tokens) const {
  if (tokens <= kEpsilon) {
    return Duration::zero();
  }
  const double ns = std::ceil(tokens / rate_ * 1e9 - 1e-3);
  if (ns >= static_cast<double>(kMaxDuration.count())) {
    return kMaxDuration;
  }
  return Duration(static_cast<int64_t>(ns));
}

RateLimitDecision TokenBucket::tryConsume(MonotonicTime now, uint32_t cost) {
  refill(now);
  RateLimitDecision d;
  d.limit = capacity_;
  if (tokens_ + kEpsilon >= static_cast<double>(cost)) {
    tokens_ = std::max(0.0, tokens_ - cost);
    d.allowed = true;
  } else {
    d.allowed = false;
    d.retry_after = timeFor(static_cast<double>(cost) - tokens_);
  }
  d.remaining = static_cast<uint32_t>(std::floor(tokens_ + kEpsilon));
  d.reset_after = timeFor(static_cast<double>(capacity_) - tokens_);
  return d;
}

RateLimiter::RateLimiter(const Options& options) : options_(options) {
  options_.max_keys = std::max<size_t>(1, options_.max_keys);
}

RateLimitDecision RateLimiter::tryAcquire(std::string_view key, MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);  // most recently used to the front
    return it->second->second.tryConsume(now);
  }
  if (lru_.size() >= options_.max_keys) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
    ++evicted_;
  }
  lru_.emplace_front(std::string(key),
                     TokenBucket(options_.requests_per_second, options_.burst, now));
  index_.emplace(lru_.front().first, lru_.begin());
  return lru_.front().second.tryConsume(now);
}

size_t RateLimiter::keyCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

uint64_t RateLimiter::evictedTotal() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evicted_;
}

std::optional<RateLimitHeaderStyle> parseRateLimitHeaderStyle(std::string_view value) {
  if (value == "draft") {
    return RateLimitHeaderStyle::Draft;
  }
  if (value == "legacy") {
    return RateLimitHeaderStyle::Legacy;
  }
  if (value == "off") {
    return RateLimitHeaderStyle::Off;
  }
  return std::nullopt;
}

int64_t ceilSeconds(Duration d, int64_t min_seconds) {
  const int64_t ns = std::max<int64_t>(0, d.count());
  const int64_t s = ns / 1'000'000'000 + (ns % 1'000'000'000 != 0 ? 1 : 0);
  return std::max(s, min_seconds);
}

namespace {

// One allocation for the whole value (numbers that short stay in std::string's inline buffer).
std::string concat(std::initializer_list<std::string_view> parts) {
  size_t size = 0;
  for (const auto part : parts) {
    size += part.size();
  }
  std::string out;
  out.reserve(size);
  for (const auto part : parts) {
    out.append(part);
  }
  return out;
}

/** Decimal digits of a number, without an allocation. Thread: value type. */
class Digits {
public:
  explicit Digits(int64_t value)
      : size_(static_cast<size_t>(std::to_chars(buf_, buf_ + sizeof(buf_), value).ptr - buf_)) {}
  std::string_view view() const { return {buf_, size_}; }

private:
  char buf_[20];
  size_t size_;
};

// RFC 8941 sf-string: printable ASCII with `"` and `\` escaped; anything else is dropped.
std::string sfString(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c >= 0x20 && c <= 0x7e) {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

RateLimitHeaders::RateLimitHeaders(RateLimitHeaderStyle style, std::string_view policy_name,
                                   double rate, uint32_t capacity)
    : style_(style),
      quoted_name_(style == RateLimitHeaderStyle::Draft
                       ? sfString(policy_name.empty() ? "default" : policy_name)
                       : std::string()),
      rate_(rate > 0 ? rate : 1e-9),
      capacity_(capacity),
      capacity_value_(capacityValue(capacity)) {}

std::string RateLimitHeaders::capacityValue(uint32_t capacity) const {
  const int64_t window = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(static_cast<double>(capacity) / rate_ - 1e-9)));
  const Digits q(capacity);
  const Digits w(window);
  switch (style_) {
    case RateLimitHeaderStyle::Off: break;
    case RateLimitHeaderStyle::Draft:
      return concat({quoted_name_, ";q=", q.view(), ";w=", w.view()});
    case RateLimitHeaderStyle::Legacy: return concat({q.view(), ", ", q.view(), ";w=", w.view()});
  }
  return {};
}

RateLimitHeaders::Rendered RateLimitHeaders::render(const RateLimitDecision& decision) const {
  Rendered out;
  const auto capacity = [&] {
    return decision.limit == capacity_ ? capacity_value_ : capacityValue(decision.limit);
  };
  const Digits reset(ceilSeconds(decision.reset_after));
  const Digits remaining(decision.remaining);
  switch (style_) {
    case RateLimitHeaderStyle::Off: break;
    case RateLimitHeaderStyle::Draft:
      out.headers[0] = {"ratelimit-policy", capacity()};
      out.headers[1] = {"ratelimit",
                        concat({quoted_name_, ";r=", remaining.view(), ";t=", reset.view()})};
      out.size = 2;
      break;
    case RateLimitHeaderStyle::Legacy:
      out.headers[0] = {"x-ratelimit-limit", capacity()};
      out.headers[1] = {"x-ratelimit-remaining", std::string(remaining.view())};
      out.headers[2] = {"x-ratelimit-reset", std::string(reset.view())};
      out.size = 3;
      break;
  }
  return out;
}

}  // namespace bulwark::policies
