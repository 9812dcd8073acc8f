#include "examples/ranking/load_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace bulwark::examples::ranking {

void LoadReport::record(std::chrono::nanoseconds latency, const std::string& status,
                        const std::string& replica, bool degraded) {
  latencies_ns_.push_back(latency.count());
  sorted_ = false;
  ++by_status_[status];
  ++by_replica_[replica];
  degraded_ += degraded ? 1 : 0;
}

void LoadReport::merge(const LoadReport& other) {
  latencies_ns_.insert(latencies_ns_.end(), other.latencies_ns_.begin(), other.latencies_ns_.end());
  sorted_ = false;
  for (const auto& [k, v] : other.by_status_) {
    by_status_[k] += v;
  }
  for (const auto& [k, v] : other.by_replica_) {
    by_replica_[k] += v;
  }
  degraded_ += other.degraded_;
  elapsed_ = std::max(elapsed_, other.elapsed_);
}

std::uint64_t LoadReport::count(const std::string& status) const {
  auto it = by_status_.find(status);
  return it == by_status_.end() ? 0 : it->second;
}

double LoadReport::percentileMs(double q) const {
  if (latencies_ns_.empty()) {
    return 0;
  }
  if (!sorted_) {
    std::sort(latencies_ns_.begin(), latencies_ns_.end());
    sorted_ = true;
  }
  // Nearest rank: the smallest sample with at least q of all samples at or below it.
  const auto n = latencies_ns_.size();
  std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(n)));
  rank = std::clamp<std::size_t>(rank, 1, n);
  return static_cast<double>(latencies_ns_[rank - 1]) / 1e6;
}

double LoadReport::rps() const {
  if (elapsed_.count() <= 0) {
    return 0;
  }
  return static_cast<double>(calls()) / std::chrono::duration<double>(elapsed_).count();
}

std::string LoadReport::toText() const {
  std::string out = fmt::format(
      "calls={} ok={} elapsed={:.3f}s rps={:.1f}\nlatency_ms p50={:.3f} p90={:.3f} p99={:.3f} "
      "max={:.3f}\n",
      calls(), count("OK"), std::chrono::duration<double>(elapsed_).count(), rps(),
      percentileMs(0.5), percentileMs(0.9), percentileMs(0.99), percentileMs(1.0));
  out += "status:";
  for (const auto& [k, v] : by_status_) {
    out += fmt::format(" {}={}", k, v);
  }
  out += "\nreplicas:";
  for (const auto& [k, v] : by_replica_) {
    out += fmt::format(" {}={}", k, v);
  }
  out += fmt::format("\ndegraded={}\n", degraded_);
  return out;
}

std::string LoadReport::toJson() const {
  nlohmann::json j;
  j["calls"] = calls();
  j["ok"] = count("OK");
  j["errors"] = calls() - count("OK");
  j["elapsed_s"] = std::chrono::duration<double>(elapsed_).count();
  j["rps"] = rps();
  j["latency_ms"] = {{"p50", percentileMs(0.5)},
                     {"p90", percentileMs(0.9)},
                     {"p99", percentileMs(0.99)},
                     {"max", percentileMs(1.0)}};
  j["status"] = by_status_;
  j["replicas"] = by_replica_;
  j["degraded"] = degraded_;
  return j.dump();
}

}  // namespace bulwark::examples::ranking
