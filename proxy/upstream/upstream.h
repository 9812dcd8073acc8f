#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/circuit_breaker/circuit_breaker.h"
#include "policies/lb/load_balancer.h"
#include "policies/outcome.h"
#include "policies/outlier/outlier_detector.h"
#include "proxy/config/spec.h"
#include "proxy/network/tls.h"
#include "proxy/upstream/host.h"
#include "proxy/upstream/upstream_stats.h"

namespace bulwark::upstream {

/**
 * Permission for one attempt, from Upstream::admitAttempt(). Holds the request slot (and, when
 * a breaker is configured, the breaker permit) until onAttemptComplete() or destruction.
 * Thread: the worker running the attempt.
 */
class AttemptPermit {
public:
  virtual ~AttemptPermit() = default;
  /**
   * The attempt goes to `host`, starting at `now`: counted in flight there (what LEAST_REQUEST
   * and PEAK_EWMA read) and in the host's total until the permit is released. Call once.
   */
  virtual void countOn(HostSharedPtr host, std::chrono::steady_clock::time_point now) = 0;
  /** A breaker in `mode: dryRun` would have refused this attempt ("circuit_open"); else null. */
  const char* dry_run = nullptr;
};
using AttemptPermitPtr = std::unique_ptr<AttemptPermit>;

/** Why an attempt was not admitted. */
struct AdmitRejection {
  enum class Reason { CircuitOpen, Overflow };
  Reason reason;
  std::chrono::milliseconds retry_after{0};  // time left open (breaker), for Retry-After / pushback
};

/**
 * One concurrent retry counted against connectionPool.maxRetries (Envoy's max_retries
 * threshold). Released on destruction. Thread: the worker running the request; the counter is
 * atomic. The Upstream must outlive it (the route's UpstreamSharedPtr keeps it alive).
 */
class RetryPermit {
public:
  explicit RetryPermit(std::atomic<uint64_t>& counter) : counter_(counter) {}
  ~RetryPermit() { counter_.fetch_sub(1, std::memory_order_acq_rel); }
  RetryPermit(const RetryPermit&) = delete;
  RetryPermit& operator=(const RetryPermit&) = delete;

private:
  std::atomic<uint64_t>& counter_;
};
using RetryPermitPtr = std::unique_ptr<RetryPermit>;

/** What one pick needs to know about its attempt. */
struct LbContext {
  /** RING_HASH / MAGLEV key from hashKeyFor(); without one they pick a random slot. */
  std::optional<uint64_t> hash_key;
  /** Hosts already tried by earlier attempts of one request (retries avoid them). */
  std::span<const Host* const> attempted;
  /** The attempt's permit from Upstream::admitAttempt(); perHost binds the picked host's breaker
   *  permit into it. Null: no host breaker is asked (nothing would feed it the result). */
  AttemptPermit* permit = nullptr;
};

class Upstream;

/**
 * circuitBreaker.perHost: the breaker of one host in one Upstream object, fed by every attempt
 * sent to that host. While it is OPEN the host is out of picking (Host::setBreakerOpen, the
 * flag ejections use, so the panic threshold applies to both alike); once openDuration has
 * passed the host is pickable again and the first attempts picked for it are the half-open
 * probes. A host that stays in the host set keeps its breaker (and its state) across DNS
 * refreshes. Thread: any (the breaker is thread-safe; host and upstream are immutable).
 */
class HostBreaker {
public:
  HostBreaker(Upstream& upstream, HostSharedPtr host,
              const policies::CircuitBreaker::Options& options);
  HostBreaker(const HostBreaker&) = delete;
  HostBreaker& operator=(const HostBreaker&) = delete;

