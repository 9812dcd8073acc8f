#pragma once

// Strict, typed reading of yaml-cpp nodes with field paths and line/column marks. Every reader
// reports problems into a DiagnosticSink and carries on, so one load reports all problems.
// yaml-cpp throws on some conversions; these readers never call the throwing ones.
// Thread: the loading thread (LoadContext is not shared).

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "proxy/config/diagnostic.h"
#include "proxy/config/spec.h"

namespace bulwark::config {

/**
 * The most map entries and list items one load reads. A YAML alias is read again at each use,
 * so a file of a few kilobytes that repeats aliases of lists inside aliased lists would
 * otherwise keep the reader busy for hours (20 KB: over two minutes). Without aliases a file
 * needs about 1.5 MB of YAML to get there; the full schema example has a few hundred values.
 */
inline constexpr size_t kMaxConfigValues = 100000;

/**
 * The most bytes of keys and scalar values one load reads, aliases counted at each use: a
 * kilobytes-long value behind nested aliases is otherwise copied into the config a hundred
 * thousand times (a 3 KB regular expression: 110 MB). A large real config has about a megabyte.
 */
inline constexpr size_t kMaxConfigTextBytes = size_t{16} << 20;

/** Shared state of one load. Thread: the loading thread. */
struct LoadContext {
  DiagnosticSink& sink;
  MarkTable& marks;
  /** Map entries and list items read so far, aliases counted at each use. */
  size_t values_read = 0;
  /** Bytes of the keys and scalar values of those entries and items. */
  size_t text_bytes_read = 0;
  /** Set once a limit was passed (and reported): nothing more is read. */
  bool over_limit = false;
  /**
   * Each regular expression compiled in this load, with its error ("" when valid): a pattern
   * repeated through YAML aliases is compiled once, not once per use (a few kilobytes of pattern
   * behind a thousand aliases took half a minute).
   */
  std::unordered_map<std::string, std::string> regex_errors{};
};

/**
 * Counts the entries of a map or the items of a list about to be read at `mark`, with the bytes
 * of their scalar keys and values. Past kMaxConfigValues or kMaxConfigTextBytes reports one error
 * and returns false: callers then read nothing more, so the load ends quickly.
 */
bool takeValues(LoadContext& ctx, const YAML::Node& map_or_list, Mark mark);

/** 1-based position of a node; {0,0} when yaml-cpp has none. */
Mark markOf(const YAML::Node& node);
/** "a mapping", "a list", "null", "\"abc\"", "5" — for `expected X, got Y`. */
std::string describe(const YAML::Node& node);
/** parent + ".field" (just "field" at the root). */
std::string joinPath(const std::string& parent, std::string_view field);
/** parent + "[i]". */
std::string indexPath(const std::string& parent, size_t index);

/** The node is a scalar written as a plain (unquoted, untagged) YAML scalar. */
bool isPlainScalar(const YAML::Node& node);

// Readers for one value; `node` must be defined. Each returns false after reporting an error.
bool readString(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                std::string& out);
bool readBool(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
              bool& out);
bool readInt(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
             int64_t& out, int64_t min, int64_t max);
bool readDouble(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                double& out, double min, double max);
bool readDuration(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                  Duration& out);
bool readByteSize(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                  uint64_t& out, uint64_t max);

/** One element of a YAML list, with its path ("routes[2]") and mark. */
struct ListItem {
  YAML::Node node;
  std::string path;
  Mark mark;
};

/**
 * A mapping checked against the fields it may have. Construction reports a non-mapping node,
 * unknown fields (with "did you mean"), and duplicate keys, and records every field's mark.
 * Typed getters leave `out` unchanged when the field is absent or invalid, so defaults survive.
 * Thread: the loading thread.
 */
class MapReader {
public:
  MapReader(LoadContext& ctx, const YAML::Node& node, std::string path, Mark mark,
            std::vector<std::string> known);

  bool isMap() const { return is_map_; }
  const std::string& path() const { return path_; }
  Mark mark() const { return mark_; }

  bool has(std::string_view name) const { return find(name) != nullptr; }
  std::string fieldPath(std::string_view name) const { return joinPath(path_, name); }
  /** Where the field's value is (its key when the value is empty); the map's mark if absent. */
  Mark fieldMark(std::string_view name) const;
  /** Key position of the field; the map's mark if absent. */
  Mark keyMark(std::string_view name) const;
  /** The field's value node; an undefined node when absent. */
  YAML::Node node(std::string_view name) const;

  /** Reports `missing required field` unless present. */
  bool require(std::string_view name);
  /** Reports when more than one of `names` is present; returns how many are present. */
  int atMostOne(std::initializer_list<std::string_view> names);

  bool str(std::string_view name, std::string& out);
  bool boolean(std::string_view name, bool& out);
  bool number(std::string_view name, double& out, double min, double max);
  bool duration(std::string_view name, Duration& out);
  bool byteSize(std::string_view name, uint64_t& out,
                uint64_t max = std::numeric_limits<uint64_t>::max());
  bool byteSize32(std::string_view name, uint32_t& out);
  bool stringList(std::string_view name, std::vector<std::string>& out);

  template <typename T>
  bool integer(std::string_view name, T& out, int64_t min = 0,
               int64_t max = static_cast<int64_t>(std::min<uint64_t>(
                   std::numeric_limits<T>::max(), std::numeric_limits<int64_t>::max()))) {
    const Entry* e = find(name);
    int64_t value = 0;
    if (e == nullptr ||
        !readInt(ctx_, e->value, fieldPath(name), fieldMark(name), value, min, max)) {
      return false;
    }
    out = static_cast<T>(value);
    return true;
  }

  template <typename E>
  bool enumeration(std::string_view name, E& out,
                   const std::vector<std::pair<std::string, E>>& values) {
    std::string text;
    if (!has(name)) {
      return false;
    }
    if (!str(name, text)) {
      return false;
    }
    for (const auto& [spelling, value] : values) {
      if (spelling == text) {
        out = value;
        return true;
      }
    }
    std::vector<std::string> spellings;
    spellings.reserve(values.size());
    for (const auto& v : values) {
      spellings.push_back(v.first);
    }
    reportBadEnum(name, text, spellings);
    return false;
  }

  /** A nested mapping (null counts as an empty mapping); nullopt when absent or not a mapping. */
  std::optional<MapReader> map(std::string_view name, std::vector<std::string> known);
  /** Items of a list field (null counts as empty); empty after an error. */
  std::vector<ListItem> list(std::string_view name);

private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };
  const Entry* find(std::string_view name) const;
  void reportBadEnum(std::string_view name, const std::string& text,
                     const std::vector<std::string>& spellings);

  LoadContext& ctx_;
  std::string path_;
  Mark mark_;
  bool is_map_ = false;
  std::vector<Entry> entries_;
};

}  // namespace bulwark::config
