#include "common/grpc_status.h"

namespace bulwark {
namespace {

constexpr uint32_t kLastCode = static_cast<uint32_t>(GrpcStatus::Unauthenticated);

}  // namespace

std::optional<GrpcStatus> grpcStatusFromCode(uint32_t code) {
  if (code > kLastCode) {
    return std::nullopt;
  }
  return static_cast<GrpcStatus>(code);
}

std::optional<GrpcStatus> parseGrpcStatus(std::string_view value) {
  // 0..16 fit in two digits.
  if (value.empty() || value.size() > 2 || (value.size() == 2 && value[0] == '0')) {
    return std::nullopt;
  }
  uint32_t code = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  return grpcStatusFromCode(code);
}

const std::vector<std::string_view>& grpcStatusNames() {
  static const std::vector<std::string_view> kNames = {"OK",
                                                       "CANCELLED",
                                                       "UNKNOWN",
                                                       "INVALID_ARGUMENT",
                                                       "DEADLINE_EXCEEDED",
                                                       "NOT_FOUND",
                                                       "ALREADY_EXISTS",
                                                       "PERMISSION_DENIED",
                                                       "RESOURCE_EXHAUSTED",
                                                       "FAILED_PRECONDITION",
                                                       "ABORTED",
                                                       "OUT_OF_RANGE",
                                                       "UNIMPLEMENTED",
                                                       "INTERNAL",
                                                       "UNAVAILABLE",
                                                       "DATA_LOSS",
                                                       "UNAUTHENTICATED"};
  return kNames;
}

std::string_view grpcStatusName(GrpcStatus status) {
  const auto code = static_cast<uint32_t>(status);
  return code <= kLastCode ? grpcStatusNames()[code] : std::string_view("UNKNOWN");
}

std::optional<GrpcStatus> grpcStatusFromName(std::string_view name) {
  const auto& names = grpcStatusNames();
  for (uint32_t code = 0; code < names.size(); ++code) {
    if (names[code] == name) {
      return static_cast<GrpcStatus>(code);
    }
  }
  return parseGrpcStatus(name);
}

GrpcStatus grpcStatusFromHttp(uint32_t http_status) {
  switch (http_status) {
    case 400: return GrpcStatus::Internal;
    case 401: return GrpcStatus::Unauthenticated;
    case 403: return GrpcStatus::PermissionDenied;
    case 404: return GrpcStatus::Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504: return GrpcStatus::Unavailable;
    default: return GrpcStatus::Unknown;
  }
}

}  // namespace bulwark
