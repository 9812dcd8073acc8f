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

}  // namespace bulwark::config
