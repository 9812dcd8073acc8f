#pragma once

// Proxy-side Idempotency-Key deduplication (route `idempotency.dedupe`;
// draft-ietf-httpapi-idempotency-key-header-07):
// the first request with a key proceeds; a repeat while it is in flight gets 409; a repeat
// after it completed gets the stored response replayed; a repeat with a different payload
// fingerprint gets 422.
//
// Which results are stored (draft: replay "the result of the previously completed operation,
// success or an error"; bulwark stores only results that prove the operation was decided):
//   stored:   2xx, 3xx, and 4xx except the ones below: the operation completed or was rejected
//             for reasons the same request will meet again, so a replay is the right answer.
//   released: 1xx (not final); 5xx (outcome unknown, the client's retry must be able to
//             proceed); 401, 403, 407 (the request was refused before it was processed, and
//             credentials are not part of the fingerprint, so a retry with valid ones must not
//             get the old refusal); 408, 425, 429 (not processed: timeout, too early, rate
//             limited); 409 (the upstream's own conflict, typically transient).
//   Failures without a response (connect failure, reset, timeout) release the key: the caller
//   calls abandon().
// Releasing removes the entry, so the next request with the key proceeds as if it were new.
//
// Bounds: entries expire `ttl` after completion (in-flight entries `in_flight_ttl` after begin,
// so a lost completion cannot block a key forever); at `max_entries` the least recently used
// completed entry is evicted; in-flight entries are never evicted, and when every entry is in
// flight a new key is refused with StoreFull.
//
// Keys: the caller passes the composite lookup key (route name + the Idempotency-Key value, and
// a client/tenant identity if it has one, as the draft recommends) and the fingerprint computed
// from the configured parts (method, path, body SHA-256 hex): this library links no crypto.
// Large responses: the store keeps whatever it is given; the caller decides what is worth
// storing (e.g. up to the route's buffer limit) and abandons the key otherwise.

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policies/time.h"

namespace bulwark::policies::idempotency {

/** A response as stored and replayed. Thread: value type; shared read-only once stored. */
struct StoredResponse {
  uint32_t status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
using StoredResponseConstSharedPtr = std::shared_ptr<const StoredResponse>;

/** Store limits (route `idempotency.dedupe`). Thread: value type. */
struct IdempotencyConfig {
  /** How long a completed response is replayed (dedupe.ttl). */
  Duration ttl = std::chrono::hours(24);
  /** How long an in-flight entry blocks its key if it is never completed or abandoned. */
  Duration in_flight_ttl = std::chrono::minutes(5);
  /** Bound on stored keys, in flight and completed together (dedupe.maxEntries); >= 1. */
  size_t max_entries = 100000;
};

/** Identifies one begin() that returned Proceed. Thread: value type. */
struct IdempotencyToken {
  std::string key;
  /** Distinguishes this begin from an earlier, expired one for the same key. */
  uint64_t generation = 0;
};

/** What begin() decided. */
enum class BeginOutcome : uint8_t {
  Proceed,    // first request for the key: forward it, then complete() or abandon()
  Replay,     // completed before with the same fingerprint: answer with `response`
  Conflict,   // in flight with the same fingerprint: answer 409 Conflict
  Mismatch,   // key used before with a different fingerprint: answer 422 Unprocessable Content
  StoreFull,  // max_entries reached and every entry in flight: answer 503 (nothing to evict)
};

/** @return a stable label for metrics (`bulwark_idempotency_results_total{result}`). */
std::string_view beginOutcomeLabel(BeginOutcome outcome);

/** Result of begin(). Thread: value type. */
struct BeginResult {
  BeginOutcome outcome = BeginOutcome::Proceed;
  /** Set for Proceed. */
  IdempotencyToken token;
  /** Set for Replay. */
  StoredResponseConstSharedPtr response;
};

/** Result of complete(). */
enum class CompleteOutcome : uint8_t {
  Stored,    // cacheable: replayed to later requests with the key until it expires
  Released,  // not cacheable (see the file comment): the key is free again
  Stale,     // the token's entry expired (or was taken over) meanwhile: nothing changed
};

/**
 * The dedupe store of one route. Thread: any — one instance is shared by all workers and every
 * method locks an internal mutex for O(log n) work (no I/O, no allocation proportional to a
 * body under the lock beyond moving the given response in).
 */
class IdempotencyStore {
public:
  explicit IdempotencyStore(IdempotencyConfig config);

  /**
   * Looks up `key` and claims it when new.
   * @param key composite lookup key (see the file comment).
   * @param fingerprint the request's fingerprint; compared byte for byte.
   * @param now the caller's current monotonic time.
   */
  BeginResult begin(std::string_view key, std::string_view fingerprint, MonotonicTime now);

  /**
   * Finishes the request of a Proceed token: stores the response if cacheable (isStorable()),
   * otherwise releases the key.
   */
  CompleteOutcome complete(const IdempotencyToken& token, StoredResponse response,
                           MonotonicTime now);

  /**
   * Releases a Proceed token's key without storing anything (failure without a response,
   * downstream gave up, response too large to keep). No effect on a stale token.
   * @return true when the key was released by this call.
   */
  bool abandon(const IdempotencyToken& token);

  /** Drops every expired entry; begin() also does this, a timer may call it when idle. */
  void purgeExpired(MonotonicTime now);

  /** @return entries currently held (in flight + completed), expired ones included until purged. */
  size_t size() const;

  /** @return entries currently in flight. */
  size_t inFlightCount() const;

  /** @return true for the statuses that are stored (see the file comment). */
  static bool isStorable(uint32_t status);

private:
  struct Entry {
    std::string fingerprint;
    uint64_t generation = 0;
    bool in_flight = true;
    MonotonicTime expires_at;
    StoredResponseConstSharedPtr response;  // set once completed
    std::multimap<MonotonicTime, std::string>::iterator expiry_it;
    std::list<std::string>::iterator lru_it;  // valid only when completed
  };
  // Transparent hashing: begin() looks up a string_view without building a std::string.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  using EntryMap = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;

  void purgeExpiredLocked(MonotonicTime now);
  void eraseLocked(EntryMap::iterator it);
  void setExpiryLocked(EntryMap::iterator it, MonotonicTime expires_at);

  const IdempotencyConfig config_;
  mutable std::mutex mu_;
  EntryMap entries_;                                  // guarded by mu_
  std::multimap<MonotonicTime, std::string> expiry_;  // guarded by mu_; soonest first
  std::list<std::string> lru_;                        // guarded by mu_; completed keys, LRU first
  size_t in_flight_ = 0;                              // guarded by mu_
  uint64_t next_generation_ = 1;                      // guarded by mu_
};

}  // namespace bulwark::policies::idempotency
