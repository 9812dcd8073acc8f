// The gRPC health-check response decoder (grpc.health.v1 HealthCheckResponse behind the gRPC
// length prefix), fed what an upstream's health endpoint might answer. Besides surviving any
// bytes, a response built from the input's first bytes as {status} followed by the rest as
// unknown fields must decode to that status.
// Input: the response body.

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/upstream/grpc_health.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::string frame(const std::string& message) {
  std::string framed(1, '\0');
  const auto len = static_cast<uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    framed.push_back(static_cast<char>((len >> shift) & 0xff));
  }
  return framed + message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bulwark::upstream::grpc_health::decodeCheckResponse;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)decodeCheckResponse(body);

  // A well-formed response: status (field 1, varint), then a length-delimited unknown field 2
  // carrying the rest of the input.
  uint32_t status = 0;
  for (size_t i = 0; i < 4 && i < size; ++i) {
    status = (status << 8) | data[i];
  }
  const std::string_view rest = body.substr(size < 4 ? size : 4);
  std::string message;
  message.push_back(0x08);  // field 1, wire type 0
  appendVarint(message, status);
  message.push_back(0x12);  // field 2, wire type 2
  appendVarint(message, rest.size());
  message.append(rest);
  auto decoded = decodeCheckResponse(frame(message));
  FUZZ_CHECK(decoded.has_value() && *decoded == status);
  return 0;
}
