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

const std::vector<std::string>& fallbackTriggers() {
  static const std::vector<std::string> kTriggers = {"circuitOpen", "shed", "rateLimited",
                                                     "timeout", "upstream5xx"};
  return kTriggers;
}

std::string_view fallbackTriggerName(FallbackTrigger trigger) {
  if (trigger == FallbackTrigger::None) {
    return "";
  }
  return fallbackTriggers()[static_cast<size_t>(trigger) - 1];
}

std::optional<FallbackTrigger> fallbackTriggerFromName(std::string_view name) {
  const auto& names = fallbackTriggers();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) {
      return static_cast<FallbackTrigger>(i + 1);
    }
  }
  return std::nullopt;
}

}  // namespace bulwark::config
