#pragma once

// Recognising a sanitizer report in a child's output: the test harnesses of bulwark
// (tests/support/process.cc) and of the example backends (examples/common/testing/process.cc)
// fail a test when a process it started printed one. Header-only so both can use it without
// linking each other. Thread: any (a pure function).

#include <string_view>

namespace bulwark::testing {

/**
 * A line that starts a report of ASan/LSan ("==PID==ERROR: AddressSanitizer: ..."), TSan
 * ("WARNING: ThreadSanitizer: data race ...") or UBSan ("file.cc:12:5: runtime error: ..."), or
 * the SUMMARY line that ends every report. Searched anywhere in the line: a server's own log
 * lines, written by other threads, may share a line with it.
 */
inline bool isSanitizerReportLine(std::string_view line) {
  const auto has = [&](std::string_view s) { return line.find(s) != std::string_view::npos; };
  return (has("==ERROR: ") && has("Sanitizer")) || has("WARNING: ThreadSanitizer: ") ||
         has(": runtime error: ") || (has("SUMMARY: ") && has("Sanitizer"));
}

}  // namespace bulwark::testing
