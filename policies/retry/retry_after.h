#pragma once

// Server pushback: `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) and gRPC's
// `grpc-retry-pushback-ms` (A6: a signed 32-bit integer; negative or unparseable = do not retry).

#include <cstdint>
#include <string>
#include <string_view>

#include "policies/time.h"

namespace bulwark::policies {

/** What the upstream asked for. Thread: value type. */
struct Pushback {
  enum class Kind : uint8_t {
    None,        // absent or ignorable (garbage Retry-After): use the normal backoff
    Delay,       // wait `delay` before retrying
    DoNotRetry,  // the server asked not to retry (gRPC negative/garbage pushback)
  };
  Kind kind = Kind::None;
  Duration delay{0};

  static Pushback none() { return {}; }
  static Pushback after(Duration d) { return {Kind::Delay, d}; }
  static Pushback doNotRetry() { return {Kind::DoNotRetry, Duration{0}}; }
};

/**
 * Parses a `Retry-After` value.
 * - delay-seconds (1*DIGIT, surrounding whitespace allowed): Delay; values too large to
 *   represent saturate at kMaxDuration (so any cap stops the retry instead of wrapping round).
 * - HTTP-date (IMF-fixdate, plus the obsolete RFC 850 and asctime forms recipients must accept):
 *   Delay of (date - now), 0 when the date has passed.
 * - anything else ("-1", "1.5", "soon", "", bad dates): None. RFC 9110 gives garbage no meaning,
 *   so the normal backoff applies.
 * Thread: any (pure).
 * @param value the field value.
 * @param now wall-clock time the HTTP-date is relative to (passed in; never read here).
 */
Pushback parseRetryAfter(std::string_view value, WallTime now);

/**
 * Parses `grpc-retry-pushback-ms`: a non-negative integer is a Delay in milliseconds; a negative
 * value, an empty value, garbage or anything outside int32 is DoNotRetry (gRPC A6).
 * Thread: any (pure).
 */
Pushback parseGrpcRetryPushback(std::string_view value);

/**
 * Parses an HTTP-date in any of the three RFC 9110 §5.6.7 forms.
 * @return seconds since the Unix epoch, or false when `value` is not a valid date.
 */
bool parseHttpDate(std::string_view value, int64_t& unix_seconds);

/** Formats seconds since the Unix epoch as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). */
std::string formatHttpDate(int64_t unix_seconds);

}  // namespace bulwark::policies
