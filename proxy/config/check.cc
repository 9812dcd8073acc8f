#include "proxy/config/check.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "proxy/config/effective_json.h"
#include "proxy/config/parser.h"

namespace bulwark::config {
namespace {

std::string plural(size_t n, std::string_view word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

nlohmann::json diagnosticJson(const ConfigDiagnostic& d) {
  return {{"file", d.file},
          {"line", d.line},
          {"column", d.column},
          {"severity", d.warning ? "warning" : "error"},
          {"fieldPath", d.field_path},
          {"message", d.message},
          {"code", d.code}};
}

}  // namespace

int runCheck(const std::string& path, bool print_effective, bool json_output, std::ostream& out,
             std::ostream& err) {
  return reportCheck(loadConfigFile(path), path, print_effective, json_output, out, err);
}

int runExplain(const std::string& path, const std::string& route, std::ostream& out,
               std::ostream& err) {
  const LoadResult result = loadConfigFile(path);
  if (!result.ok()) {
    return reportCheck(result, path, false, false, out, err);
  }
  auto explained = explainRoute(*result.config, route);
  if (!explained) {
    std::string names;
    for (const RouteSpec& r : result.config->routes) {
      names += (names.empty() ? "" : ", ") + r.name;
    }
    err << path << ": no route named \"" << route << "\" (routes: " << names << ")\n";
    return kCheckInvalid;
  }
  out << dumpJson(*explained) << '\n';
  return kCheckValid;
}

int reportCheck(const LoadResult& result, const std::string& path, bool print_effective,
                bool json_output, std::ostream& out, std::ostream& err) {
  const size_t errors = countErrors(result.diagnostics);
  const size_t warnings = countWarnings(result.diagnostics);
  const int code = result.unreadable ? kCheckUnreadable : result.ok() ? kCheckValid : kCheckInvalid;

  if (json_output) {
    nlohmann::json doc = {
        {"file", path},     {"valid", result.ok()}, {"unreadable", result.unreadable},
        {"errors", errors}, {"warnings", warnings}, {"diagnostics", nlohmann::json::array()}};
    for (const ConfigDiagnostic& d : result.diagnostics) {
      doc["diagnostics"].push_back(diagnosticJson(d));
    }
    if (print_effective && result.ok()) {
      doc["effective"] = toJson(*result.config);
    }
    out << dumpJson(doc) << '\n';
    return code;
  }

  for (const ConfigDiagnostic& d : result.diagnostics) {
    err << d.format() << '\n';
  }
  if (result.ok()) {
    err << path << ": OK";
    if (warnings > 0) {
      err << " (" << plural(warnings, "warning") << ")";
    }
    err << '\n';
    if (print_effective) {
      out << dumpJson(toJson(*result.config)) << '\n';
    }
  } else if (!result.unreadable) {
    err << plural(errors, "error") << ", " << plural(warnings, "warning") << '\n';
  }
  return code;
}

}  // namespace bulwark::config
