#include "policies/load_shed/admission_policy.h"

#include <algorithm>

namespace bulwark::policies {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

}  // namespace

std::optional<Priority> parsePriority(std::string_view value) {
  value = trim(value);
  if (equalsIgnoreCase(value, "critical")) {
    return Priority::Critical;
  }
  if (equalsIgnoreCase(value, "default")) {
    return Priority::Default;
  }
  if (equalsIgnoreCase(value, "sheddable")) {
    return Priority::Sheddable;
  }
  return std::nullopt;
}

std::string_view priorityLabel(Priority priority) {
  switch (priority) {
    case Priority::Critical: return "critical";
    case Priority::Default: return "default";
    case Priority::Sheddable: return "sheddable";
  }
  return "default";
}

uint32_t admissionBound(Priority priority, uint32_t limit) {
  switch (priority) {
    case Priority::Sheddable:
      return std::max<uint32_t>(1, static_cast<uint32_t>(static_cast<uint64_t>(limit) * 80 / 100));
    case Priority::Default: return limit;
    case Priority::Critical: {
      const uint64_t bound = static_cast<uint64_t>(limit) + std::max<uint32_t>(1, limit / 10);
      return static_cast<uint32_t>(std::min<uint64_t>(bound, UINT32_MAX));
    }
  }
  return limit;
}

std::optional<ConcurrencyLimit::Permit> PriorityAdmission::tryAdmit(Priority priority,
                                                                    uint32_t limit) {
  auto permit = inflight_.tryAcquireUpTo(admissionBound(priority, limit));
  if (permit) {
    const uint32_t now_inflight = inflight_.active();
    uint32_t peak = peak_.load(std::memory_order_relaxed);
    while (now_inflight > peak &&
           !peak_.compare_exchange_weak(peak, now_inflight, std::memory_order_relaxed)) {
    }
  }
  return permit;
}

uint32_t PriorityAdmission::takePeakInflight() {
  return std::max(peak_.exchange(inflight_.active(), std::memory_order_relaxed),
                  inflight_.active());
}

}  // namespace bulwark::policies
