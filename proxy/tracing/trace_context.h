#pragma once

// Trace context on the wire: W3C `traceparent` (version 00) and B3 (single `b3` and multi
// `x-b3-*`), and the ids bulwark makes for its own spans. Thread: any (value types, pure
// functions; ids come from the caller's generator).

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "proxy/http/headers.h"

namespace bulwark::tracing {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

/** Lower-case hex of an id. */
std::string toHex(const TraceId& id);
std::string toHex(const SpanId& id);
/** An all-zero id is invalid in both formats. */
bool isValid(const TraceId& id);
bool isValid(const SpanId& id);

TraceId randomTraceId(std::mt19937_64& rng);
SpanId randomSpanId(std::mt19937_64& rng);

/** One position in a trace: the caller's span (the parent of what bulwark starts). */
struct SpanContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = false;
};

/** `traceparent: 00-<32 hex>-<16 hex>-<2 hex flags>`; nullopt when malformed or all-zero. */
std::optional<SpanContext> parseTraceparent(std::string_view value);
std::string formatTraceparent(const SpanContext& context);

/**
 * B3: the single `b3: {trace}-{span}[-{sampled}[-{parent}]]` header, else `x-b3-traceid`,
 * `x-b3-spanid`, `x-b3-sampled` (64-bit trace ids are widened with zeros in front).
 */
std::optional<SpanContext> parseB3(const http::HeaderMap& headers);
/** Replaces the B3 headers (multi form, which every B3 reader accepts) with `context`. */
void writeB3(http::HeaderMap& headers, const SpanContext& context, const SpanId& parent);

}  // namespace bulwark::tracing
