#include "proxy/upstream/upstream.h"

#include <algorithm>
#include <array>
#include <climits>
#include <fstream>
#include <iterator>
#include <set>

#include <spdlog/spdlog.h>

#include "common/assert.h"
#include "policies/lb/lb_host.h"
#include "policies/lb/register_builtin_lb.h"
#include "proxy/config/effective_json.h"

namespace bulwark::upstream {

const policies::lb::LbRegistry& builtinLbRegistry() {
  static const policies::lb::LbRegistry* registry = [] {
    auto* r = new policies::lb::LbRegistry();
    policies::lb::registerBuiltinLoadBalancers(*r);
    return r;
  }();
  return *registry;
}

std::string_view lbPolicyName(config::LbPolicy policy) { return config::toString(policy); }

policies::lb::LbConfig lbConfigFor(const config::UpstreamSpec& spec) {
  policies::lb::LbConfig config;
  config.choice_count = std::max<uint32_t>(1, spec.load_balancer.choice_count);
  // Envoy's healthy_panic_threshold defaults to 50 %; outlierDetection carries the knob.
  config.panic_threshold_percent =
      spec.outlier_detection ? spec.outlier_detection->panic_threshold_percent : 50;
  return config;
}

namespace {

/** One more on `counter` unless it is at `max` already; exact under concurrency (Envoy's limits).
 */
bool tryIncrementBelow(std::atomic<uint64_t>& counter, uint64_t max) {
  uint64_t current = counter.load(std::memory_order_relaxed);
  while (current < max) {
    if (counter.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) {
      return true;
    }
  }
  return false;
}

policies::lb::LoadBalancerConstSharedPtr buildBalancer(const config::UpstreamSpec& spec,
                                                       const policies::lb::LbConfig& config,
                                                       const HostSetConstSharedPtr& hosts) {
  auto lb_hosts = std::make_shared<policies::lb::LbHostSet>();
  lb_hosts->reserve(hosts->hosts.size());
  for (const auto& h : hosts->hosts) {
    lb_hosts->push_back(policies::lb::LbHost{h->address, h->weight, h->lb_state});
  }
  const auto* factory = builtinLbRegistry().find(lbPolicyName(spec.load_balancer.policy));
  if (factory == nullptr) {
    spdlog::error("upstream {}: no load balancer {}", spec.name,
                  lbPolicyName(spec.load_balancer.policy));
    return nullptr;
  }
  auto balancer = factory->create(lb_hosts, config);
  if (!balancer) {
    spdlog::error("upstream {}: load balancer: {}", spec.name, balancer.error());
    return nullptr;
  }
  return *balancer;
}

policies::CircuitBreaker::Options breakerOptions(const config::CircuitBreakerSpec& s) {
  policies::CircuitBreaker::Options o;
  o.failure_rate_threshold = s.failure_rate_threshold;
  o.slow_call_duration_threshold = s.slow_call_duration_threshold;
  o.slow_call_rate_threshold = s.slow_call_rate_threshold;
  o.minimum_requests = s.minimum_requests;
  o.window = s.window;
  o.open_duration = s.open_duration;
  o.half_open_requests = s.half_open_requests;
  return o;
}

policies::OutlierDetector::Options outlierOptions(const config::OutlierDetectionSpec& s) {
  policies::OutlierDetector::Options o;
  o.consecutive_5xx = s.consecutive_5xx_errors;
  o.consecutive_gateway_errors = s.consecutive_gateway_errors;
  o.consecutive_local_origin_failures = s.consecutive_local_origin_failures;
  o.failure_percentage_threshold = s.failure_percentage_threshold;
  o.failure_percentage_minimum_hosts = s.failure_percentage_minimum_hosts;
  o.failure_percentage_request_volume = s.failure_percentage_request_volume;
  o.base_ejection_time = s.base_ejection_time;
  o.max_ejection_time = s.max_ejection_time;
  o.max_ejection_percent = s.max_ejection_percent;
  o.ignore_pushback = s.ignore_retry_after;
  return o;
}

/**
 * Holds one maxRequests slot and, with a breaker, its permit (upstream-wide, or the picked
 * host's with perHost). Thread: the attempt's worker; the counter is atomic.
 */
class UpstreamAttemptPermit : public AttemptPermit {
public:
  UpstreamAttemptPermit(std::atomic<uint64_t>& active, std::atomic<uint64_t>& total,
                        const Upstream& upstream, std::chrono::steady_clock::time_point admitted_at)
      : upstream(upstream), admitted_at(admitted_at), active_(active), total_(total) {}
  ~UpstreamAttemptPermit() override {
    if (counted_host_) {
      endOnHost(std::chrono::steady_clock::now());
    }
    active_.fetch_sub(1, std::memory_order_acq_rel);
  }
  void countOn(HostSharedPtr host, std::chrono::steady_clock::time_point now) override {
    BULWARK_ASSERT(!counted_host_);
    counted_host_ = std::move(host);
    policies::lb::onAttemptStart(*counted_host_->lb_state, now);
    counted_host_->requests_total.fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
  }
  /** The attempt left the host at `now` (answered, timed out or cancelled). */
  void endOnHost(std::chrono::steady_clock::time_point now) {
    if (counted_host_) {
      policies::lb::onAttemptCancelled(*counted_host_->lb_state, now);
      counted_host_.reset();
    }
  }