  Host& host() const { return *host_; }
  policies::CircuitBreaker& breaker() { return breaker_; }
  const policies::CircuitBreaker& breaker() const { return breaker_; }

private:
  HostSharedPtr host_;
  policies::CircuitBreaker breaker_;
};
using HostBreakerSharedPtr = std::shared_ptr<HostBreaker>;

/**
 * A host set and the load balancer built for it (main thread, once per change). Workers build
 * their pickers from it. Thread: any (immutable).
 */
struct LbSnapshot {
  HostSetConstSharedPtr hosts;
  /** Null only when building failed (then pickers fall back to round robin over `hosts`). */
  policies::lb::LoadBalancerConstSharedPtr balancer;
  /** circuitBreaker.perHost: one breaker per host, index-aligned with hosts->hosts; else empty. */
  std::vector<HostBreakerSharedPtr> host_breakers;
};
using LbSnapshotConstSharedPtr = std::shared_ptr<const LbSnapshot>;

/** The built-in balancers (ROUND_ROBIN ... PEAK_EWMA), registered once. Thread: any. */
const policies::lb::LbRegistry& builtinLbRegistry();

/** @return the YAML name of a policy ("ROUND_ROBIN", ...), as registered. */
std::string_view lbPolicyName(config::LbPolicy policy);

/** The balancer parameters an upstream spec implies (choiceCount, panic threshold, ...). */
policies::lb::LbConfig lbConfigFor(const config::UpstreamSpec& spec);

/**
 * A named backend service: its hosts (immutable snapshot), limits, circuit breaker, outlier
 * detection and counters. Shared by all workers and kept across reloads while its spec is
 * unchanged.
 *
 * Limits are exact (CAS counters, never exceeded, HAProxy style): maxRequests in admitAttempt(),
 * maxRetries in tryAcquireRetry(), maxConnections in tryAcquireConnection() and
 * maxPendingRequests in tryAcquirePending() (upstream-wide, across all workers' pools).
 *
 * Thread: any (atomics; the host-set snapshot is swapped under a mutex on the main thread; the
 * outlier detector has its own mutex).
 */
class Upstream {
public:
  /** stats may be null (unit tests): then nothing is exported. */
  Upstream(config::UpstreamSpec spec, HostSetConstSharedPtr hosts,
           UpstreamStatsSharedPtr stats = nullptr);
  ~Upstream();

  const config::UpstreamSpec& spec() const { return spec_; }
  /**
   * The TLS client context when the upstream's `tls` block is set (null for plaintext); when
   * it could not be built (files gone since the config was checked) tlsError() says why and the
   * config that asked for it is refused.
   */
  const network::TlsContextSharedPtr& tlsContext() const { return tls_context_; }
  const std::string& tlsError() const { return tls_error_; }
  /** tlsFilesDigest() of the files this upstream's TLS context was built from. */
  size_t tlsFilesDigest() const { return tls_files_digest_; }
  /** SNI for connections to this upstream: tls.sni, else the endpoints' DNS name. */
  const std::string& tlsServerName() const { return tls_sni_; }
  const std::string& name() const { return spec_.name; }
  HostSetConstSharedPtr hosts() const;
  /** The hosts and their balancer, for the workers' pickers. */
  LbSnapshotConstSharedPtr lbSnapshot() const;
  /**
   * Thread: main. Publishes a new host set and rebuilds the balancer. Hosts removed from the
   * set are marked `removed` (their pools drain). Outlier detection keeps ejections in force
   * until they end (see the NOTE in upstream.cc).
   */
  void setHosts(HostSetConstSharedPtr hosts);

  /**
   * Thread: main. This object becomes the live upstream of its hosts (UpstreamManager, when a
   * config is applied): its per-host breakers, if any, take over the hosts' breaker exclusion
   * and whatever an earlier upstream object left is cleared. Until then (a reload being
   * prepared, which may still be rejected) its host breakers count but exclude nothing.
   */
  void activate();

  /**
   * Router-facing: asks to start one attempt now (maxRequests limit and circuit breaker).
   * With circuitBreaker.perHost there is no upstream-wide breaker: the host breaker is consulted
   * by ThreadLocalUpstream::pickHost() with this permit in its LbContext. The permit remembers
   * `now` for that.
   * @return a permit to hand back to onAttemptComplete(), or the rejection: "circuit_open" with
   *         retry_after = the time the breaker stays open, or "upstream_overflow".
   */
  std::variant<AttemptPermitPtr, AdmitRejection> admitAttempt(
      std::chrono::steady_clock::time_point now);

