#include "proxy/upstream/upstream_manager.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace bulwark::upstream {

namespace {

/** "ip:port", or "[ip]:port" for IPv6. */
std::string joinHostPort(const std::string& ip, uint16_t port) {
  if (ip.find(':') != std::string::npos) {
    return "[" + ip + "]:" + std::to_string(port);
  }
  return ip + ":" + std::to_string(port);
}

std::vector<std::pair<std::string, uint32_t>> addressesOf(const HostSetConstSharedPtr& set) {
  std::vector<std::pair<std::string, uint32_t>> out;
  if (set) {
    for (const auto& h : set->hosts) {
      out.emplace_back(h->address, h->weight);
    }
  }
  return out;
}

}  // namespace

/**
 * Keeps one DNS upstream's host set in step with its name. Thread: main.
 */
class UpstreamManager::DnsDiscovery {
public:
  DnsDiscovery(UpstreamManager& manager, Managed& managed)
      : manager_(manager),
        upstream_(managed.upstream),
        checker_(managed.health_checker.get()),
        spec_(*managed.upstream->spec().dns) {
    timer_ = manager_.dispatcher_.createTimer([this] { refresh(); });
    timer_->enableTimer(std::chrono::milliseconds(0));
  }

private:
  void refresh() {
    std::weak_ptr<bool> alive = alive_;
    manager_.resolver().resolve(spec_.name, [this, alive](Result<DnsAnswer> answer) {
      if (alive.expired()) {
        return;
      }
      onAnswer(std::move(answer));
    });
  }

  void onAnswer(Result<DnsAnswer> answer) {
    std::chrono::milliseconds next = spec_.refresh_interval;
    if (!answer) {
      // Keep the last good set: a resolver hiccup must not empty a healthy upstream.
      spdlog::warn("upstream {}: DNS lookup of {} failed ({}); keeping {} hosts", upstream_->name(),
                   spec_.name, answer.error(),
                   upstream_->hosts() ? upstream_->hosts()->hosts.size() : 0);
    } else {
      std::vector<std::pair<std::string, uint32_t>> addresses;
      for (const auto& ip : answer->addresses) {
        addresses.emplace_back(joinHostPort(ip, spec_.port), 1);
      }
      std::sort(addresses.begin(), addresses.end());
      auto current = addressesOf(upstream_->hosts());
      std::sort(current.begin(), current.end());
      if (addresses != current) {
        spdlog::info("upstream {}: DNS {} -> {} hosts (was {})", upstream_->name(), spec_.name,
                     addresses.size(), current.size());
        upstream_->setHosts(buildHostSet(addresses, upstream_->hosts()));
        if (checker_ != nullptr) {
          checker_->syncHosts();
        }
      }
      // Honour the record TTL when shorter than refreshInterval (at least 1 s, so a TTL of 0
      // does not turn into a query loop).
      next = std::min<std::chrono::milliseconds>(
          next, std::max<std::chrono::milliseconds>(answer->ttl, std::chrono::seconds(1)));
    }
    timer_->enableTimer(next);
  }

