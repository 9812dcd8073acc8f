#pragma once

// Byte sizes in config files: a plain integer or a Kubernetes-style binary quantity
// ("64Ki", "1Mi", "1Gi"). Thread: any (pure functions).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace bulwark::config {

/** The start of every byte-size error. */
inline constexpr std::string_view kByteSizeHint = "expected a byte size like 65536 or \"64Ki\"";

/** Parses "65536", "64Ki", "1Mi", "1Gi". Decimal suffixes (K, KB, M) are rejected with a hint. */
Result<uint64_t> parseByteSize(std::string_view text);

/** Inverse of parseByteSize for exact multiples ("64Ki"); otherwise the plain number. */
std::string formatByteSize(uint64_t bytes);

}  // namespace bulwark::config
