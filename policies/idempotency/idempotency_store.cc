#include "policies/idempotency/idempotency_store.h"

#include <algorithm>

namespace bulwark::policies::idempotency {

std::string_view beginOutcomeLabel(BeginOutcome outcome) {
  switch (outcome) {
    case BeginOutcome::Proceed: return "proceed";
    case BeginOutcome::Replay: return "replayed";
    case BeginOutcome::Conflict: return "conflict";
    case BeginOutcome::Mismatch: return "mismatch";
    case BeginOutcome::StoreFull: return "store_full";
  }
  return "unknown";
}

namespace {

// A zero bound would refuse every key; treat it as the smallest useful store instead.
IdempotencyConfig normalized(IdempotencyConfig config) {
  config.max_entries = std::max<size_t>(1, config.max_entries);
  return config;
}

}  // namespace

IdempotencyStore::IdempotencyStore(IdempotencyConfig config) : config_(normalized(config)) {}

bool IdempotencyStore::isStorable(uint32_t status) {
  if (status >= 200 && status < 400) {
    return true;
  }
  if (status >= 400 && status < 500) {
    switch (status) {
      case 401:  // Unauthorized
      case 403:  // Forbidden
      case 407:  // Proxy Authentication Required
      case 408:  // Request Timeout
      case 409:  // Conflict
      case 425:  // Too Early
      case 429:  // Too Many Requests
        return false;
      default: return true;
    }
  }
  return false;  // 1xx (not final), 5xx (outcome unknown), anything out of range
}

BeginResult IdempotencyStore::begin(std::string_view key, std::string_view fingerprint,
                                    MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  purgeExpiredLocked(now);

  BeginResult result;
  if (auto it = entries_.find(key); it != entries_.end()) {
    Entry& entry = it->second;
    if (entry.fingerprint != fingerprint) {
      // Checked first: a reused key with another payload is a client bug whatever the state.
      result.outcome = BeginOutcome::Mismatch;
    } else if (entry.in_flight) {
      result.outcome = BeginOutcome::Conflict;
    } else {
      lru_.splice(lru_.end(), lru_, entry.lru_it);  // most recently used
      result.outcome = BeginOutcome::Replay;
      result.response = entry.response;
    }
    return result;
  }

  if (entries_.size() >= config_.max_entries) {
    if (lru_.empty()) {
      result.outcome = BeginOutcome::StoreFull;  // only in-flight entries, which never go
      return result;
    }
    eraseLocked(entries_.find(lru_.front()));
  }

  auto [it, inserted] = entries_.try_emplace(std::string(key));
  Entry& entry = it->second;
  entry.fingerprint = std::string(fingerprint);
  entry.generation = next_generation_++;
  entry.in_flight = true;
  entry.expiry_it = expiry_.end();
  setExpiryLocked(it, saturatingAdd(now, config_.in_flight_ttl));
  ++in_flight_;

  result.outcome = BeginOutcome::Proceed;
  result.token = {it->first, entry.generation};
  return result;
}

CompleteOutcome IdempotencyStore::complete(const IdempotencyToken& token, StoredResponse response,
                                           MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token.key);
  if (it == entries_.end() || it->second.generation != token.generation || !it->second.in_flight) {
    return CompleteOutcome::Stale;
  }
  if (!isStorable(response.status)) {
    eraseLocked(it);
    return CompleteOutcome::Released;
  }
  Entry& entry = it->second;
  entry.in_flight = false;
  --in_flight_;
  entry.response = std::make_shared<const StoredResponse>(std::move(response));
  entry.lru_it = lru_.insert(lru_.end(), it->first);
  setExpiryLocked(it, saturatingAdd(now, config_.ttl));
  return CompleteOutcome::Stored;
}

bool IdempotencyStore::abandon(const IdempotencyToken& token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token.key);
  if (it == entries_.end() || it->second.generation != token.generation || !it->second.in_flight) {
    return false;
  }
  eraseLocked(it);
  return true;
}

void IdempotencyStore::purgeExpired(MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  purgeExpiredLocked(now);
}

size_t IdempotencyStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

size_t IdempotencyStore::inFlightCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void IdempotencyStore::purgeExpiredLocked(MonotonicTime now) {
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    eraseLocked(entries_.find(expiry_.begin()->second));
  }
}

void IdempotencyStore::eraseLocked(EntryMap::iterator it) {
  Entry& entry = it->second;
  expiry_.erase(entry.expiry_it);
  if (entry.in_flight) {
    --in_flight_;
  } else {
    lru_.erase(entry.lru_it);
  }
  entries_.erase(it);
}

void IdempotencyStore::setExpiryLocked(EntryMap::iterator it, MonotonicTime expires_at) {
  Entry& entry = it->second;
  if (entry.expiry_it != expiry_.end()) {
    expiry_.erase(entry.expiry_it);
  }
  entry.expires_at = expires_at;
  entry.expiry_it = expiry_.emplace(expires_at, it->first);
}

}  // namespace bulwark::policies::idempotency