  const Upstream& upstream;
  const std::chrono::steady_clock::time_point admitted_at;
  std::optional<policies::CircuitBreaker::Permit> breaker_permit;
  // Declared before host_permit so the permit (which points into the breaker) dies first.
  HostBreakerSharedPtr host_breaker;
  std::optional<policies::CircuitBreaker::Permit> host_permit;

private:
  std::atomic<uint64_t>& active_;
  std::atomic<uint64_t>& total_;
  HostSharedPtr counted_host_;  // the host this attempt is counted on, once it has one
};

/** Rounds up, so a Retry-After of "0" is never sent while the breaker is still open. */
std::chrono::milliseconds ceilMillis(std::chrono::nanoseconds d) {
  return std::chrono::ceil<std::chrono::milliseconds>(std::max(d, std::chrono::nanoseconds(0)));
}

/** A breaker's state for /upstreams (upstream-wide, or one host's with perHost). */
nlohmann::json breakerJson(const policies::CircuitBreaker& breaker,
                           std::chrono::steady_clock::time_point now) {
  auto window = breaker.window(now);
  return {
      {"state", policies::breakerStateLabel(breaker.state())},
      {"openForMs", ceilMillis(breaker.remainingOpen(now)).count()},
      {"rejectedTotal", breaker.rejectedTotal()},
      {"window", {{"calls", window.calls}, {"failures", window.failures}, {"slow", window.slow}}}};
}

}  // namespace

HostBreaker::HostBreaker(Upstream& upstream, HostSharedPtr host,
                         const policies::CircuitBreaker::Options& options)
    : host_(std::move(host)),
      breaker_(options, [this, &upstream](policies::BreakerState from, policies::BreakerState to) {
        upstream.onHostBreakerTransition(*this, from, to);
      }) {}

Upstream::Upstream(config::UpstreamSpec spec, HostSetConstSharedPtr hosts,
                   UpstreamStatsSharedPtr stats)
    : spec_(std::move(spec)), stats_(std::move(stats)), lb_config_(lbConfigFor(spec_)) {
  if (spec_.circuit_breaker && !spec_.circuit_breaker->per_host) {
    // The callback runs on the thread that caused the transition; metrics are thread-safe.
    std::weak_ptr<UpstreamStats> weak = stats_;
    breaker_ = std::make_unique<policies::CircuitBreaker>(
        breakerOptions(*spec_.circuit_breaker),
        [weak, name = spec_.name](policies::BreakerState from, policies::BreakerState to) {
          spdlog::info("upstream {}: circuit breaker {} -> {}", name,
                       policies::breakerStateLabel(from), policies::breakerStateLabel(to));
          if (auto s = weak.lock()) {
            s->breakerTransition(from, to);
          }
        });
    if (stats_) {
      stats_->breakerState(policies::BreakerState::Closed);
    }
  }
  if (spec_.tls) {
    buildTlsContext();
  }
  if (!hosts) {
    hosts = std::make_shared<HostSet>();
  }
  setHosts(std::move(hosts));
}

void Upstream::buildTlsContext() {
  const config::UpstreamTlsSpec& tls = *spec_.tls;
  tls_files_digest_ = upstream::tlsFilesDigest(spec_);
  tls_sni_ = tls.sni;
  if (tls_sni_.empty() && spec_.dns) {
    tls_sni_ = spec_.dns->name;
  }
  if (tls_sni_.empty() && !spec_.static_endpoints.empty()) {
    // A named static endpoint ("payments.internal:443"); an IP literal sends no SNI.
    const std::string& address = spec_.static_endpoints.front().address;
    if (!address.empty() && address.front() != '[') {
      tls_sni_ = address.substr(0, address.rfind(':'));
    }
  }
  std::weak_ptr<UpstreamStats> weak = stats_;
  auto context = network::TlsContext::client(
      tls, spec_.protocol != config::UpstreamProtocol::Http1,
      [weak](std::string_view result, std::chrono::steady_clock::duration duration, bool reused) {
        if (auto s = weak.lock()) {
          s->tlsHandshake(result, duration, reused);
        }
      });
  if (!context) {
    tls_error_ = context.error();
    return;
  }
  tls_context_ = std::move(context).value();
}

Upstream::~Upstream() = default;

HostSetConstSharedPtr Upstream::hosts() const {
  std::lock_guard<std::mutex> lock(hosts_mutex_);
  return snapshot_ ? snapshot_->hosts : nullptr;
}

LbSnapshotConstSharedPtr Upstream::lbSnapshot() const {
  std::lock_guard<std::mutex> lock(hosts_mutex_);
  return snapshot_;
}

void Upstream::setHosts(HostSetConstSharedPtr hosts) {
  if (hosts->index.size() != hosts->hosts.size()) {
    auto indexed = std::make_shared<HostSet>(*hosts);
    indexed->buildIndex();
    hosts = std::move(indexed);
  }
  auto snapshot = std::make_shared<LbSnapshot>();
  snapshot->hosts = hosts;
  snapshot->balancer = buildBalancer(spec_, lb_config_, hosts);
  // Only the main thread replaces snapshot_, so the one read here is still current below.
  LbSnapshotConstSharedPtr previous_snapshot = lbSnapshot();
  if (perHostBreakers()) {
    // A host that stays keeps its breaker; a new one gets a closed breaker (and, once this
    // upstream is live, the right to take the host out).
    const auto options = breakerOptions(*spec_.circuit_breaker);
    snapshot->host_breakers.reserve(hosts->hosts.size());
    for (const auto& h : hosts->hosts) {
      HostBreakerSharedPtr hb;
      if (previous_snapshot) {
        auto it = previous_snapshot->hosts->index.find(h.get());
        if (it != previous_snapshot->hosts->index.end() &&
            it->second < previous_snapshot->host_breakers.size()) {
          hb = previous_snapshot->host_breakers[it->second];
        }
      }
      if (!hb) {
        hb = std::make_shared<HostBreaker>(*this, h, options);
        if (active_) {
          h->adoptBreaker(hb.get());
        }
      }
      snapshot->host_breakers.push_back(std::move(hb));
    }
  } else if (active_) {
    for (const auto& h : hosts->hosts) {
      h->adoptBreaker(nullptr);
    }
  }
  HostSetConstSharedPtr previous;
  {
    std::lock_guard<std::mutex> lock(hosts_mutex_);
    previous = snapshot_ ? snapshot_->hosts : nullptr;
    snapshot_ = std::move(snapshot);
  }
  if (previous) {
    for (const auto& h : previous->hosts) {
      if (!hosts->index.contains(h.get())) {
        h->removed.store(true, std::memory_order_relaxed);
      }
    }
  }
  if (spec_.outlier_detection) {
    // NOTE: the detector addresses hosts by index, so a changed set gets a fresh detector:
    // consecutive counters and ejection multipliers restart, while hosts ejected now stay
    // ejected until their ejected_until (onOutlierTick ends them). Host sets change rarely
    // (DNS), so losing the multipliers then is an accepted approximation.
    std::lock_guard<std::mutex> lock(outlier_mutex_);
    outlier_ = std::make_unique<policies::OutlierDetector>(outlierOptions(*spec_.outlier_detection),
                                                           hosts->hosts.size());
    outlier_hosts_ = hosts;
    if (next_outlier_interval_ == std::chrono::steady_clock::time_point{}) {
      next_outlier_interval_ = std::chrono::steady_clock::now() + spec_.outlier_detection->interval;
    }
  }
}

void Upstream::activate() {
  active_ = true;
  auto snapshot = lbSnapshot();
  if (!snapshot) {
    return;
  }
  for (size_t i = 0; i < snapshot->hosts->hosts.size(); ++i) {
    Host& host = *snapshot->hosts->hosts[i];
    if (i >= snapshot->host_breakers.size()) {
      host.adoptBreaker(nullptr);
      continue;
    }
    HostBreaker& hb = *snapshot->host_breakers[i];
    host.adoptBreaker(&hb);
    if (hb.breaker().state() == policies::BreakerState::Open && !breakerDryRun()) {
      host.setBreakerOpen(&hb, true);
      next_breaker_release_nanos_.store(0, std::memory_order_release);
    }
  }
}

bool Upstream::tryAcquireConnection() {
  if (tryIncrementBelow(connections_active_, spec_.connection_pool.max_connections)) {
    return true;
  }
  countOverflow(OverflowLimit::Connections);
  return false;
}

void Upstream::releaseConnection() { connections_active_.fetch_sub(1, std::memory_order_acq_rel); }

bool Upstream::tryAcquirePending() {
  if (tryIncrementBelow(pending_active_, spec_.connection_pool.max_pending_requests)) {
    return true;
  }
  countOverflow(OverflowLimit::Pending);
  return false;
}

void Upstream::releasePending() { pending_active_.fetch_sub(1, std::memory_order_acq_rel); }

void Upstream::countOverflow(OverflowLimit limit) {
  overflow_total.fetch_add(1, std::memory_order_relaxed);
  if (stats_) {
    stats_->overflow(limit);
  }
}

RetryPermitPtr Upstream::tryAcquireRetry() {
  if (tryIncrementBelow(retries_active_, spec_.connection_pool.max_retries)) {
    return std::make_unique<RetryPermit>(retries_active_);
  }
  countOverflow(OverflowLimit::Retries);
  return nullptr;
}

std::variant<AttemptPermitPtr, AdmitRejection> Upstream::admitAttempt(
    std::chrono::steady_clock::time_point now) {
  if (!tryIncrementBelow(attempts_active_, spec_.connection_pool.max_requests)) {
    countOverflow(OverflowLimit::Requests);
    return AdmitRejection{AdmitRejection::Reason::Overflow, std::chrono::milliseconds(0)};
  }
  auto permit =
      std::make_unique<UpstreamAttemptPermit>(attempts_active_, requests_total_, *this, now);
  if (breaker_) {
    auto breaker_permit = breaker_->tryAcquire(now);
    if (!breaker_permit && breakerDryRun()) {
      // Goes on without a breaker permit, as a refused attempt would feed the breaker nothing.
      if (stats_) {
        stats_->dryRun("circuit_breaker", "circuit_open");
      }
      permit->dry_run = "circuit_open";
      return AttemptPermitPtr(std::move(permit));
    }
    if (!breaker_permit) {
      if (stats_) {
        stats_->breakerRejected();
      }
      // HALF_OPEN with every probe out has no deadline: a short hint until the probes report.
      auto left = breaker_->remainingOpen(now);
      return AdmitRejection{AdmitRejection::Reason::CircuitOpen,
                            left.count() > 0 ? ceilMillis(left) : std::chrono::milliseconds(1000)};
    }
    permit->breaker_permit.emplace(std::move(*breaker_permit));
  }
  return AttemptPermitPtr(std::move(permit));
}

bool Upstream::admitHost(const LbSnapshot& snapshot, uint32_t index, AttemptPermit* permit) {
  if (index >= snapshot.host_breakers.size()) {
    return true;
  }
  // Every permit this upstream issues is an UpstreamAttemptPermit; one from another upstream
  // object (a reload in between) binds nothing here.
  auto* p = dynamic_cast<UpstreamAttemptPermit*>(permit);
  if (p == nullptr || &p->upstream != this || p->host_permit) {
    return true;
  }
  const HostBreakerSharedPtr& hb = snapshot.host_breakers[index];
  auto host_permit = hb->breaker().tryAcquire(p->admitted_at);
  if (!host_permit && breakerDryRun()) {
    if (stats_) {
      stats_->dryRun("circuit_breaker", "circuit_open");
    }
    p->dry_run = "circuit_open";
    return true;
  }
  if (!host_permit) {
    if (stats_) {
      stats_->breakerRejected();
    }
    return false;
  }
  p->host_breaker = hb;
  p->host_permit.emplace(std::move(*host_permit));
  return true;
}

void Upstream::onHostBreakerTransition(HostBreaker& hb, policies::BreakerState from,
                                       policies::BreakerState to) {
  spdlog::info("upstream {}: host {} circuit breaker {} -> {}", spec_.name, hb.host().address,
               policies::breakerStateLabel(from), policies::breakerStateLabel(to));
  if (stats_) {
    stats_->hostBreakerTransition(from, to);
  }
  if (breakerDryRun()) {
    return;  // transitions are counted and logged; the host stays in rotation
  }
  if (to == policies::BreakerState::Open) {
    hb.host().setBreakerOpen(&hb, true);
    // The next pick (or tick) works out when this one may be released.
    next_breaker_release_nanos_.store(0, std::memory_order_release);
  } else if (to == policies::BreakerState::Closed) {
    hb.host().setBreakerOpen(&hb, false);
  }
}

void Upstream::releaseDueHostBreakers(std::chrono::steady_clock::time_point now) {
  if (policies::toNanos(now) < next_breaker_release_nanos_.load(std::memory_order_acquire)) {
    return;
  }
  std::unique_lock<std::mutex> lock(release_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) {
    return;  // another thread is at it
  }
  auto snapshot = lbSnapshot();
  if (!snapshot) {
    return;
  }
  // Reset first: a breaker that opens during the scan stores 0 after this and forces a look.
  next_breaker_release_nanos_.store(INT64_MAX, std::memory_order_release);
  int64_t next = INT64_MAX;
  for (const auto& hb : snapshot->host_breakers) {
    Host& host = hb->host();
    if (!host.breakerOpen()) {
      continue;
    }
    auto left = hb->breaker().remainingOpen(now);
    if (left.count() <= 0) {
      // Pickable again: the breaker moves to HALF_OPEN at the next attempt picked for it.
      host.setBreakerOpen(hb.get(), false);
    } else {
      next = std::min(next, policies::toNanos(policies::saturatingAdd(now, left)));
    }
  }
  int64_t current = next_breaker_release_nanos_.load(std::memory_order_relaxed);
  while (next < current && !next_breaker_release_nanos_.compare_exchange_weak(
                               current, next, std::memory_order_acq_rel)) {
  }
}

void Upstream::onAttemptComplete(Host& host, const policies::AttemptResult& result,
                                 std::chrono::nanoseconds latency, AttemptPermitPtr permit,
                                 std::chrono::steady_clock::time_point now) {
  const policies::Outcome outcome = policies::classify(result);
  if (policies::isFailure(outcome)) {
    host.errors_total.fetch_add(1, std::memory_order_relaxed);
  }
  // PEAK_EWMA: a response (or a per-try timeout) is a latency sample. A failure without a
  // response counts as a connect timeout's worth, so a host that refuses fast never looks fast.
  std::chrono::nanoseconds sample = latency;
  if (result.http_status == 0 && outcome != policies::Outcome::PerTryTimeout &&
      policies::isFailure(outcome)) {
    sample = std::max<std::chrono::nanoseconds>(latency, spec_.connection_pool.connect_timeout);
  }
  policies::lb::recordLatency(*host.lb_state, sample, now, lb_config_.ewma_decay);
  if (permit) {
    auto* p = static_cast<UpstreamAttemptPermit*>(permit.get());
    p->endOnHost(now);
    if (breaker_ && p->breaker_permit) {
      breaker_->onResult(std::move(*p->breaker_permit), outcome, latency, now);
      p->breaker_permit.reset();
    }
    if (p->host_breaker && p->host_permit && &p->host_breaker->host() == &host) {
      p->host_breaker->breaker().onResult(std::move(*p->host_permit), outcome, latency, now);
      p->host_permit.reset();
    }
  }
  permit.reset();
  recordOutlier(host, outcome, result.pushback, now);
}

void Upstream::onAttemptCancelled(Host& host, std::chrono::nanoseconds elapsed,
                                  AttemptPermitPtr permit,
                                  std::chrono::steady_clock::time_point now) const {
  policies::lb::recordLatencyAtLeast(*host.lb_state, elapsed, now, lb_config_.ewma_decay);
  if (permit) {
    static_cast<UpstreamAttemptPermit*>(permit.get())->endOnHost(now);
  }
  permit.reset();
}

void Upstream::recordOutlier(Host& host, policies::Outcome outcome, bool pushback,
                             std::chrono::steady_clock::time_point now) {
  if (!spec_.outlier_detection) {
    return;
  }
  std::lock_guard<std::mutex> lock(outlier_mutex_);
  if (!outlier_ || !outlier_hosts_) {
    return;
  }
  auto it = outlier_hosts_->index.find(&host);
  if (it == outlier_hosts_->index.end()) {
    return;  // removed from the set meanwhile
  }
  auto event = outlier_->onResult(it->second, outcome, now, pushback);
  if (event) {
    applyOutlierEventLocked(*outlier_hosts_, *event);
  }
}

void Upstream::applyOutlierEventLocked(const HostSet& set, const policies::OutlierEvent& event) {
  if (event.host >= set.hosts.size()) {
    return;
  }
  Host& host = *set.hosts[event.host];
  switch (event.kind) {
    case policies::OutlierEvent::Kind::Ejected:
      if (spec_.outlier_detection && spec_.outlier_detection->mode == "dryRun") {
        // The detector keeps it as ejected (its maxEjectionPercent and its un-ejection follow
        // enforcement); the host stays in rotation.
        spdlog::info("upstream {}: host {} would be ejected ({}; outlierDetection dryRun)",
                     spec_.name, host.address, policies::ejectionReasonLabel(event.reason));
        if (stats_) {
          stats_->dryRun("outlier_detection", "ejected");
        }
        break;
      }
      host.ejected_until_nanos.store(policies::toNanos(event.until), std::memory_order_relaxed);
      host.times_ejected.fetch_add(1, std::memory_order_relaxed);
      host.setOutlierEjected(true);
      spdlog::warn("upstream {}: host {} ejected ({})", spec_.name, host.address,
                   policies::ejectionReasonLabel(event.reason));
      if (stats_) {
        stats_->ejection(event.reason);
      }
      break;
    case policies::OutlierEvent::Kind::Unejected:
      // The between-sweeps check in onOutlierTick may have brought it back already; the
      // detector then still reports the same ejection's end at its next sweep.
      if (!host.outlierEjected()) {
        break;
      }
      host.ejected_until_nanos.store(0, std::memory_order_relaxed);
      host.setOutlierEjected(false);
      spdlog::info("upstream {}: host {} back from ejection", spec_.name, host.address);
      break;
    case policies::OutlierEvent::Kind::EjectionSkipped: break;
  }
  updateEjectedGaugeLocked(set);
}

void Upstream::updateEjectedGaugeLocked(const HostSet& set) const {
  if (!stats_) {
    return;
  }
  size_t ejected = 0;
  for (const auto& h : set.hosts) {
    ejected += h->outlierEjected() ? 1 : 0;
  }
  stats_->ejectedEndpoints(ejected);
}

void Upstream::onOutlierTick(std::chrono::steady_clock::time_point now) {
  // Open host breakers are released here too, so an idle upstream's /upstreams and gauges
  // show hosts back in rotation without waiting for a pick.
  if (perHostBreakers()) {
    releaseDueHostBreakers(now);
  }
  if (!spec_.outlier_detection) {
    return;
  }
  std::lock_guard<std::mutex> lock(outlier_mutex_);
  if (!outlier_ || !outlier_hosts_) {
    return;
  }
  if (now >= next_outlier_interval_) {
    next_outlier_interval_ = now + spec_.outlier_detection->interval;
    for (const auto& event : outlier_->onInterval(now)) {
      applyOutlierEventLocked(*outlier_hosts_, event);
    }
  }
  // Ejections end on time even between sweeps, and ejections carried over from an older host
  // set (which the current detector does not know) end at their own deadline.
  for (size_t i = 0; i < outlier_hosts_->hosts.size(); ++i) {
    Host& host = *outlier_hosts_->hosts[i];
    if (!host.outlierEjected()) {
      continue;
    }
    int64_t until = host.ejected_until_nanos.load(std::memory_order_relaxed);
    if (policies::toNanos(now) >= until && !outlier_->isEjected(i, now)) {
      applyOutlierEventLocked(
          *outlier_hosts_,
          policies::OutlierEvent{policies::OutlierEvent::Kind::Unejected, i, {}, {}});
    }
  }
}

void Upstream::onActiveHealthCheckSuccess(Host& host, std::chrono::steady_clock::time_point now) {
  if (!spec_.outlier_detection) {
    return;
  }
  std::lock_guard<std::mutex> lock(outlier_mutex_);
  if (!host.outlierEjected()) {
    return;
  }
  // A host that answers its health checks is taken back at once rather than after the whole
  // (possibly multiplied) ejection time: passive detection ejects it again if it still fails,
  // so the detector must forget the ejection too (it would otherwise ignore the host's results
  // and count it towards maxEjectionPercent until the original time). A host ejected under an
  // older host set is unknown to the current detector; only its atomics need clearing.
  if (outlier_ && outlier_hosts_) {
    auto it = outlier_hosts_->index.find(&host);
    if (it != outlier_hosts_->index.end()) {
      outlier_->uneject(it->second, now);
    }
  }
  host.ejected_until_nanos.store(0, std::memory_order_relaxed);
  host.setOutlierEjected(false);
  host.health_check_unejections.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("upstream {}: host {} back from ejection (active health check passed)", spec_.name,
               host.address);
  if (stats_) {
    stats_->unejection("active_health_check");
  }
  if (outlier_hosts_) {
    updateEjectedGaugeLocked(*outlier_hosts_);
  }
}

size_t Upstream::healthyHostCount() const {
  auto set = hosts();
  if (!set) {
    return 0;
  }
  return static_cast<size_t>(std::count_if(set->hosts.begin(), set->hosts.end(),
                                           [](const HostSharedPtr& h) { return h->available(); }));
}

std::optional<policies::BreakerState> Upstream::breakerState() const {
  if (!breaker_) {
    return std::nullopt;
  }
  return breaker_->state();
}

void Upstream::refreshGauges() const {
  if (!stats_) {
    return;
  }
  auto set = hosts();
  size_t healthy = 0;
  size_t unhealthy = 0;
  size_t ejected = 0;
  size_t circuit_open = 0;
  if (set) {
    for (const auto& h : set->hosts) {
      if (h->outlierEjected()) {
        ++ejected;
      } else if (h->breakerOpen()) {
        ++circuit_open;
      } else if (!h->healthy()) {
        ++unhealthy;
      } else {
        ++healthy;
      }
    }
  }
  stats_->endpoints(healthy, unhealthy, ejected, 0, circuit_open);
  stats_->ejectedEndpoints(ejected);
  if (perHostBreakers()) {
    std::array<size_t, 3> states{};
    if (auto snapshot = lbSnapshot()) {
      for (const auto& hb : snapshot->host_breakers) {
        ++states[static_cast<size_t>(hb->breaker().state())];
      }
    }
    stats_->hostBreakerStates(states[0], states[1], states[2]);
  }
}

nlohmann::json Upstream::toJson(std::chrono::steady_clock::time_point now) const {
  nlohmann::json hosts = nlohmann::json::array();
  auto snapshot = lbSnapshot();
  std::array<size_t, 3> host_states{};
  uint64_t host_rejected = 0;
  if (snapshot) {
    const auto& set = snapshot->hosts;
    for (size_t i = 0; i < set->hosts.size(); ++i) {
      const auto& h = set->hosts[i];
      std::string health = h->outlierEjected() ? "ejected"
                           : h->breakerOpen()  ? "circuit_open"
                           : h->healthy()      ? "healthy"
                                               : "unhealthy";
      nlohmann::json host = {
          {"address", h->address},
          {"weight", h->weight},
          {"health", health},
          {"healthy", h->healthy()},
          {"ejected", h->outlierEjected()},
          {"timesEjected", h->times_ejected.load()},
          {"healthCheckUnejections", h->health_check_unejections.load()},
          {"activeRequests", h->active_requests.load()},
          {"requestsTotal", h->requests_total.load()},
          {"errorsTotal", h->errors_total.load()},
          {"connectFailuresTotal", h->connect_failures_total.load()},
          {"connectionsActive", h->connections_active.load()},
          {"latencyEwmaMs", std::chrono::duration<double, std::milli>(
                                policies::lb::ewmaLatency(*h->lb_state, now, lb_config_.ewma_decay,
                                                          lb_config_.ewma_default_rtt))
                                .count()}};
      if (h->outlierEjected()) {
        auto left = policies::fromNanos(h->ejected_until_nanos.load()) - now;
        host["ejectedForMs"] = std::max<int64_t>(0, ceilMillis(left).count());
      }
      if (i < snapshot->host_breakers.size()) {
        const auto& breaker = snapshot->host_breakers[i]->breaker();
        auto state = breaker.state();
        ++host_states[static_cast<size_t>(state)];
        host_rejected += breaker.rejectedTotal();
        host["circuitBreaker"] = breakerJson(breaker, now);
      }
      hosts.push_back(std::move(host));
    }
  }
  nlohmann::json out = {{"name", spec_.name},
                        {"loadBalancer", lbPolicyName(spec_.load_balancer.policy)},
                        {"activeRequests", activeRequests()},
                        {"requestsTotal", requestsTotal()},
                        {"connectionsActive", activeConnections()},
                        {"pendingRequests", pending_active_.load()},
                        {"retriesActive", retries_active_.load()},
                        {"overflowTotal", overflow_total.load()},
                        {"healthyHosts", healthyHostCount()},
                        {"hosts", hosts}};
  if (breaker_) {
    out["circuitBreaker"] = breakerJson(*breaker_, now);
    out["circuitBreaker"]["perHost"] = false;
  } else if (perHostBreakers()) {
    // The state of each host's breaker is on the host; here how many are in each state.
    out["circuitBreaker"] = {
        {"perHost", true},
        {"hosts",
         {{"closed", host_states[static_cast<size_t>(policies::BreakerState::Closed)]},
          {"open", host_states[static_cast<size_t>(policies::BreakerState::Open)]},
          {"half_open", host_states[static_cast<size_t>(policies::BreakerState::HalfOpen)]}}},
        {"rejectedTotal", host_rejected}};
  }
  return out;
}

HostSetConstSharedPtr buildHostSet(const std::vector<std::pair<std::string, uint32_t>>& addresses,
                                   const HostSetConstSharedPtr& previous) {
  auto set = std::make_shared<HostSet>();
  std::set<std::string> seen;
  for (const auto& [address, weight] : addresses) {
    if (!seen.insert(address).second) {
      continue;
    }
    HostSharedPtr host;
    if (previous) {
      for (const auto& h : previous->hosts) {
        if (h->address == address && h->weight == std::max<uint32_t>(1, weight)) {
          host = h;
          break;
        }
      }
    }
    if (!host) {
      host = std::make_shared<Host>(address, weight);
    }
    host->removed.store(false, std::memory_order_relaxed);
    set->hosts.push_back(std::move(host));
  }
  set->buildIndex();
  return set;
}

HostSetConstSharedPtr buildStaticHostSet(const config::UpstreamSpec& spec) {
  std::vector<std::pair<std::string, uint32_t>> addresses;
  for (const auto& ep : spec.static_endpoints) {
    addresses.emplace_back(ep.address, ep.weight);
  }
  return buildHostSet(addresses, nullptr);
}

size_t tlsFilesDigest(const config::UpstreamSpec& spec) {
  if (!spec.tls) {
    return 0;
  }
  size_t digest = 0;
  for (const std::string* path :
       {&spec.tls->ca_certificates, &spec.tls->client_certificate, &spec.tls->private_key}) {
    std::ifstream in(*path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    digest = digest * 31 + std::hash<std::string>{}(bytes);
  }
  return digest;
}

bool sameUpstream(const config::UpstreamSpec& a, const config::UpstreamSpec& b) {
  // Every field counts (breaker, outlier, health check, DNS...): compare the effective JSON,
  // which names each field once, instead of a hand-kept list that silently misses new ones.
  auto json = [](const config::UpstreamSpec& u) {
    config::ProxyConfigSpec one;
    one.upstreams.push_back(u);
    return config::toJson(one)["upstreams"];
  };
  return json(a) == json(b);
}

}  // namespace bulwark::upstream
