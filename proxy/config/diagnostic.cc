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

namespace {

// Cuts the middle out of `text` when it is longer than about kMaxDiagnosticText bytes, keeping
// its start and end (a message's explanation often follows the quoted value) on UTF-8 character
// boundaries, and says how much was left out.
std::string shortened(std::string text) {
  if (text.size() <= kMaxDiagnosticText) {
    return text;
  }
  const auto continuation = [&](size_t i) {
    return (static_cast<unsigned char>(text[i]) & 0xC0U) == 0x80U;
  };
  size_t head = kMaxDiagnosticText / 2;
  while (head > 0 && continuation(head)) {
    --head;  // back to the start of the character the cut falls in
  }
  size_t tail = text.size() - kMaxDiagnosticText / 2;
  while (tail < text.size() && continuation(tail)) {
    ++tail;
  }
  return fmt::format("{}[...{} bytes...]{}", std::string_view(text).substr(0, head), tail - head,
                     std::string_view(text).substr(tail));
}

std::string countOf(size_t n, std::string_view word) {
  return fmt::format("{} more {}{}", n, word, n == 1 ? "" : "s");
}

}  // namespace

void DiagnosticSink::error(Mark mark, std::string path, std::string message,
                           std::string_view code) {
  add(mark, std::move(path), std::move(message), code, false);
}

void DiagnosticSink::warning(Mark mark, std::string path, std::string message,
                             std::string_view code) {
  add(mark, std::move(path), std::move(message), code, true);
}

void DiagnosticSink::add(Mark mark, std::string path, std::string message, std::string_view code,
                         bool warning) {
  // A size limit's one report is always kept: it says why reading stopped.
  if (diagnostics_.size() >= kMaxDiagnostics && code != codes::kTooLarge) {
    ++(warning ? omitted_warnings_ : omitted_errors_);
    return;
  }
  diagnostics_.push_back(ConfigDiagnostic{file_, mark.line, mark.column, shortened(std::move(path)),
                                          shortened(std::move(message)), warning,
                                          std::string(code)});
}

std::vector<ConfigDiagnostic> DiagnosticSink::take() {
  std::vector<ConfigDiagnostic> out = std::move(diagnostics_);
  diagnostics_.clear();
  std::stable_sort(out.begin(), out.end(),
                   [](const ConfigDiagnostic& a, const ConfigDiagnostic& b) {
                     if (a.line != b.line) {
                       return a.line < b.line;
                     }
                     return a.column < b.column;
                   });
  if (omitted_errors_ + omitted_warnings_ > 0) {
    std::string counts;
    if (omitted_errors_ > 0) {
      counts = countOf(omitted_errors_, "error");
    }
    if (omitted_warnings_ > 0) {
      counts +=
          fmt::format("{}{}", counts.empty() ? "" : " and ", countOf(omitted_warnings_, "warning"));
    }
    // An error when any left-out problem is one, so a file is never valid for lack of room.
    out.push_back(ConfigDiagnostic{
        file_, 0, 0, "",
        fmt::format("reporting stopped after {} problems; {} not shown", kMaxDiagnostics, counts),
        omitted_errors_ == 0, std::string(codes::kTooLarge)});
    omitted_errors_ = 0;
    omitted_warnings_ = 0;
  }
  return out;
}

}  // namespace bulwark::config