  /** circuitBreaker.perHost is configured. */
  bool perHostBreakers() const { return spec_.circuit_breaker && spec_.circuit_breaker->per_host; }
  /** circuitBreaker.mode is dryRun: breakers track state, count refusals, refuse nothing. */
  bool breakerDryRun() const {
    return spec_.circuit_breaker && spec_.circuit_breaker->mode == "dryRun";
  }
  /**
   * perHost: asks the breaker of host `index` of `snapshot` to let the attempt of `permit` (from
   * this upstream's admitAttempt(), not yet bound to a host) go there, and binds the breaker's
   * permit to it, so that onAttemptComplete() feeds the breaker and a cancelled attempt frees
   * its half-open probe slot.
   * @return false when the breaker refuses (OPEN, or HALF_OPEN with every probe out; counted
   *         in bulwark_circuit_breaker_rejected_total): pick another host. True otherwise,
   *         including when there is no permit to bind.
   */
  bool admitHost(const LbSnapshot& snapshot, uint32_t index, AttemptPermit* permit);
  /**
   * perHost: one atomic load unless a host breaker's open time may be over; then the hosts
   * whose breaker has been open for openDuration become pickable again (for half-open probes).
   * Called before each pick and by the main-thread tick.
   */
  void releaseDueHostBreakers(std::chrono::steady_clock::time_point now);
  /** The balancer parameters (panic threshold). */
  const policies::lb::LbConfig& lbConfig() const { return lb_config_; }
  /**
   * Router-facing: one attempt ended. Feeds the breaker, outlier detection, the host's latency
   * estimate (PEAK_EWMA) and host counters. permit may be null (attempt never admitted).
   */
  void onAttemptComplete(Host& host, const policies::AttemptResult& result,
                         std::chrono::nanoseconds latency, AttemptPermitPtr permit,
                         std::chrono::steady_clock::time_point now);
  /**
   * Router-facing: an attempt was abandoned without a result (downstream gone, hedge loser).
   * Says nothing about the host: only frees the permit (and a half-open probe slot).
   */
  /** An attempt given up after `elapsed` without an answer: a lower bound for PEAK_EWMA. */
  void onAttemptCancelled(Host& host, std::chrono::nanoseconds elapsed, AttemptPermitPtr permit,
                          std::chrono::steady_clock::time_point now) const;

  /**
   * Router-facing: one more retry in flight, limited by connectionPool.maxRetries.
   * @return the permit (hold it while the retry attempt runs), or null on overflow.
   */
  RetryPermitPtr tryAcquireRetry();

  /** Exact (CAS) cap on connections across all workers (HAProxy style: never exceeds). */
  bool tryAcquireConnection();
  void releaseConnection();
  uint64_t activeConnections() const { return connections_active_.load(std::memory_order_relaxed); }
  /** Exact cap on requests queued for a connection in all workers' pools (maxPendingRequests). */
  bool tryAcquirePending();
  void releasePending();

  /** Hosts that are healthy and not ejected (readiness: requireUpstreams). */
  size_t healthyHostCount() const;
  /** The upstream-wide breaker's state, or nullopt when the upstream has none (or perHost). */
  std::optional<policies::BreakerState> breakerState() const;

  /**
   * Thread: main. The outlier-detection timer (UpstreamManager): runs the interval sweep when
   * an interval has passed and ends ejections whose time is up.
   */
  void onOutlierTick(std::chrono::steady_clock::time_point now);
  /**
   * Thread: main. An active health check of `host` succeeded and the host passes its health
   * checks: an outlier ejection of it ends now (Envoy's
   * successful_active_health_check_uneject_host, default true), counted in
   * bulwark_outlier_unejections_total{reason="active_health_check"} and the host's
   * healthCheckUnejections in /upstreams. No-op when the host is not ejected.
   *
   * The detector forgets the ejection as well (OutlierDetector::uneject): the host's next
   * failures count from zero and can eject it again at once, with the ejection time grown by
   * its times ejected, and it no longer counts towards maxEjectionPercent.
   */
  void onActiveHealthCheckSuccess(Host& host, std::chrono::steady_clock::time_point now);
  /** Publishes endpoint gauges (scrape time). */
  void refreshGauges() const;
  /** State for /upstreams. */
  nlohmann::json toJson(std::chrono::steady_clock::time_point now) const;
  const UpstreamStatsSharedPtr& stats() const { return stats_; }

