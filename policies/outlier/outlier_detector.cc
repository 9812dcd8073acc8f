#include "policies/outlier/outlier_detector.h"

#include <algorithm>

namespace bulwark::policies {

std::string_view ejectionReasonLabel(EjectionReason reason) {
  switch (reason) {
    case EjectionReason::Consecutive5xx: return "consecutive_5xx";
    case EjectionReason::ConsecutiveGatewayError: return "consecutive_gateway_error";
    case EjectionReason::ConsecutiveLocalOriginFailure: return "consecutive_local_origin_failure";
    case EjectionReason::FailurePercentage: return "failure_percentage";
  }
  return "consecutive_5xx";
}

OutlierDetector::OutlierDetector(const Options& options, size_t host_count)
    : options_(options), hosts_(host_count) {
  options_.max_ejection_time = std::max(options_.max_ejection_time, options_.base_ejection_time);
}

size_t OutlierDetector::ejectedCountLocked(MonotonicTime now) const {
  return static_cast<size_t>(std::count_if(hosts_.begin(), hosts_.end(),
                                           [&](const Host& h) { return ejectedLocked(h, now); }));
}

OutlierEvent OutlierDetector::tryEjectLocked(size_t index, EjectionReason reason,
                                             MonotonicTime now) {
  Host& h = hosts_[index];
  const size_t ejected = ejectedCountLocked(now);
  const bool within_percent =
      (ejected + 1) * 100 <= static_cast<size_t>(options_.max_ejection_percent) * hosts_.size();
  const bool first_one = options_.always_eject_one_host && ejected == 0;
  if (!within_percent && !first_one) {
    return {OutlierEvent::Kind::EjectionSkipped, index, reason, {}};
  }
  ++h.times_ejected;
  // base × times, computed so that a large multiplier saturates at the cap instead of overflowing.
  const int64_t base = options_.base_ejection_time.count();
  const int64_t cap = options_.max_ejection_time.count();
  const int64_t duration = base > 0 && static_cast<int64_t>(h.times_ejected) > cap / base
                               ? cap
                               : std::min(cap, base * static_cast<int64_t>(h.times_ejected));
  h.until = saturatingAdd(now, Duration(duration));
  h.ejected = true;
  h.ejected_this_interval = true;
  h.consecutive_5xx = 0;
  h.consecutive_gateway = 0;
  h.consecutive_local = 0;
  return {OutlierEvent::Kind::Ejected, index, reason, h.until};
}

std::optional<OutlierEvent> OutlierDetector::onResult(size_t host, Outcome outcome,
                                                      MonotonicTime now, bool pushback) {
  std::lock_guard<std::mutex> lock(mu_);
  if (host >= hosts_.size()) {
    return std::nullopt;
  }
  Host& h = hosts_[host];
  if (ejectedLocked(h, now)) {
    return std::nullopt;  // a late result from before the ejection
  }
  const bool local = isLocalOriginFailure(outcome);
  const bool server_5xx = isServer5xxLike(outcome);
  if (server_5xx && pushback && options_.ignore_pushback) {
    h.consecutive_local = 0;  // an answer came back: the connection path works
    return std::nullopt;
  }
  ++h.interval_total;
  if (local || server_5xx) {
    ++h.interval_failures;
  } else if (outcome == Outcome::Success) {
    ++h.interval_successes;
  }

  if (local) {
    ++h.consecutive_local;
    if (options_.consecutive_local_origin_failures > 0 &&
        h.consecutive_local >= options_.consecutive_local_origin_failures) {
      return tryEjectLocked(host, EjectionReason::ConsecutiveLocalOriginFailure, now);
    }
    return std::nullopt;
  }
  if (outcome == Outcome::GoAwayBeforeProcessing) {
    return std::nullopt;  // a draining host: neither failure nor success
  }

  // A response arrived: the connection path works.
  h.consecutive_local = 0;
  if (!server_5xx) {
    h.consecutive_5xx = 0;
    h.consecutive_gateway = 0;
    return std::nullopt;
  }
  ++h.consecutive_5xx;
  if (isGatewayErrorLike(outcome)) {
    ++h.consecutive_gateway;
    if (options_.consecutive_gateway_errors > 0 &&
        h.consecutive_gateway >= options_.consecutive_gateway_errors) {
      return tryEjectLocked(host, EjectionReason::ConsecutiveGatewayError, now);
    }
  } else {
    h.consecutive_gateway = 0;
  }
  if (options_.consecutive_5xx > 0 && h.consecutive_5xx >= options_.consecutive_5xx) {
    return tryEjectLocked(host, EjectionReason::Consecutive5xx, now);
  }
  return std::nullopt;
}

std::vector<OutlierEvent> OutlierDetector::onInterval(MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OutlierEvent> events;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    Host& h = hosts_[i];
    if (h.ejected && now >= h.until) {
      h.ejected = false;
      events.push_back({OutlierEvent::Kind::Unejected, i, EjectionReason::Consecutive5xx, h.until});
    }
  }

  if (options_.failure_percentage_threshold > 0) {
    std::vector<size_t> qualifying;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      const Host& h = hosts_[i];
      if (!ejectedLocked(h, now) &&
          h.interval_total >= options_.failure_percentage_request_volume && h.interval_total > 0) {
        qualifying.push_back(i);
      }
    }
    if (qualifying.size() >= options_.failure_percentage_minimum_hosts) {
      for (const size_t i : qualifying) {
        const Host& h = hosts_[i];
        if (h.interval_failures * 100 >= options_.failure_percentage_threshold * h.interval_total) {
          events.push_back(tryEjectLocked(i, EjectionReason::FailurePercentage, now));
        }
      }
    }
  }

  for (Host& h : hosts_) {
    if (!h.ejected_this_interval && !ejectedLocked(h, now) && h.interval_successes > 0 &&
        h.times_ejected > 0) {
      --h.times_ejected;
    }
    h.interval_total = 0;
    h.interval_failures = 0;
    h.interval_successes = 0;
    h.ejected_this_interval = false;
  }
  return events;
}

bool OutlierDetector::uneject(size_t host, MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (host >= hosts_.size() || !ejectedLocked(hosts_[host], now)) {
    return false;
  }
  Host& h = hosts_[host];
  h.ejected = false;
  h.until = MonotonicTime{};
  // Results from before the ejection must not carry over: the host earns a new ejection only by
  // failing again after it is back (ejected_this_interval stays, so this interval still does
  // not decay the multiplier).
  h.consecutive_5xx = 0;
  h.consecutive_gateway = 0;
  h.consecutive_local = 0;
  h.interval_total = 0;
  h.interval_failures = 0;
  h.interval_successes = 0;
  return true;
}

bool OutlierDetector::isEjected(size_t host, MonotonicTime now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return host < hosts_.size() && ejectedLocked(hosts_[host], now);
}

size_t OutlierDetector::ejectedCount(MonotonicTime now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ejectedCountLocked(now);
}

uint32_t OutlierDetector::timesEjected(size_t host) const {
  std::lock_guard<std::mutex> lock(mu_);
  return host < hosts_.size() ? hosts_[host].times_ejected : 0;
}

void OutlierDetector::setHostCount(size_t host_count) {
  std::lock_guard<std::mutex> lock(mu_);
  hosts_.resize(host_count);
}

size_t OutlierDetector::hostCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hosts_.size();
}

bool inPanicMode(size_t healthy_hosts, size_t total_hosts, uint32_t panic_threshold_percent) {
  return total_hosts > 0 &&
         healthy_hosts * 100 < static_cast<size_t>(panic_threshold_percent) * total_hosts;
}

}  // namespace bulwark::policies
