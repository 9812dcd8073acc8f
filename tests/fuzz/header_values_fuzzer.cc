// Header values bulwark acts on from upstream responses and client requests: `Retry-After`
// (delay-seconds or any of the three HTTP-date forms), `grpc-retry-pushback-ms` and
// `grpc-timeout`. Any value gets a result within its documented range, HTTP-dates and
// grpc-timeouts survive format-then-parse, and encoding a grpc-timeout never lengthens it.
// Input: one selector byte, eight bytes of clock (Retry-After dates are relative to it), the value.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "policies/retry/retry_after.h"
#include "proxy/http/grpc.h"
#include "tests/fuzz/fuzz_check.h"

namespace bulwark {
namespace {

int64_t readInt64(std::string_view& in) {
  int64_t v = 0;
  const size_t n = std::min(in.size(), sizeof(v));
  std::memcpy(&v, in.data(), n);
  in.remove_prefix(n);
  return v;
}

void checkRetryAfter(std::string_view in) {
  const policies::WallTime now{std::chrono::nanoseconds(readInt64(in))};
  const policies::Pushback p = policies::parseRetryAfter(in, now);
  FUZZ_CHECK(p.kind != policies::Pushback::Kind::DoNotRetry);
  FUZZ_CHECK(p.delay >= policies::Duration::zero());
  int64_t seconds = 0;
  if (policies::parseHttpDate(in, seconds)) {
    int64_t again = 0;
    FUZZ_CHECK(policies::parseHttpDate(policies::formatHttpDate(seconds), again));
    FUZZ_CHECK(again == seconds);
  }
}

void checkGrpcPushback(std::string_view in) {
  const policies::Pushback p = policies::parseGrpcRetryPushback(in);
  if (p.kind == policies::Pushback::Kind::Delay) {
    FUZZ_CHECK(p.delay >= policies::Duration::zero());
    FUZZ_CHECK(p.delay <= std::chrono::milliseconds(INT32_MAX));
  }
}

/** grpc-timeout: TimeoutValue is at most 8 digits, then one unit of H M S m u n. */
bool wellFormedGrpcTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) {
    return false;
  }
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return std::string_view("HMSmun").find(value.back()) != std::string_view::npos;
}

void checkGrpcTimeout(std::string_view in) {
  auto parsed = http::grpc::parseTimeout(in);
  if (parsed) {
    FUZZ_CHECK(parsed->count() >= 0);
    FUZZ_CHECK(wellFormedGrpcTimeout(in));
  }
  // Encoding any deadline, even a huge or negative one, yields a valid value no longer than it.
  const std::chrono::microseconds timeout(parsed ? parsed->count() : readInt64(in));
  const std::string encoded = http::grpc::encodeTimeout(timeout);
  FUZZ_CHECK(wellFormedGrpcTimeout(encoded));
  auto reparsed = http::grpc::parseTimeout(encoded);
  FUZZ_CHECK(reparsed.has_value());
  FUZZ_CHECK(*reparsed <= std::max(timeout, std::chrono::microseconds(0)));
}

}  // namespace
}  // namespace bulwark

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: bulwark::checkRetryAfter(in); break;
    case 1: bulwark::checkGrpcPushback(in); break;
    default: bulwark::checkGrpcTimeout(in); break;
  }
  return 0;
}
