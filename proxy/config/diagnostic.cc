#include "proxy/config/diagnostic.h"

#include <algorithm>

#include <fmt/format.h>

namespace bulwark::config {

std::string ConfigDiagnostic::format() const {
  std::string out = file;
  if (line > 0) {
    out += fmt::format(":{}:{}", line, column);
  }
  out += warning ? ": warning: " : ": error: ";
  if (!field_path.empty()) {
    out += field_path;
    out += ": ";
  }
  out += message;
  return out;
}

size_t countErrors(const std::vector<ConfigDiagnostic>& diagnostics) {
  return static_cast<size_t>(std::count_if(diagnostics.begin(), diagnostics.end(),
                                           [](const ConfigDiagnostic& d) { return !d.warning; }));
}

size_t countWarnings(const std::vector<ConfigDiagnostic>& diagnostics) {
  return diagnostics.size() - countErrors(diagnostics);
}

Mark MarkTable::find(const std::string& path) const {
  std::string p = path;
  while (!p.empty()) {
    auto it = marks_.find(p);
    if (it != marks_.end()) {
      return it->second;
    }
    // Strip the last component: either ".name" or "[i]".
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) {
      break;
    }
    p.resize(cut);
  }
  return Mark{};
}

void DiagnosticSink::error(Mark mark, std::string path, std::string message,
                           std::string_view code) {
  diagnostics_.push_back(ConfigDiagnostic{file_, mark.line, mark.column, std::move(path),
                                          std::move(message), false, std::string(code)});
}

void DiagnosticSink::warning(Mark mark, std::string path, std::string message,
                             std::string_view code) {
  diagnostics_.push_back(ConfigDiagnostic{file_, mark.line, mark.column, std::move(path),
                                          std::move(message), true, std::string(code)});
}

void sortDiagnostics(std::vector<ConfigDiagnostic>& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [](const ConfigDiagnostic& a, const ConfigDiagnostic& b) {
                     if (a.line != b.line) {
                       return a.line < b.line;
                     }
                     return a.column < b.column;
                   });
}

}  // namespace bulwark::config
