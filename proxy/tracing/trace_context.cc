#include "proxy/tracing/trace_context.h"

#include <algorithm>

#include "common/ascii.h"

namespace bulwark::tracing {
namespace {

constexpr char kHex[] = "0123456789abcdef";

template <size_t N>
std::string hexOf(const std::array<uint8_t, N>& bytes) {
  std::string out(N * 2, '0');
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return out;
}

/** Parses exactly 2*N hex digits right-aligned into N bytes (shorter input: zeros in front). */
template <size_t N>
bool parseHex(std::string_view text, std::array<uint8_t, N>& out, bool allow_short = false) {
  if (text.size() != 2 * N && !(allow_short && text.size() == N && N == 16)) {
    return false;
  }
  out.fill(0);
  const size_t offset = N - text.size() / 2;
  for (size_t i = 0; i < text.size() / 2; ++i) {
    const int hi = hexValue(text[2 * i]);
    const int lo = hexValue(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out[offset + i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

template <size_t N>
bool allZero(const std::array<uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

template <size_t N>
std::array<uint8_t, N> randomBytes(std::mt19937_64& rng) {
  std::array<uint8_t, N> out{};
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t v = rng();
      for (size_t j = 0; j < 8 && i + j < N; ++j) {
        out[i + j] = static_cast<uint8_t>(v >> (8 * j));
      }
    }
  } while (allZero(out));
  return out;
}

}  // namespace

std::string toHex(const TraceId& id) { return hexOf(id); }
std::string toHex(const SpanId& id) { return hexOf(id); }
bool isValid(const TraceId& id) { return !allZero(id); }
bool isValid(const SpanId& id) { return !allZero(id); }
TraceId randomTraceId(std::mt19937_64& rng) { return randomBytes<16>(rng); }
SpanId randomSpanId(std::mt19937_64& rng) { return randomBytes<8>(rng); }

std::optional<SpanContext> parseTraceparent(std::string_view value) {
  // 00-<32>-<16>-<2>: 55 characters; later versions may append fields after a '-'.
  if (value.size() < 55 || (value.size() > 55 && value[55] != '-') || value[2] != '-' ||
      value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  std::array<uint8_t, 1> version{};
  std::array<uint8_t, 1> flags{};
  SpanContext context;
  if (!parseHex(value.substr(0, 2), version) || version[0] == 0xff ||
      (version[0] == 0 && value.size() != 55) || !parseHex(value.substr(3, 32), context.trace_id) ||
      !parseHex(value.substr(36, 16), context.span_id) || !parseHex(value.substr(53, 2), flags) ||
      !isValid(context.trace_id) || !isValid(context.span_id)) {
    return std::nullopt;
  }
  context.sampled = (flags[0] & 0x01) != 0;
  return context;
}

std::string formatTraceparent(const SpanContext& context) {
  return "00-" + toHex(context.trace_id) + "-" + toHex(context.span_id) +
         (context.sampled ? "-01" : "-00");
}

std::optional<SpanContext> parseB3(const http::HeaderMap& headers) {
  SpanContext context;
  if (auto single = headers.get("b3")) {
    // {trace}-{span}[-{sampled}[-{parent}]]; "0"/"1"/"d" alone is a sampling-only header.
    const std::string_view v = *single;
    const size_t dash1 = v.find('-');
    if (dash1 == std::string_view::npos) {
      return std::nullopt;
    }
    const size_t dash2 = v.find('-', dash1 + 1);
    const std::string_view span = v.substr(
        dash1 + 1, dash2 == std::string_view::npos ? std::string_view::npos : dash2 - dash1 - 1);
    if (!parseHex(v.substr(0, dash1), context.trace_id, true) || !parseHex(span, context.span_id)) {
      return std::nullopt;
    }
    const std::string_view sampled =
        dash2 == std::string_view::npos ? std::string_view() : v.substr(dash2 + 1, 1);
    context.sampled = sampled == "1" || sampled == "d";
  } else {
    auto trace = headers.get("x-b3-traceid");
    auto span = headers.get("x-b3-spanid");
    if (!trace || !span || !parseHex(*trace, context.trace_id, true) ||
        !parseHex(*span, context.span_id)) {
      return std::nullopt;
    }
    auto sampled = headers.get("x-b3-sampled");
    auto flags = headers.get("x-b3-flags");
    context.sampled =
        (sampled && (*sampled == "1" || *sampled == "true")) || (flags && *flags == "1");
  }
  if (!isValid(context.trace_id) || !isValid(context.span_id)) {
    return std::nullopt;
  }
  return context;
}

void writeB3(http::HeaderMap& headers, const SpanContext& context, const SpanId& parent) {
  for (const char* name :
       {"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"}) {
    headers.remove(name);
  }
  headers.add("x-b3-traceid", toHex(context.trace_id));
  headers.add("x-b3-spanid", toHex(context.span_id));
  headers.add("x-b3-parentspanid", toHex(parent));
  headers.add("x-b3-sampled", context.sampled ? "1" : "0");
}

}  // namespace bulwark::tracing
