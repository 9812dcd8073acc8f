#pragma once

// Problems found while loading a config file, in compiler style, plus where each parsed field
// came from. Thread: value types, any.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/config/spec.h"

namespace bulwark::config {

/** Searchable codes (docs/configuration.md lists them), one per kind of problem. */
namespace codes {
inline constexpr std::string_view kUnreadable = "BW0001";
inline constexpr std::string_view kYamlSyntax = "BW0002";
inline constexpr std::string_view kTooLarge = "BW0003";
inline constexpr std::string_view kUnknownField = "BW0101";
inline constexpr std::string_view kWrongType = "BW0102";
inline constexpr std::string_view kInvalidValue = "BW0103";
inline constexpr std::string_view kMissingField = "BW0104";
inline constexpr std::string_view kDuplicateKey = "BW0105";
inline constexpr std::string_view kConflictingFields = "BW0106";
inline constexpr std::string_view kHeader = "BW0201";
inline constexpr std::string_view kDuplicateName = "BW0301";
inline constexpr std::string_view kDanglingReference = "BW0302";
inline constexpr std::string_view kAddressConflict = "BW0303";
inline constexpr std::string_view kBadRegex = "BW0304";
inline constexpr std::string_view kInconsistentValues = "BW0305";
inline constexpr std::string_view kGrpcRetryOn5xx = "BW0401";
inline constexpr std::string_view kUnsafeRetry = "BW0402";
inline constexpr std::string_view kIneffectiveSetting = "BW0403";
/** A bug in bulwark's config reader (an exception it did not expect); never a user error. */
inline constexpr std::string_view kInternal = "BW0901";
}  // namespace codes

/** One problem in a config file. line/column are 1-based; 0 = unknown. */
struct ConfigDiagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string field_path;  // e.g. routes[2].timeouts.request; empty = the document
  std::string message;
  bool warning = false;
  std::string code;  // codes::k*

  /** `FILE:LINE:COL: error: PATH: MESSAGE` (position and path left out when unknown). */
  std::string format() const;
};

/** Counts errors (not warnings). */
size_t countErrors(const std::vector<ConfigDiagnostic>& diagnostics);
size_t countWarnings(const std::vector<ConfigDiagnostic>& diagnostics);

/**
 * Field path -> position of that field's value in the file, recorded by the parser for every
 * field it read, so checks that run on the plain structs (semantic validation, feature gate) can
 * still point at a line. Thread: value type, any.
 */
class MarkTable {
public:
  void set(const std::string& path, Mark mark) { marks_[path] = mark; }
  bool has(const std::string& path) const { return marks_.count(path) != 0; }

  /**
   * The mark of `path`, or of its closest recorded ancestor (`a.b[1].c` -> `a.b[1]` -> `a.b` ->
   * `a`), or {0,0} when nothing on the way was recorded.
   */
  Mark find(const std::string& path) const;

private:
  std::unordered_map<std::string, Mark> marks_;
};

/**
 * A file reports at most this many problems (and the size limit's report, when one stopped the
 * reading); the rest are counted in one closing diagnostic. A few kilobytes of aliases can
 * otherwise multiply one problem into a hundred thousand reports.
 */
inline constexpr size_t kMaxDiagnostics = 100;

/**
 * Field paths and messages quote the file's own text (an unknown key, a bad value), which can be
 * tens of kilobytes long: each keeps about this many bytes of its start and end.
 */
inline constexpr size_t kMaxDiagnosticText = 300;

/**
 * Collects diagnostics for one file, keeping the first kMaxDiagnostics and counting the rest.
 * Thread: the loading thread.
 */
class DiagnosticSink {
public:
  explicit DiagnosticSink(std::string file) : file_(std::move(file)) {}

  void error(Mark mark, std::string path, std::string message, std::string_view code);
  void warning(Mark mark, std::string path, std::string message, std::string_view code);

  const std::string& file() const { return file_; }

  /**
   * The kept diagnostics ordered by position (stable, so same-line problems keep their discovery
   * order), then one saying how many more errors and warnings were found and left out. Empties
   * the sink.
   */
  std::vector<ConfigDiagnostic> take();

private:
  void add(Mark mark, std::string path, std::string message, std::string_view code, bool warning);

  std::string file_;
  std::vector<ConfigDiagnostic> diagnostics_;
  size_t omitted_errors_ = 0;
  size_t omitted_warnings_ = 0;
};

}  // namespace bulwark::config
