#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bulwark::examples::ranking {

/**
 * Results of a load run: latency samples, outcome counts by gRPC status name and by the
 * x-replica-id that answered. Percentiles use the nearest-rank method over all samples.
 * Thread: one report per client thread, merged on main with merge().
 */
class LoadReport {
public:
  void record(std::chrono::nanoseconds latency, const std::string& status,
              const std::string& replica, bool degraded);
  void merge(const LoadReport& other);
  void setElapsed(std::chrono::nanoseconds elapsed) { elapsed_ = elapsed; }

  std::uint64_t calls() const { return latencies_ns_.size(); }
  std::uint64_t count(const std::string& status) const;
  /** @param q in (0, 1]; @return the latency in ms, 0 without samples. */
  double percentileMs(double q) const;
  double rps() const;
  const std::map<std::string, std::uint64_t>& byStatus() const { return by_status_; }
  const std::map<std::string, std::uint64_t>& byReplica() const { return by_replica_; }
  std::uint64_t degraded() const { return degraded_; }

  std::string toText() const;
  std::string toJson() const;

private:
  mutable std::vector<std::int64_t> latencies_ns_;
  mutable bool sorted_ = true;
  std::map<std::string, std::uint64_t> by_status_;
  std::map<std::string, std::uint64_t> by_replica_;
  std::uint64_t degraded_ = 0;
  std::chrono::nanoseconds elapsed_{0};
};

}  // namespace bulwark::examples::ranking
