#pragma once

// Strict YAML -> ProxyConfigSpec: every problem in the file is
// reported at once, each with file:line:col and a field path; `defaults` are inherited by routes;
// the feature gate runs last. Nothing here binds sockets or resolves names, so `bulwark check`,
// start-up and reload share it. Thread: any (no shared state).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/config/diagnostic.h"
#include "proxy/config/spec.h"

namespace bulwark::config {

/** The only apiVersion and kind this build reads. */
inline constexpr std::string_view kApiVersion = "bulwark.dev/v1alpha1";
inline constexpr std::string_view kKind = "ProxyConfig";

/** Outcome of one load. Thread: value type, any. */
struct LoadResult {
  /** Set only when there is no error (warnings allowed); inheritance already applied. */
  std::optional<ProxyConfigSpec> config;
  /** Errors and warnings ordered by position. */
  std::vector<ConfigDiagnostic> diagnostics;
  /** The file could not be read at all (missing, permission): `bulwark check` exits 2. */
  bool unreadable = false;
  /** Where every field was, for later messages about this config. */
  MarkTable marks;

  bool ok() const { return config.has_value(); }
  /** Every error formatted, one per line (no trailing newline). */
  std::string errorText() const;
  /** The config, or a Status carrying errorText(). */
  Result<ProxyConfigSpec> toResult() &&;
};

/**
 * Reads and validates a config file.
 * @param path file to read; also the FILE part of every diagnostic and spec.source_path.
 */
LoadResult loadConfigFile(const std::string& path);

/**
 * Validates config text; `pseudo_path` names it in diagnostics (e.g. "<inline>").
 */
LoadResult loadConfigString(std::string_view text, const std::string& pseudo_path);

}  // namespace bulwark::config
