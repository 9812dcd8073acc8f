#pragma once

// The decision record of one request: the route it matched, each attempt (host, outcome,
// duration, why it started), why retrying stopped, the deadlines, and every policy that acted
// on it. Written as `decisions` in the JSON access log and, for an allowed client that asks
// with `x-bulwark-explain: 1`, compactly in the `x-bulwark-explain` response header.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/http/log_entry.h"

namespace bulwark::http {

/** Thread: the stream's worker. */
class DecisionRecord final : public JsonWritable {
public:
  /** Named numbers of one decision, e.g. {"key", "acme"}; values are kept as text. */
  using Fields = std::vector<std::pair<std::string, std::string>>;

  struct Attempt {
    uint32_t number = 0;
    std::string kind;    // initial | retry | hedge
    std::string reason;  // retry: the outcome that caused it (e.g. "gateway_error"); else empty
    std::string host;
    std::string outcome;  // empty while running; e.g. "success", "gateway_error", "cancelled"
    uint32_t status = 0;  // HTTP status of its answer, 0 without one
    int64_t duration_ms = -1;
  };

  void setRoute(std::string route) { route_ = std::move(route); }
  /** A policy or filter acted (rate_limited, shed, bulkhead_full, breaker_open, fallback...). */
  void add(std::string name, Fields fields = {});
  void startAttempt(uint32_t number, std::string kind, std::string reason, std::string host);
  void endAttempt(uint32_t number, std::string_view outcome, uint32_t status, int64_t duration_ms);
  /** Why no further attempt was made after a failure (budget_exhausted, attempts_exhausted...). */
  void setRetryStop(std::string_view why) { retry_stop_ = std::string(why); }
  void setDeadlineReceived(int64_t ms) { deadline_received_ms_ = ms; }
  void setDeadlineSent(int64_t ms) { deadline_sent_ms_ = ms; }

  const std::vector<Attempt>& attempts() const { return attempts_; }
  bool has(std::string_view name) const;

  nlohmann::json toJson() const;
  /** The same object as toJson(), written as JSON text without building a document. */
  std::string toJsonText() const;
  void appendJson(std::string& out) const override;
  /**
   * One header line: `route=NAME; attempt=1,initial,HOST,gateway_error,503,12ms; ...;
   * NAME(k=v,...); retry_stop=WHY; deadline=in 500ms,out 480ms`. Visible ASCII only, at most
   * kMaxCompactBytes (cut with "...").
   */
  std::string compact() const;

  static constexpr size_t kMaxCompactBytes = 2048;

private:
  std::string route_;
  std::vector<Attempt> attempts_;
  std::vector<std::pair<std::string, Fields>> decisions_;
  std::string retry_stop_;
  std::optional<int64_t> deadline_received_ms_;
  std::optional<int64_t> deadline_sent_ms_;
};

}  // namespace bulwark::http
