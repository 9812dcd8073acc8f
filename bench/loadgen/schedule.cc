#include "bench/loadgen/schedule.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace bulwark::bench {
namespace {

Result<double> parseNumber(std::string_view text, std::string_view what) {
  double value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value) || value < 0) {
    return Status::error(fmt::format("invalid {} '{}'", what, text));
  }
  return value;
}

}  // namespace

uint64_t PhaseSpec::requestCount() const {
  const double seconds = std::chrono::duration<double>(duration).count();
  // The epsilon keeps 0.1 * 30 (= 2.9999...) from losing a request to rounding.
  const double n = (rps_from + rps_to) / 2.0 * seconds;
  return n <= 0 ? 0 : static_cast<uint64_t>(std::floor(n + 1e-6));
}

std::chrono::nanoseconds PhaseSpec::offsetOf(uint64_t i) const {
  if (i == 0) {
    return std::chrono::nanoseconds(0);
  }
  const double seconds = std::chrono::duration<double>(duration).count();
  const double n = static_cast<double>(i);
  double t = 0;
  if (!isRamp() || seconds <= 0) {
    t = rps_from > 0 ? n / rps_from : 0;
  } else {
    // a t^2 + b t - n = 0 with a = (to - from) / (2 D), b = from; the form 2n / (b + sqrt(..))
    // is the stable root for both signs of a and for b == 0.
    const double a = (rps_to - rps_from) / (2.0 * seconds);
    const double b = rps_from;
    const double disc = std::max(0.0, b * b + 4.0 * a * n);
    const double denom = b + std::sqrt(disc);
    t = denom > 0 ? 2.0 * n / denom : seconds;
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(t * 1e9)));
}

Result<std::chrono::nanoseconds> parseDuration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double ns;
  };
  // Longest suffixes first so "ms" is not read as "s".
  static constexpr Unit kUnits[] = {
      {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  double scale = 1e9;
  std::string_view number = text;
  for (const auto& unit : kUnits) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      number = text.substr(0, text.size() - unit.suffix.size());
      scale = unit.ns;
      break;
    }
  }
  auto value = parseNumber(number, "duration");
  if (!value) {
    return Status::error(fmt::format("invalid duration '{}' (use e.g. 10s, 500ms, 2m)", text));
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(*value * scale)));
}

Result<PhaseSpec> parsePhase(std::string_view text) {
  const auto first = text.find(':');
  const auto last = text.rfind(':');
  if (first == std::string_view::npos || first == last) {
    return Status::error(fmt::format("invalid phase '{}' (want NAME:RPS:DURATION)", text));
  }
  PhaseSpec phase;
  phase.name = std::string(text.substr(0, first));
  if (phase.name.empty()) {
    return Status::error(fmt::format("phase '{}' has no name", text));
  }
  const std::string_view rps = text.substr(first + 1, last - first - 1);
  const auto dash = rps.find('-');
  auto from = parseNumber(rps.substr(0, dash), "rate");
  if (!from) {
    return Status::error(fmt::format("phase '{}': {}", text, from.error()));
  }
  phase.rps_from = phase.rps_to = *from;
  if (dash != std::string_view::npos) {
    auto to = parseNumber(rps.substr(dash + 1), "rate");
    if (!to) {
      return Status::error(fmt::format("phase '{}': {}", text, to.error()));
    }
    phase.rps_to = *to;
  }
  auto duration = parseDuration(text.substr(last + 1));
  if (!duration) {
    return Status::error(fmt::format("phase '{}': {}", text, duration.error()));
  }
  if (duration->count() <= 0) {
    return Status::error(fmt::format("phase '{}': duration must be positive", text));
  }
  phase.duration = *duration;
  return phase;
}

ArrivalSchedule::ArrivalSchedule(std::vector<PhaseSpec> phases) : phases_(std::move(phases)) {
  std::chrono::nanoseconds start{0};
  for (const auto& phase : phases_) {
    starts_.push_back(start);
    counts_.push_back(phase.requestCount());
    start += phase.duration;
  }
  skipEmptyPhases();
}

void ArrivalSchedule::skipEmptyPhases() {
  while (phase_ < phases_.size() && index_ >= counts_[phase_]) {
    ++phase_;
    index_ = 0;
  }
}

std::optional<Arrival> ArrivalSchedule::peek() const {
  if (phase_ >= phases_.size()) {
    return std::nullopt;
  }
  Arrival arrival;
  arrival.phase = phase_;
  arrival.index_in_phase = index_;
  arrival.sequence = sequence_;
  arrival.at = starts_[phase_] + phases_[phase_].offsetOf(index_);
  return arrival;
}

void ArrivalSchedule::advance() {
  if (phase_ >= phases_.size()) {
    return;
  }
  ++index_;
  ++sequence_;
  skipEmptyPhases();
}

std::chrono::nanoseconds ArrivalSchedule::totalDuration() const {
  return phases_.empty() ? std::chrono::nanoseconds(0) : starts_.back() + phases_.back().duration;
}

uint64_t ArrivalSchedule::totalRequests() const {
  uint64_t total = 0;
  for (auto n : counts_) {
    total += n;
  }
  return total;
}

}  // namespace bulwark::bench
