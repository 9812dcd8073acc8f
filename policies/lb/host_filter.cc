#include "policies/lb/host_filter.h"

#include <algorithm>

namespace bulwark::policies::lb {
namespace {

bool contains(std::span<const uint32_t> attempted, uint32_t i) {
  return std::find(attempted.begin(), attempted.end(), i) != attempted.end();
}

}  // namespace

void HostFilter::compute(const LbHostSet& hosts, const LbContext& ctx) {
  const auto n = static_cast<uint32_t>(hosts.size());
  mask_.assign(n, 0);
  uint32_t available = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (hosts[i].state->available()) {
      mask_[i] = 1;
      ++available;
    }
  }
  panic_ = n > 0 && (available == 0 || static_cast<uint64_t>(available) * 100 <
                                           static_cast<uint64_t>(panic_threshold_percent_) * n);
  if (panic_) {
    std::fill(mask_.begin(), mask_.end(), 1);
    available = n;
  }

  if (ctx.ignore_previous && !ctx.attempted.empty()) {
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (mask_[i] != 0 && !contains(ctx.attempted, i)) {
        ++fresh;
      }
    }
    // Only exclude the attempted hosts when something else is left to try.
    if (fresh > 0) {
      for (uint32_t i = 0; i < n; ++i) {
        if (mask_[i] != 0 && contains(ctx.attempted, i)) {
          mask_[i] = 0;
        }
      }
      available = fresh;
    }
  }

  allowed_count_ = available;
  allows_all_ = available == n;
  allowed_.clear();
  if (!allows_all_) {
    for (uint32_t i = 0; i < n; ++i) {
      if (mask_[i] != 0) {
        allowed_.push_back(i);
      }
    }
  }
}

}  // namespace bulwark::policies::lb

namespace bulwark::policies::lb {

CumulativeWeights::CumulativeWeights(const LbHostSet& hosts) {
  cumulative_.reserve(hosts.size());
  uint64_t sum = 0;
  for (const auto& host : hosts) {
    sum += host.weight;
    cumulative_.push_back(sum);
  }
}

uint32_t CumulativeWeights::sample(const LbHostSet& hosts, const HostFilter& filter,
                                   Random& random) const {
  if (filter.allowsAll()) {
    const uint64_t r = random.uniform(cumulative_.back());
    // First host whose cumulative weight exceeds r.
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), r);
    return static_cast<uint32_t>(it - cumulative_.begin());
  }
  const auto& allowed = filter.allowedIndices();
  uint64_t total = 0;
  for (const uint32_t i : allowed) {
    total += hosts[i].weight;
  }
  uint64_t r = random.uniform(total);
  for (const uint32_t i : allowed) {
    if (r < hosts[i].weight) {
      return i;
    }
    r -= hosts[i].weight;
  }
  return allowed.back();  // Unreachable: r < total.
}

void CumulativeWeights::sampleDistinct(const LbHostSet& hosts, const HostFilter& filter,
                                       Random& random, uint32_t count, std::vector<uint32_t>& out,
                                       std::vector<uint32_t>& scratch) const {
  out.clear();
  const uint32_t n = std::min(count, filter.allowedCount());
  if (n == 0) {
    return;
  }
  out.push_back(sample(hosts, filter, random));
  // Kept sorted by index: sampleExcluding() skips the excluded ranges in index order.
  scratch.assign(1, out.front());
  while (out.size() < n) {
    const uint32_t next = sampleExcluding(hosts, filter, random, scratch);
    out.push_back(next);
    scratch.insert(std::upper_bound(scratch.begin(), scratch.end(), next), next);
  }
}

uint32_t CumulativeWeights::sampleExcluding(const LbHostSet& hosts, const HostFilter& filter,
                                            Random& random,
                                            const std::vector<uint32_t>& sorted_excluded) const {
  uint64_t excluded_weight = 0;
  for (const uint32_t i : sorted_excluded) {
    excluded_weight += hosts[i].weight;
  }
  if (filter.allowsAll()) {
    // Draw in the total minus the excluded weights, then step over each excluded host's range
    // (in index order) that lies at or before the draw.
    uint64_t r = random.uniform(cumulative_.back() - excluded_weight);
    for (const uint32_t i : sorted_excluded) {
      const uint64_t start = cumulative_[i] - hosts[i].weight;
      if (start > r) {
        break;
      }
      r += hosts[i].weight;
    }
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), r);
    return static_cast<uint32_t>(it - cumulative_.begin());
  }
  uint64_t total = 0;
  for (const uint32_t i : filter.allowedIndices()) {
    total += hosts[i].weight;
  }
  uint64_t r = random.uniform(total - excluded_weight);
  uint32_t last = 0;
  for (const uint32_t i : filter.allowedIndices()) {
    if (std::binary_search(sorted_excluded.begin(), sorted_excluded.end(), i)) {
      continue;
    }
    last = i;
    if (r < hosts[i].weight) {
      return i;
    }
    r -= hosts[i].weight;
  }
  return last;  // Unreachable: r < the remaining weight.
}

}  // namespace bulwark::policies::lb
