#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "proxy/config/spec.h"
#include "proxy/event/dispatcher.h"
#include "proxy/upstream/dns_resolver.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/upstream/upstream.h"
#include "proxy/upstream/upstream_stats.h"

namespace bulwark::upstream {

/**
 * The upstreams' main-thread machinery: reconciles upstreams across
 * reloads, and owns per upstream the active health checker, the outlier-detection timer and DNS
 * discovery (refresh every min(refreshInterval, TTL), several addresses per name, the last good
 * set kept when a lookup fails, unchanged addresses keep their Host object).
 *
 * Reload protocol, two phases so that a rejected config changes nothing: prepare() returns the
 * upstreams for a config (the live object when its spec is unchanged, else a new one seeded
 * with the old one's hosts, so health, ejection and counters survive), and activate() makes a
 * prepared set live once the whole snapshot was accepted.
 * Thread: main.
 */
class UpstreamManager {
public:
  /** registry: where upstream metrics are exported; must outlive the manager. */
  UpstreamManager(event::Dispatcher& dispatcher, prometheus::Registry& registry);
  ~UpstreamManager();
  UpstreamManager(const UpstreamManager&) = delete;
  UpstreamManager& operator=(const UpstreamManager&) = delete;

  /** The upstreams for `specs`, by name. Starts nothing. */
  std::map<std::string, UpstreamSharedPtr> prepare(const std::vector<config::UpstreamSpec>& specs);
  /**
   * Makes `upstreams` (from prepare()) the live set: starts the timers of new upstreams and
   * stops those of upstreams no longer live.
   */
  void activate(const std::map<std::string, UpstreamSharedPtr>& upstreams);

  /** The live upstream called `name`, or null. */
  UpstreamSharedPtr find(const std::string& name) const;
  /** Scrape time: endpoint gauges by health. */
  void refreshGauges() const;
  /** /upstreams: every live upstream with hosts, health, ejection and breaker state. */
  nlohmann::json toJson() const;

private:
  class DnsDiscovery;
  struct Managed {
    UpstreamSharedPtr upstream;
    std::unique_ptr<HealthChecker> health_checker;
    std::unique_ptr<DnsDiscovery> dns;
    event::TimerPtr outlier_timer;
  };

  UpstreamStatsSharedPtr statsFor(const std::string& name);
  DnsResolver& resolver();
  void start(Managed& managed);

  event::Dispatcher& dispatcher_;
  prometheus::Registry& registry_;
  std::map<std::string, UpstreamStatsSharedPtr> stats_;
  std::unique_ptr<DnsResolver> resolver_;  // created on first DNS upstream
  std::map<std::string, Managed> live_;
};

}  // namespace bulwark::upstream
