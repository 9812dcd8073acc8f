#include "proxy/config/vocabulary.h"

namespace bulwark::config {

const std::vector<std::string>& httpRetryOnTokens() {
  static const std::vector<std::string> kTokens = {"5xx",
                                                   "gateway-error",
                                                   "reset",
                                                   "reset-before-request",
                                                   "connect-failure",
                                                   "refused-stream",
                                                   "retriable-4xx",
                                                   "retriable-status-codes"};
  return kTokens;
}

const std::vector<std::string>& grpcRetryOnTokens() {
  static const std::vector<std::string> kTokens = {"cancelled", "deadline-exceeded", "internal",
                                                   "resource-exhausted", "unavailable"};
  return kTokens;
}

const std::vector<std::string>& allRetryOnTokens() {
  static const std::vector<std::string> kTokens = [] {
    std::vector<std::string> all = httpRetryOnTokens();
    all.insert(all.end(), grpcRetryOnTokens().begin(), grpcRetryOnTokens().end());
    return all;
  }();
  return kTokens;
}

const std::vector<std::string>& httpMethods() {
  static const std::vector<std::string> kMethods = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                    "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  return kMethods;
}

const std::vector<std::string>& grpcStatusNames() {
  static const std::vector<std::string> kNames = {"OK",
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

std::optional<int> grpcStatusCode(std::string_view name) {
  const auto& names = grpcStatusNames();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      return static_cast<int>(i);
    }
  }
  return std::nullopt;
}

const std::vector<std::string>& fallbackTriggers() {
  static const std::vector<std::string> kTriggers = {"circuitOpen", "shed", "rateLimited",
                                                     "timeout", "upstream5xx"};
  return kTriggers;
}

}  // namespace bulwark::config
