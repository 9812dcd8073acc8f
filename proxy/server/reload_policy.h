#pragma once

// Which config fields a reload can change in a running process. Every field of the effective
// config (config::toJson) is classified in one table; a reload that changes a field the process
// cannot apply without a restart is refused, naming the field, so `/config` never shows a value
// that is not in force. Thread: any (pure functions over JSON).

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace bulwark::server {

enum class OnReload {
  Applies,       // the next snapshot (or the next connection, or the next drain) uses it
  NeedsRestart,  // read once at start: sockets, threads, metric layouts
};

struct FieldReload {
  // A JSON pointer into the effective config; "*" stands for any array index, and a last
  // segment "**" covers the whole subtree (blocks rebuilt from scratch by every reload).
  std::string_view pattern;
  OnReload on_reload;
};

/** The one table. */
std::span<const FieldReload> reloadTable();

/**
 * The first NeedsRestart field whose value differs between the running and the next effective
 * config, as "runtime.concurrency (2 -> 4)"; nullopt when a reload may apply `next`.
 */
std::optional<std::string> restartOnlyChange(const nlohmann::json& running,
                                             const nlohmann::json& next);

/**
 * Leaf fields of `effective` (JSON pointers; arrays of scalars count as one leaf) that no
 * pattern of the table covers: a field added to the spec but not classified.
 */
std::vector<std::string> unclassifiedFields(const nlohmann::json& effective);

/** Leaf fields of `effective` with the pattern covering each (empty when none). */
std::vector<std::pair<std::string, std::string_view>> classifiedLeaves(
    const nlohmann::json& effective);

}  // namespace bulwark::server
