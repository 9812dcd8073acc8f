#pragma once

// Per-snapshot tracing settings (observability.tracing) and the request-scoped trace state the
// connection manager and the router share: whether a request is sampled, its server span, and
// the span of each upstream attempt.

#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "proxy/http/headers.h"
#include "proxy/tracing/exporter.h"
#include "proxy/tracing/span.h"
#include "proxy/tracing/trace_context.h"

namespace bulwark::tracing {

/** Thread: immutable after construction, any; the exporter is thread-safe. */
class Tracer {
public:
  Tracer(double ratio, bool parent_based, bool w3c, bool b3, std::shared_ptr<SpanExporter> exporter)
      : ratio_(ratio),
        parent_based_(parent_based),
        w3c_(w3c),
        b3_(b3),
        exporter_(std::move(exporter)) {}

  /** The caller's span from the request headers (traceparent first, then B3, as configured). */
  std::optional<SpanContext> extract(const http::HeaderMap& headers) const;
  /** Sampling: an incoming decision when parentBased, else the ratio. */
  bool sample(const std::optional<SpanContext>& incoming, std::mt19937_64& rng) const;
  /** Writes the propagation headers of `context` (an attempt span) whose parent is `parent`. */
  void inject(http::HeaderMap& headers, const SpanContext& context, const SpanId& parent) const;
  void submit(Span span) const { exporter_->submit(std::move(span)); }

private:
  const double ratio_;
  const bool parent_based_;
  const bool w3c_;
  const bool b3_;
  std::shared_ptr<SpanExporter> exporter_;
};
using TracerConstSharedPtr = std::shared_ptr<const Tracer>;

/** @return nanoseconds since the Unix epoch of a steady-clock instant (spans use wall time). */
uint64_t unixNanos(std::chrono::steady_clock::time_point at);

/** A sampled request's trace: its server span so far. Thread: the stream's worker. */
struct RequestTrace {
  const Tracer* tracer = nullptr;
  Span server;  // trace_id, span_id, parent, start set at the request's start
};

}  // namespace bulwark::tracing
