#include "bench/loadgen/stats.h"

#include <cmath>

#include <fmt/format.h>

#include "common/grpc_status.h"

namespace bulwark::bench {
namespace {

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

nlohmann::json errorsJson(const std::map<std::string, uint64_t>& errors) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [kind, n] : errors) {
    out[kind] = n;
  }
  return out;
}

}  // namespace

double roundMs(double us) { return round3(us / 1000.0); }

Outcome httpOutcome(int status, bool degraded) {
  Outcome o;
  o.answered = true;
  if (status >= 200 && status < 300) {
    o.ok = true;
    o.degraded = degraded;
    return o;
  }
  if (status == 429 || status == 503) {
    o.error = fmt::format("http_{}", status);
  } else if (status >= 100 && status < 600) {
    o.error = fmt::format("http_{}xx", status / 100);
  } else {
    o.answered = false;
    o.error = error_kind::kProtocol;
  }
  return o;
}

Outcome grpcOutcome(int http_status, std::optional<int> grpc_status, bool degraded) {
  if (!grpc_status) {
    if (http_status != 200) {
      return httpOutcome(http_status, false);
    }
    Outcome o;
    o.answered = true;
    o.error = error_kind::kProtocol;
    return o;
  }
  Outcome o;
  o.answered = true;
  if (*grpc_status == 0) {
    o.ok = true;
    o.degraded = degraded;
  } else {
    o.error = "grpc_" + grpcStatusName(*grpc_status);
  }
  return o;
}

Outcome failedOutcome(const char* kind) {
  Outcome o;
  o.error = kind;
  return o;
}

std::string grpcStatusName(int code) {
  const auto& names = bulwark::grpcStatusNames();
  if (code >= 0 && static_cast<size_t>(code) < names.size()) {
    return std::string(names[static_cast<size_t>(code)]);
  }
  return fmt::format("CODE_{}", code);
}

void Stats::onOutcome(const Outcome& outcome, std::chrono::nanoseconds latency) {
  ++completed_;
  if (outcome.ok) {
    ++ok_;
    if (outcome.degraded) {
      ++degraded_;
    }
  } else {
    ++errors_[outcome.error];
  }
  if (outcome.answered) {
    ++answered_;
    latency_.record(latency);
  }
}

void Stats::merge(const Stats& other) {
  sent_ += other.sent_;
  completed_ += other.completed_;
  ok_ += other.ok_;
  degraded_ += other.degraded_;
  answered_ += other.answered_;
  for (const auto& [kind, n] : other.errors_) {
    errors_[kind] += n;
  }
  latency_.merge(other.latency_);
}

uint64_t Stats::errors(const std::string& kind) const {
  auto it = errors_.find(kind);
  return it == errors_.end() ? 0 : it->second;
}

nlohmann::json Stats::toJson(double duration_s) const {
  nlohmann::json j;
  j["sent"] = sent_;
  j["completed"] = completed_;
  j["ok"] = ok_;
  j["degraded"] = degraded_;
  j["answered"] = answered_;
  j["errors"] = errorsJson(errors_);
  j["error_rate"] =
      completed_ == 0
          ? 0.0
          : std::round(static_cast<double>(errorCount()) / static_cast<double>(completed_) * 1e6) /
                1e6;
  j["achieved_rps"] = duration_s > 0 ? round3(static_cast<double>(answered_) / duration_s) : 0.0;
  j["ok_rps"] = duration_s > 0 ? round3(static_cast<double>(ok_) / duration_s) : 0.0;
  const auto& h = latency_;
  j["latency_ms"] = {{"min", roundMs(static_cast<double>(h.minUs()))},
                     {"mean", roundMs(h.meanUs())},
                     {"p50", roundMs(h.percentileUs(50))},
                     {"p90", roundMs(h.percentileUs(90))},
                     {"p95", roundMs(h.percentileUs(95))},
                     {"p99", roundMs(h.percentileUs(99))},
                     {"p999", roundMs(h.percentileUs(99.9))},
                     {"max", roundMs(static_cast<double>(h.maxUs()))},
                     {"count", h.count()}};
  return j;
}

void Report::merge(const Report& other) {
  for (size_t i = 0; i < phases.size() && i < other.phases.size(); ++i) {
    phases[i].stats.merge(other.phases[i].stats);
  }
  total.merge(other.total);
  for (size_t i = 0; i < by_request.size() && i < other.by_request.size(); ++i) {
    by_request[i].second.merge(other.by_request[i].second);
  }
  if (other.timeline.size() > timeline.size()) {
    timeline.resize(other.timeline.size());
  }
  for (size_t i = 0; i < other.timeline.size(); ++i) {
    timeline[i].merge(other.timeline[i]);
  }
  duration_s = std::max(duration_s, other.duration_s);
  elapsed_s = std::max(elapsed_s, other.elapsed_s);
  interrupted = interrupted || other.interrupted;
  connections_opened += other.connections_opened;
  connect_failures += other.connect_failures;
  unprocessed_retries += other.unprocessed_retries;
  max_send_lag_ms = std::max(max_send_lag_ms, other.max_send_lag_ms);
}

nlohmann::json Report::toJson() const {
  nlohmann::json j;
  j["tool"] = "bulwark-loadgen";
  j["start_unix_ms"] = start_unix_ms;
  j["config"] = config;
  j["phases"] = nlohmann::json::array();
  for (const auto& phase : phases) {
    const double d = std::chrono::duration<double>(phase.spec.duration).count();
    nlohmann::json p = phase.stats.toJson(d);
    p["name"] = phase.spec.name;
    p["start_s"] = round3(phase.start_s);
    p["duration_s"] = round3(d);
    if (phase.spec.isRamp()) {
      p["target_rps_from"] = phase.spec.rps_from;
      p["target_rps_to"] = phase.spec.rps_to;
    } else {
      p["target_rps"] = phase.spec.rps_from;
    }
    j["phases"].push_back(std::move(p));
  }
  j["total"] = total.toJson(duration_s);
  j["total"]["duration_s"] = round3(duration_s);
  if (!by_request.empty()) {
    j["by_request"] = nlohmann::json::object();
    for (const auto& [name, stats] : by_request) {
      j["by_request"][name] = stats.toJson(duration_s);
    }
  }
  j["timeline"] = nlohmann::json::array();
  for (size_t t = 0; t < timeline.size(); ++t) {
    const auto& s = timeline[t];
    const auto& h = s.latency();
    j["timeline"].push_back({{"t", t},
                             {"sent", s.sent()},
                             {"completed", s.completed()},
                             {"ok", s.ok()},
                             {"degraded", s.degraded()},
                             {"errors", errorsJson(s.errorKinds())},
                             {"p50_ms", roundMs(h.percentileUs(50))},
                             {"p90_ms", roundMs(h.percentileUs(90))},
                             {"p99_ms", roundMs(h.percentileUs(99))},
                             {"max_ms", roundMs(static_cast<double>(h.maxUs()))}});
  }
  j["run"] = {{"elapsed_s", round3(elapsed_s)},
              {"interrupted", interrupted},
              {"connections_opened", connections_opened},
              {"connect_failures", connect_failures},
              {"unprocessed_retries", unprocessed_retries},
              {"max_send_lag_ms", round3(max_send_lag_ms)}};
  return j;
}

}  // namespace bulwark::bench
