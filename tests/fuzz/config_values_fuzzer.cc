// Config value parsers: GEP-2257 durations and byte sizes. Any input gets a value or an error
// (never an exception or overflow), and every value formats to a spelling that parses back to it,
// which is what `bulwark check --print-effective` relies on.
// Input: one selector byte (which parser), then the text.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "proxy/config/byte_size.h"
#include "proxy/config/duration.h"
#include "tests/fuzz/fuzz_check.h"

namespace bulwark::config {
namespace {

void checkDuration(std::string_view text) {
  auto parsed = parseDuration(text);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().starts_with(kDurationHint));
    return;
  }
  FUZZ_CHECK(parsed->count() >= 0 && *parsed <= kMaxConfigDuration);
  const std::string printed = formatDuration(*parsed);
  auto reparsed = parseDuration(printed);
  FUZZ_CHECK(reparsed && *reparsed == *parsed);
}

void checkByteSize(std::string_view text) {
  auto parsed = parseByteSize(text);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().starts_with(kByteSizeHint));
    return;
  }
  auto reparsed = parseByteSize(formatByteSize(*parsed));
  FUZZ_CHECK(reparsed && *reparsed == *parsed);
}

/** Any int64 formats without crashing; values the grammar can spell parse back. */
void checkFormatDuration(std::string_view bytes) {
  int64_t ms = 0;
  std::memcpy(&ms, bytes.data(), std::min(bytes.size(), sizeof(ms)));
  const std::string printed = formatDuration(Duration(ms));
  if (ms >= 0 && Duration(ms) <= kMaxConfigDuration) {
    auto reparsed = parseDuration(printed);
    FUZZ_CHECK(reparsed && reparsed->count() == ms);
  }
}

}  // namespace
}  // namespace bulwark::config

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: bulwark::config::checkDuration(text); break;
    case 1: bulwark::config::checkByteSize(text); break;
    default: bulwark::config::checkFormatDuration(text); break;
  }
  return 0;
}
