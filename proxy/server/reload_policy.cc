#include "proxy/server/reload_policy.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "proxy/config/effective_json.h"

namespace bulwark::server {

namespace {

constexpr std::array kTable = {
    // Bound once at start: a reload cannot move a socket (a handover with --takeover can).
    FieldReload{"/admin/address", OnReload::NeedsRestart},
    FieldReload{"/listeners/*/name", OnReload::NeedsRestart},
    FieldReload{"/listeners/*/address", OnReload::NeedsRestart},
    // Threads and their connection tables are created once.
    FieldReload{"/runtime/concurrency", OnReload::NeedsRestart},
    FieldReload{"/runtime/maxConnectionsPerWorker", OnReload::NeedsRestart},
    // Histograms are registered with their buckets; Prometheus cannot re-bucket a series.
    FieldReload{"/observability/metrics/latencyBuckets", OnReload::NeedsRestart},

    FieldReload{"/apiVersion", OnReload::Applies},
    FieldReload{"/kind", OnReload::Applies},
    FieldReload{"/metadata/name", OnReload::Applies},
    // Read on each /ready.
    FieldReload{"/admin/readiness/requireUpstreams", OnReload::Applies},
    // Read when a drain starts.
    FieldReload{"/runtime/drain/**", OnReload::Applies},
    // The watcher starts or stops after each reload.
    FieldReload{"/runtime/watchConfig", OnReload::Applies},
    // The overload manager is reconfigured after each reload and samples the heap at once.
    FieldReload{"/runtime/overload/**", OnReload::Applies},
    // The access log belongs to the snapshot: a changed block opens its file then.
    FieldReload{"/observability/accessLog/**", OnReload::Applies},
    // Read per admin request and per downstream request from the snapshot.
    FieldReload{"/observability/metrics/path", OnReload::Applies},
    FieldReload{"/observability/tracing/**", OnReload::Applies},
    FieldReload{"/observability/explain/**", OnReload::Applies},
    // Read when a downstream connection is accepted.
    FieldReload{"/listeners/*/protocol", OnReload::Applies},
    FieldReload{"/listeners/*/routes", OnReload::Applies},
    FieldReload{"/listeners/*/limits/**", OnReload::Applies},
    // Read per request from the snapshot's listener.
    FieldReload{"/listeners/*/http/**", OnReload::Applies},
    // The TLS context (certificates read from their files) is built into every snapshot.
    FieldReload{"/listeners/*/tls/**", OnReload::Applies},
    // Each worker compares its Redis client's settings with the new snapshot's and reconnects
    // when they differ; requests under way finish on the old connection.
    FieldReload{"/redis/**", OnReload::Applies},
    // Compiled from scratch into every snapshot (routes, filters, upstreams; unchanged upstreams
    // and filter state carry over by value).
    FieldReload{"/defaults/**", OnReload::Applies},
    FieldReload{"/upstreams/**", OnReload::Applies},
    FieldReload{"/routes/**", OnReload::Applies},
};

std::vector<std::string_view> split(std::string_view pointer) {
  std::vector<std::string_view> parts;
  size_t start = 1;
  while (start <= pointer.size()) {
    size_t end = pointer.find('/', start);
    if (end == std::string_view::npos) {
      end = pointer.size();
    }
    parts.push_back(pointer.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

bool covers(std::string_view pattern, std::string_view pointer) {
  auto want = split(pattern);
  auto have = split(pointer);
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == "**") {
      return true;
    }
    if (i >= have.size()) {
      return false;
    }
    bool index =
        !have[i].empty() && have[i].find_first_not_of("0123456789") == std::string_view::npos;
    if (want[i] != have[i] && !(want[i] == "*" && index)) {
      return false;
    }
  }
  return want.size() == have.size();
}

bool isScalarArray(const nlohmann::json& j) {
  return j.is_array() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& e) {
           return !e.is_object() && !e.is_array();
         });
}

void collectLeaves(const nlohmann::json& j, const std::string& pointer,
                   std::vector<std::string>& out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      collectLeaves(*it, pointer + "/" + it.key(), out);
    }
  } else if (j.is_array() && !isScalarArray(j)) {
    for (size_t i = 0; i < j.size(); ++i) {
      collectLeaves(j[i], pointer + "/" + std::to_string(i), out);
    }
  } else {
    out.push_back(pointer);
  }
}

/** Values at every pointer matching `pattern` (no "**"), in document order. */
void collectMatches(const nlohmann::json& j, std::span<const std::string_view> parts,
                    const std::string& pointer,
                    std::vector<std::pair<std::string, nlohmann::json>>& out) {
  if (parts.empty()) {
    out.emplace_back(pointer, j);
    return;
  }
  if (parts.front() == "*") {
    if (j.is_array()) {
      for (size_t i = 0; i < j.size(); ++i) {
        collectMatches(j[i], parts.subspan(1), pointer + "/" + std::to_string(i), out);
      }
    }
    return;
  }
  std::string key(parts.front());
  if (j.is_object() && j.contains(key)) {
    collectMatches(j[key], parts.subspan(1), pointer + "/" + key, out);
  }
}

/** "/listeners/0/address" -> "listeners[0].address", the spelling of config diagnostics. */
std::string fieldName(const std::string& pointer) {
  std::string out;
  for (auto part : split(pointer)) {
    bool index = part == "*" ||
                 (!part.empty() && part.find_first_not_of("0123456789") == std::string_view::npos);
    if (index) {
      out += fmt::format("[{}]", part);
    } else {
      out += (out.empty() ? "" : ".") + std::string(part);
    }
  }
  return out;
}

}  // namespace

std::span<const FieldReload> reloadTable() { return kTable; }

std::optional<std::string> restartOnlyChange(const nlohmann::json& running,
                                             const nlohmann::json& next) {
  for (const auto& field : kTable) {
    if (field.on_reload != OnReload::NeedsRestart) {
      continue;
    }
    auto parts = split(field.pattern);
    std::vector<std::pair<std::string, nlohmann::json>> before;
    std::vector<std::pair<std::string, nlohmann::json>> after;
    collectMatches(running, parts, "", before);
    collectMatches(next, parts, "", after);
    if (before.size() != after.size()) {
      return fmt::format("{} ({} -> {} values)", fieldName(std::string(field.pattern)),
                         before.size(), after.size());
    }
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i].second != after[i].second) {
        return fmt::format("{} ({} -> {})", fieldName(before[i].first),
                           config::dumpJson(before[i].second, -1),
                           config::dumpJson(after[i].second, -1));
      }
    }
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string_view>> classifiedLeaves(
    const nlohmann::json& effective) {
  std::vector<std::string> leaves;
  collectLeaves(effective, "", leaves);
  std::vector<std::pair<std::string, std::string_view>> out;
  for (auto& leaf : leaves) {
    std::string_view pattern;
    for (const auto& field : kTable) {
      if (covers(field.pattern, leaf)) {
        pattern = field.pattern;
        break;
      }
    }
    out.emplace_back(std::move(leaf), pattern);
  }
  return out;
}

std::vector<std::string> unclassifiedFields(const nlohmann::json& effective) {
  std::vector<std::string> out;
  for (auto& [leaf, pattern] : classifiedLeaves(effective)) {
    if (pattern.empty()) {
      out.push_back(leaf);
    }
  }
  return out;
}

}  // namespace bulwark::server
