#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "tests/support/headers.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

/** Result of one admin request. Thread: value type. */
struct AdminResponse {
  /** A complete response arrived (whatever its status). */
  bool ok = false;
  int status = 0;
  Headers headers;
  std::string body;
  /** Why ok is false (connect refused, deadline, truncated response). */
  std::string error;
};

/**
 * One-shot HTTP/1.1 GET on a fresh connection (Connection: close), for admin endpoints such as
 * /ready, /live and /metrics.
 * Thread: any (each call owns its socket).
 */
AdminResponse adminGet(uint16_t port, const std::string& path,
                       Deadline deadline = defaultDeadline(),
                       const std::string& host = "127.0.0.1");

/** One-shot POST (for /reload, /drain, /healthcheck/fail). */
AdminResponse adminPost(uint16_t port, const std::string& path, const std::string& body = {},
                        Deadline deadline = defaultDeadline(),
                        const std::string& host = "127.0.0.1");

/** GET `path` (default /metrics) and parse it; nullopt with *error on failure or non-200. */
std::optional<PrometheusText> fetchMetrics(uint16_t port, const std::string& path = "/metrics",
                                           Deadline deadline = defaultDeadline(),
                                           std::string* error = nullptr);

/**
 * Value of one metric from a fresh scrape (see PrometheusText::value for label matching).
 * nullopt when the scrape failed or the metric is absent or ambiguous.
 */
std::optional<double> metricValue(uint16_t port, const std::string& name, const Labels& labels = {},
                                  const std::string& path = "/metrics",
                                  Deadline deadline = defaultDeadline());

/** Polls GET path until it answers `status` (e.g. /ready -> 200 after start, 503 when draining). */
bool waitForAdminStatus(uint16_t port, const std::string& path, int status,
                        Deadline deadline = defaultDeadline());

/** Polls until predicate(sum of the samples of `name` including `labels`) holds (0 when absent). */
bool waitForMetric(uint16_t port, const std::string& name, const Labels& labels,
                   const std::function<bool(double)>& predicate,
                   Deadline deadline = defaultDeadline(), const std::string& path = "/metrics");

}  // namespace bulwark::testing
