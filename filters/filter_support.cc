#include "filters/filter_support.h"

#include <chrono>

#include "proxy/stats/stats.h"

namespace bulwark::filters {

std::string_view peerIp(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    return close == std::string_view::npos ? address.substr(1) : address.substr(1, close - 1);
  }
  const size_t colon = address.rfind(':');
  // More than one colon without brackets is a bare IPv6 address (no port).
  if (colon == std::string_view::npos || address.find(':') != colon) {
    return address;
  }
  return address.substr(0, colon);
}

std::string retryAfterValue(policies::Duration d) {
  const auto ns = d.count();
  int64_t seconds = ns <= 0 ? 0 : (ns + 999'999'999) / 1'000'000'000;
  if (seconds < 1) {
    seconds = 1;
  }
  return std::to_string(seconds);
}

std::string pushbackMillisValue(policies::Duration d) {
  const auto ns = d.count();
  const int64_t ms = ns <= 0 ? 0 : (ns + 999'999) / 1'000'000;
  return std::to_string(ms);
}

prometheus::Counter& dryRunCounter(prometheus::Registry& registry, const std::string& route,
                                   const std::string& policy, const std::string& decision) {
  return counterFamily(registry, stats::kDryRunDecisionsName, stats::kDryRunDecisionsHelp)
      .Add({{"route", route}, {"policy", policy}, {"decision", decision}});
}

void recordDryRun(http::FilterCallbacks& callbacks, prometheus::Counter& counter,
                  std::string_view decision) {
  counter.Increment();
  callbacks.recordDryRun(decision);
}

prometheus::Family<prometheus::Counter>& counterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& gaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace bulwark::filters
