// The YAML config loader, as `bulwark check --print-effective` and a reload run it: text in,
// diagnostics out. It must never crash, throw or hang, whatever the text. Beyond that:
// - the result is valid exactly when no diagnostic is an error;
// - every diagnostic has a message and a code;
// - both report formats (text and JSON) can be written;
// - the effective config of a valid file is itself a valid file with the same effective config
//   (so every duration, size and number `--print-effective` writes parses back to its value).
// Input: the file's text.

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "proxy/config/check.h"
#include "proxy/config/effective_json.h"
#include "proxy/config/parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace bulwark::config {
namespace {

constexpr char kPath[] = "fuzz.yaml";

void checkReports(const LoadResult& result) {
  for (const bool json_output : {false, true}) {
    std::ostringstream out;
    std::ostringstream err;
    const int code = reportCheck(result, kPath, true, json_output, out, err);
    FUZZ_CHECK(code == (result.ok() ? kCheckValid : kCheckInvalid));
  }
}

void checkEffectiveRoundTrip(const ProxyConfigSpec& spec) {
  const std::string effective = dumpJson(toJson(spec));
  LoadResult again = loadConfigString(effective, "effective.json");
  if (!again.ok()) {
    std::fprintf(stderr, "effective config rejected:\n%s\n%s\n", again.errorText().c_str(),
                 effective.c_str());
  }
  FUZZ_CHECK(again.ok());
  const std::string effective_again = dumpJson(toJson(*again.config));
  if (effective_again != effective) {
    std::fprintf(stderr, "effective config changed on reload:\n%s\n---\n%s\n", effective.c_str(),
                 effective_again.c_str());
  }
  FUZZ_CHECK(effective_again == effective);
}

}  // namespace
}  // namespace bulwark::config

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const LoadResult result = loadConfigString(text, kPath);
  FUZZ_CHECK(result.ok() == (countErrors(result.diagnostics) == 0));
  for (const ConfigDiagnostic& d : result.diagnostics) {
    FUZZ_CHECK(!d.message.empty() && !d.code.empty() && d.file == kPath);
  }
  checkReports(result);
  if (result.ok()) {
    checkEffectiveRoundTrip(*result.config);
  }
  return 0;
}
