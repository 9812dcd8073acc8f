#pragma once

// The fault knobs every example backend shares: what to inject, parsed from command-line
// flags at start and from JSON on the control endpoint at run time.

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "policies/random.h"

namespace CLI {
class App;
}

namespace bulwark::examples {

/**
 * A random added latency. Written as text so that one flag or JSON field carries it:
 *   ""  or "none"             no extra latency
 *   "exp:MEAN"                exponential with the given mean (long tail, like queueing)
 *   "uniform:A:B"             uniform in [A, B]
 *   "normal:MEAN:STDDEV"      normal, negative samples clamped to 0
 *   "lognormal:MEDIAN:SIGMA"  log-normal with the given median and shape (p99 = MEDIAN * e^(2.326
 * SIGMA)) All values are milliseconds (SIGMA is unitless). Thread: value type, any.
 */
struct LatencyDistribution {
  enum class Kind { None, Exponential, Uniform, Normal, LogNormal };
  Kind kind = Kind::None;
  double a = 0;  // mean, lower bound, mean, median
  double b = 0;  // -, upper bound, stddev, sigma

  /** Parses the text form above; rejects negative or inverted parameters. */
  static Result<LatencyDistribution> parse(const std::string& text);
  /** The text form, "" for None. */
  std::string toString() const;
  /** @return one sample in milliseconds (>= 0). */
  double sampleMs(policies::Random& random) const;

  bool operator==(const LatencyDistribution&) const = default;
};

/** @return a standard normal sample (Box-Muller on two uniforms). */
double sampleStandardNormal(policies::Random& random);

/**
 * What the fault injector does to requests. All rates are probabilities in [0, 1] and are drawn
 * independently per request, in the order crash, hang, reset, error (the first that fires wins).
 * JSON field names are the member names without the trailing underscore convention (they are
 * plain public fields), e.g. {"error_rate":0.5,"error_http_status":429,"retry_after":"1"}.
 * Thread: value type, any.
 */
struct FaultSpec {
  static constexpr int kDefaultHttpStatus = 503;
  static constexpr int kDefaultGrpcCode = 14;  // UNAVAILABLE

  /** Fraction of requests answered with an error instead of being served. */
  double error_rate = 0;
  /** HTTP status of injected errors (400..599). */
  int error_http_status = kDefaultHttpStatus;
  /** gRPC status code of injected errors (1..16). */
  int error_grpc_code = kDefaultGrpcCode;
  /** Retry-After value sent with injected HTTP errors, e.g. "1" (seconds). */
  std::optional<std::string> retry_after;
  /** grpc-retry-pushback-ms trailer sent with injected gRPC errors. */
  std::optional<int64_t> grpc_pushback_ms;
  /** Fixed latency added to every request before it is served or failed. */
  double latency_fixed_ms = 0;
  /** Random latency added on top of latency_fixed_ms. */
  LatencyDistribution latency_distribution;
  /** Fraction of requests that never get an answer (the connection stays open). */
  double hang_rate = 0;
  /** Fraction of requests whose connection is reset after part of the response was sent. */
  double reset_rate = 0;
  /** When > 0, response bodies are trickled at this many bytes per second. */
  int64_t slow_body_bytes_per_sec = 0;
  /** When true, the next request makes the process exit abruptly (no answer, exit code 70). */
  bool crash = false;

  /** Checks ranges; the message names the offending field. */
  Status validate() const;
  /** True when no knob is active. */
  bool inactive() const;

  /**
   * Parses a JSON object with the fields above. Missing fields take their defaults, so `{}` is
   * "no faults"; unknown fields and wrong types are errors (a typo must not silently do nothing).
   */
  static Result<FaultSpec> fromJson(const nlohmann::json& json);
  static Result<FaultSpec> fromJsonText(const std::string& text);
  nlohmann::json toJson() const;

  bool operator==(const FaultSpec&) const = default;
};

/**
 * Adds --fault-* flags (see README of each backend) writing into `spec`. The latency distribution
 * flag is parsed and validated by CLI11 itself, so a bad value fails start-up with a message.
 */
void addFaultFlags(CLI::App& app, FaultSpec& spec);

}  // namespace bulwark::examples
