#pragma once

// `bulwark check -c FILE [--print-effective] [--output json]`:
// validates without binding anything. Thread: main (writes to the given streams).

#include <ostream>
#include <string>

#include "proxy/config/parser.h"

namespace bulwark::config {

/** Exit codes of `bulwark check`. */
inline constexpr int kCheckValid = 0;  // warnings allowed
inline constexpr int kCheckInvalid = 1;
inline constexpr int kCheckUnreadable = 2;  // missing file, permission, directory

/**
 * Loads `path` and reports the result.
 * Text mode: one compiler-style line per problem on `err`, then a summary ("2 errors,
 * 1 warning", or "FILE: OK"); `--print-effective` writes the effective config as JSON to `out`
 * when the file is valid.
 * JSON mode: one document on `out`: {"file", "valid", "unreadable", "errors", "warnings",
 * "diagnostics": [{file, line, column, severity, fieldPath, message, code}], "effective"?}.
 * @return kCheckValid, kCheckInvalid or kCheckUnreadable.
 */
int runCheck(const std::string& path, bool print_effective, bool json_output, std::ostream& out,
             std::ostream& err);

/**
 * `bulwark check -c FILE --explain ROUTE`: the route's effective policies (explainRoute) as JSON
 * on `out` when the file is valid and has the route; diagnostics on `err` otherwise.
 */
int runExplain(const std::string& path, const std::string& route, std::ostream& out,
               std::ostream& err);

/** The reporting half of runCheck, for a result already loaded from `path`. */
int reportCheck(const LoadResult& result, const std::string& path, bool print_effective,
                bool json_output, std::ostream& out, std::ostream& err);

}  // namespace bulwark::config
