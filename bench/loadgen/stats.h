#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/schedule.h"

namespace bulwark::bench {

/** Error kinds of the contract (bench/loadgen/README.md) that are not HTTP/gRPC statuses. */
namespace error_kind {
inline constexpr const char* kConnect = "connect";
inline constexpr const char* kReset = "reset";
inline constexpr const char* kTimeout = "timeout";
inline constexpr const char* kOverflow = "overflow";
inline constexpr const char* kProtocol = "protocol";
}  // namespace error_kind

/**
 * How one request ended. `answered` means a complete response arrived (any status): only those
 * carry a latency (connect failures, resets, timeouts and overflows do not).
 * Thread: value type.
 */
struct Outcome {
  bool ok = false;
  bool degraded = false;
  bool answered = false;
  /** Error kind when !ok. */
  std::string error;
  /**
   * The peer provably did not process the request (h2: REFUSED_STREAM or above a GOAWAY's last
   * stream id; h1: a reused keep-alive connection closed before any answer byte, idempotent
   * method or an Idempotency-Key). Real clients resend those, so the generator does too
   * (bounded), on the same target.
   */
  bool unprocessed = false;
};

/** 2xx -> ok; else http_429, http_503, http_4xx, http_5xx, http_1xx, http_3xx. */
Outcome httpOutcome(int status, bool degraded);
/**
 * gRPC: grpc-status 0 -> ok, another -> grpc_<NAME>. Without grpc-status, a non-200 HTTP status
 * is an HTTP error kind (a proxy's own 503) and a 200 is "protocol".
 */
Outcome grpcOutcome(int http_status, std::optional<int> grpc_status, bool degraded);
/** A request that got no complete answer (kind is one of error_kind). */
Outcome failedOutcome(const char* kind);
/** "UNAVAILABLE" for 14, ...; "CODE_<n>" beyond the 17 standard codes. */
std::string grpcStatusName(int code);

/**
 * Counters and latency of a set of requests (a phase, a second of the timeline, a request kind
 * or the whole run). Thread: one thread at a time.
 */
class Stats {
public:
  void onSent() { ++sent_; }
  /** Latency is from the intended send time; recorded only for answered outcomes. */
  void onOutcome(const Outcome& outcome, std::chrono::nanoseconds latency);
  void merge(const Stats& other);

  uint64_t sent() const { return sent_; }
  uint64_t completed() const { return completed_; }
  uint64_t ok() const { return ok_; }
  uint64_t degraded() const { return degraded_; }
  uint64_t answered() const { return answered_; }
  uint64_t errorCount() const { return completed_ - ok_; }
  uint64_t errors(const std::string& kind) const;
  const std::map<std::string, uint64_t>& errorKinds() const { return errors_; }
  const LatencyHistogram& latency() const { return latency_; }

  /** The contract's STATS object; rates are per second of `duration_s`. */
  nlohmann::json toJson(double duration_s) const;

private:
  uint64_t sent_ = 0;
  uint64_t completed_ = 0;
  uint64_t ok_ = 0;
  uint64_t degraded_ = 0;
  uint64_t answered_ = 0;
  std::map<std::string, uint64_t> errors_;
  LatencyHistogram latency_;
};

/** Stats of one phase. Thread: value type. */
struct PhaseReport {
  PhaseSpec spec;
  double start_s = 0;
  Stats stats;
};

/** Everything a run measured; toJson() is the contract's report. Thread: value type. */
struct Report {
  int64_t start_unix_ms = 0;
  nlohmann::json config = nlohmann::json::object();
  std::vector<PhaseReport> phases;
  Stats total;
  /** Only with --requests: per template name, in file order. */
  std::vector<std::pair<std::string, Stats>> by_request;
  /** One entry per second of intended send time. */
  std::vector<Stats> timeline;
  /** Scheduled duration (sum of the phases), or up to the interruption. */
  double duration_s = 0;
  /** Wall time from start until the last answer. */
  double elapsed_s = 0;
  bool interrupted = false;
  /** Connections that completed the TCP handshake / that failed to. */
  uint64_t connections_opened = 0;
  uint64_t connect_failures = 0;
  /** Requests resent because the peer had not processed them (see Outcome::unprocessed). */
  uint64_t unprocessed_retries = 0;
  /** Largest delay between a request's intended and actual send (generator saturation). */
  double max_send_lag_ms = 0;

  nlohmann::json toJson() const;
  /** Adds another thread's report of the same schedule (counts, histograms, extremes). */
  void merge(const Report& other);
};

/** ms with microsecond resolution, for the report. */
double roundMs(double us);

}  // namespace bulwark::bench
