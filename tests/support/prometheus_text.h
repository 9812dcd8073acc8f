#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::testing {

/** Label set of one sample. Thread: value type. */
using Labels = std::map<std::string, std::string>;

/** One sample line. Thread: value type. */
struct PrometheusSample {
  /** Full sample name, suffix included (foo_bucket, foo_sum, foo_count for histograms). */
  std::string name;
  Labels labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
};

/**
 * A parsed Prometheus text exposition (format 0.0.4, what prometheus-cpp's serializer writes),
 * for asserting on bulwark's /metrics:
 *
 *   auto metrics = PrometheusText::parse(body);
 *   EXPECT_EQ(1, metrics->value("bulwark_upstream_rq_retries_total",
 *                                {{"route", "rank"}, {"reason", "unavailable"}}));
 *
 * Parsing is strict about the sample grammar (name, optional {labels}, value, optional
 * timestamp; label values with \\ \" \n escapes; NaN/+Inf/-Inf) so a malformed exposition
 * fails the test instead of reading as "metric absent".
 * Thread: value type; const methods are safe from any thread.
 */
class PrometheusText {
public:
  /** nullopt on a malformed line, with *error naming the line. */
  static std::optional<PrometheusText> parse(std::string_view text, std::string* error = nullptr);

  const std::vector<PrometheusSample>& samples() const { return samples_; }
  /** Every sample named `name`. */
  std::vector<PrometheusSample> samples(std::string_view name) const;
  /**
   * The value of `name` with these labels: the sample whose label set equals `labels` exactly,
   * else the only sample whose labels include `labels`. nullopt when none or several match
   * (use sum() to aggregate).
   */
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const;
  /** Sum over every sample named `name` whose labels include `labels` (0 when none). */
  double sum(std::string_view name, const Labels& labels = {}) const;
  /** At least one sample named `name` includes `labels`. */
  bool has(std::string_view name, const Labels& labels = {}) const;
  /** # TYPE of a metric family ("counter", "gauge", "histogram", ...). */
  std::optional<std::string> type(std::string_view family) const;
  /** # HELP of a metric family. */
  std::optional<std::string> help(std::string_view family) const;

private:
  std::vector<PrometheusSample> samples_;
  std::map<std::string, std::string, std::less<>> types_;
  std::map<std::string, std::string, std::less<>> helps_;
};

}  // namespace bulwark::testing