  /** Attempts admitted and not yet released (counted by their permits). */
  uint64_t activeRequests() const { return attempts_active_.load(std::memory_order_relaxed); }
  /** Attempts started on a host since this upstream object was built. */
  uint64_t requestsTotal() const { return requests_total_.load(std::memory_order_relaxed); }

  std::atomic<uint64_t> connect_failures_total{0};
  std::atomic<uint64_t> overflow_total{0};

private:
  void buildTlsContext();
  friend class HostBreaker;
  void onHostBreakerTransition(HostBreaker& hb, policies::BreakerState from,
                               policies::BreakerState to);
  void countOverflow(OverflowLimit limit);
  void recordOutlier(Host& host, policies::Outcome outcome, bool pushback,
                     std::chrono::steady_clock::time_point now);
  void applyOutlierEventLocked(const HostSet& set, const policies::OutlierEvent& event);
  void updateEjectedGaugeLocked(const HostSet& set) const;

  config::UpstreamSpec spec_;
  UpstreamStatsSharedPtr stats_;
  network::TlsContextSharedPtr tls_context_;
  std::string tls_sni_;
  std::string tls_error_;
  size_t tls_files_digest_ = 0;
  policies::lb::LbConfig lb_config_;
  mutable std::mutex hosts_mutex_;
  LbSnapshotConstSharedPtr snapshot_;  // guarded by hosts_mutex_
  std::atomic<uint64_t> connections_active_{0};
  std::atomic<uint64_t> attempts_active_{0};  // for maxRequests (exact), held by AttemptPermits
  std::atomic<uint64_t> requests_total_{0};   // counted by AttemptPermit::countOn
  std::atomic<uint64_t> retries_active_{0};   // for maxRetries (exact)
  std::atomic<uint64_t> pending_active_{0};   // for maxPendingRequests (exact)
  std::unique_ptr<policies::CircuitBreaker> breaker_;
  bool active_ = false;  // main thread only: activate() was called
  // perHost: toNanos() of the earliest instant an open host breaker may be released; INT64_MAX
  // when none is open, 0 to force a look (a breaker just opened).
  std::atomic<int64_t> next_breaker_release_nanos_{INT64_MAX};
  std::mutex release_mutex_;  // one releaser at a time
  // Outlier detection: indices are positions in outlier_hosts_ (the set the detector was sized
  // for); replaced with the host set.
  mutable std::mutex outlier_mutex_;
  std::unique_ptr<policies::OutlierDetector> outlier_;             // guarded by outlier_mutex_
  HostSetConstSharedPtr outlier_hosts_;                            // guarded by outlier_mutex_
  std::chrono::steady_clock::time_point next_outlier_interval_{};  // guarded by outlier_mutex_
};
using UpstreamSharedPtr = std::shared_ptr<Upstream>;

/** Builds the host set for a spec (static endpoints; names resolved at load). */
HostSetConstSharedPtr buildStaticHostSet(const config::UpstreamSpec& spec);

/**
 * Builds a host set from addresses, reusing the Host object of every address already in
 * `previous` (counters, load, health and ejection survive a refresh). Duplicates are dropped.
 */
HostSetConstSharedPtr buildHostSet(const std::vector<std::pair<std::string, uint32_t>>& addresses,
                                   const HostSetConstSharedPtr& previous);

/** True when two specs describe the same upstream (reuse live state across a reload). */
bool sameUpstream(const config::UpstreamSpec& a, const config::UpstreamSpec& b);

/**
 * A digest of the bytes of the TLS files an upstream spec names (CA, client certificate, key):
 * a reload after a rotation rebuilds the upstream even though its spec is unchanged.
 */
size_t tlsFilesDigest(const config::UpstreamSpec& spec);

}  // namespace bulwark::upstream
