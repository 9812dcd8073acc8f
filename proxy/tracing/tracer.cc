#include "proxy/tracing/tracer.h"

namespace bulwark::tracing {

std::optional<SpanContext> Tracer::extract(const http::HeaderMap& headers) const {
  if (w3c_) {
    if (auto value = headers.get("traceparent")) {
      if (auto context = parseTraceparent(*value)) {
        return context;
      }
    }
  }
  if (b3_) {
    return parseB3(headers);
  }
  return std::nullopt;
}

bool Tracer::sample(const std::optional<SpanContext>& incoming, std::mt19937_64& rng) const {
  if (incoming && parent_based_) {
    return incoming->sampled;
  }
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < ratio_;
}

void Tracer::inject(http::HeaderMap& headers, const SpanContext& context,
                    const SpanId& parent) const {
  if (w3c_) {
    headers.set("traceparent", formatTraceparent(context));  // tracestate travels unchanged
  }
  if (b3_) {
    writeB3(headers, context, parent);
  }
}

uint64_t unixNanos(std::chrono::steady_clock::time_point at) {
  const auto since = std::chrono::steady_clock::now() - at;
  const auto wall = std::chrono::system_clock::now() - since;
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count());
}

}  // namespace bulwark::tracing