  UpstreamManager& manager_;
  UpstreamSharedPtr upstream_;
  HealthChecker* checker_;
  config::DnsSpec spec_;
  event::TimerPtr timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

UpstreamManager::UpstreamManager(event::Dispatcher& dispatcher, prometheus::Registry& registry)
    : dispatcher_(dispatcher), registry_(registry) {}

UpstreamManager::~UpstreamManager() {
  live_.clear();  // checkers and DNS refreshers before the resolver
  resolver_.reset();
}

UpstreamStatsSharedPtr UpstreamManager::statsFor(const std::string& name) {
  auto it = stats_.find(name);
  if (it != stats_.end()) {
    return it->second;
  }
  auto stats = std::make_shared<UpstreamStats>(registry_, name);
  stats_.emplace(name, stats);
  return stats;
}

DnsResolver& UpstreamManager::resolver() {
  if (!resolver_) {
    resolver_ = std::make_unique<DnsResolver>(dispatcher_);
  }
  return *resolver_;
}

std::map<std::string, UpstreamSharedPtr> UpstreamManager::prepare(
    const std::vector<config::UpstreamSpec>& specs) {
  std::map<std::string, UpstreamSharedPtr> out;
  for (const auto& spec : specs) {
    auto it = live_.find(spec.name);
    if (it != live_.end() && sameUpstream(it->second.upstream->spec(), spec) &&
        it->second.upstream->tlsFilesDigest() == tlsFilesDigest(spec)) {
      // Unchanged: keep live state (connections, counters, breaker) across the reload.
      out[spec.name] = it->second.upstream;
      continue;
    }
    HostSetConstSharedPtr previous = it != live_.end() ? it->second.upstream->hosts() : nullptr;
    HostSetConstSharedPtr hosts;
    if (spec.dns) {
      // Until the first answer, the old upstream's hosts when it resolved the same name and port.
      const auto& old = it != live_.end() ? it->second.upstream->spec().dns : std::nullopt;
      if (old && old->name == spec.dns->name && old->port == spec.dns->port) {
        hosts = buildHostSet(addressesOf(previous), previous);
      } else {
        hosts = std::make_shared<HostSet>();
      }
    } else {
      std::vector<std::pair<std::string, uint32_t>> addresses;
      for (const auto& ep : spec.static_endpoints) {
        addresses.emplace_back(ep.address, ep.weight);
      }
      hosts = buildHostSet(addresses, previous);
    }
    out[spec.name] = std::make_shared<Upstream>(spec, hosts, statsFor(spec.name));
  }
  return out;
}

void UpstreamManager::start(Managed& managed) {
  const auto& spec = managed.upstream->spec();
  managed.upstream->activate();
  if (spec.health_check) {
    managed.health_checker = std::make_unique<HealthChecker>(dispatcher_, managed.upstream);
    managed.health_checker->syncHosts();
  }
  if (spec.outlier_detection || managed.upstream->perHostBreakers()) {
    // Ejections end on time between interval sweeps, and open host breakers are released
    // (idle upstreams too, for /upstreams and the gauges): tick at most every 250 ms.
    auto tick = std::chrono::milliseconds(250);
    if (spec.outlier_detection) {
      tick = std::min<std::chrono::milliseconds>(spec.outlier_detection->interval, tick);
    }
    auto upstream = managed.upstream;
    auto* timer_slot = &managed.outlier_timer;
    managed.outlier_timer = dispatcher_.createTimer([upstream, timer_slot, tick] {
      upstream->onOutlierTick(std::chrono::steady_clock::now());
      (*timer_slot)->enableTimer(tick);
    });
    managed.outlier_timer->enableTimer(tick);
  }
  if (spec.dns) {
    managed.dns = std::make_unique<DnsDiscovery>(*this, managed);
  }
}

void UpstreamManager::activate(const std::map<std::string, UpstreamSharedPtr>& upstreams) {
  for (auto it = live_.begin(); it != live_.end();) {
    auto next = upstreams.find(it->first);
    if (next == upstreams.end() || next->second != it->second.upstream) {
      it = live_.erase(it);  // stops its checker, DNS refresh and timers
    } else {
      ++it;
    }
  }
  for (const auto& [name, upstream] : upstreams) {
    if (live_.contains(name)) {
      continue;
    }
    auto& managed = live_[name];
    managed.upstream = upstream;
    start(managed);
  }
}

UpstreamSharedPtr UpstreamManager::find(const std::string& name) const {
  auto it = live_.find(name);
  return it == live_.end() ? nullptr : it->second.upstream;
}

void UpstreamManager::refreshGauges() const {
  for (const auto& [name, managed] : live_) {
    managed.upstream->refreshGauges();
  }
}

nlohmann::json UpstreamManager::toJson() const {
  nlohmann::json out = nlohmann::json::array();
  auto now = std::chrono::steady_clock::now();
  for (const auto& [name, managed] : live_) {
    auto json = managed.upstream->toJson(now);
    if (managed.upstream->spec().dns) {
      json["dns"] = {{"name", managed.upstream->spec().dns->name},
                     {"port", managed.upstream->spec().dns->port}};
    }
    out.push_back(std::move(json));
  }
  return out;
}

}  // namespace bulwark::upstream
