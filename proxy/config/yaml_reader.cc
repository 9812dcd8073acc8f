#include "proxy/config/yaml_reader.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "proxy/config/byte_size.h"
#include "proxy/config/duration.h"
#include "proxy/config/suggest.h"

namespace bulwark::config {
namespace {

constexpr std::string_view kTagInt = "tag:yaml.org,2002:int";
constexpr std::string_view kTagFloat = "tag:yaml.org,2002:float";
constexpr std::string_view kTagBool = "tag:yaml.org,2002:bool";

/**
 * Names other proxies use for our fields (Envoy, Istio, gRPC service config). Offered as "did
 * you mean" when the target is a field of the mapping being read.
 */
struct Alias {
  std::string_view foreign;
  std::string_view ours;
};
constexpr Alias kAliases[] = {
    {"num_retries", "attempts"},
    {"numRetries", "attempts"},
    {"maxAttempts", "attempts"},
    {"retry_policy", "retries"},
    {"retryPolicy", "retries"},
    {"cluster", "upstream"},
    {"destination", "upstream"},
    {"timeout", "timeouts"},
    {"hosts", "endpoints"},
    {"lb_policy", "loadBalancer"},
    {"lbPolicy", "loadBalancer"},
    {"retry_budget", "budget"},
    {"retryBudget", "budget"},
    {"initialBackoff", "baseInterval"},
    {"maxBackoff", "maxInterval"},
    {"retry_back_off", "backoff"},
    {"circuit_breakers", "circuitBreaker"},
    {"per_try_timeout", "perTryTimeout"},
};

bool hasTag(const YAML::Node& node, std::string_view tag) { return node.Tag() == tag; }

/** Typed (not a quoted string): plain, or explicitly tagged int/float/bool. */
bool isTyped(const YAML::Node& node) {
  return isPlainScalar(node) || hasTag(node, kTagInt) || hasTag(node, kTagFloat) ||
         hasTag(node, kTagBool);
}

// Hand-written scanners instead of std::regex: libstdc++'s regex matcher recurses once per
// character, so a long scalar (a few hundred kilobytes of digits) overflows the stack.

/** Skips a run of digits at s[i]; returns how many there were. */
size_t skipDigits(std::string_view s, size_t& i) {
  const size_t start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    ++i;
  }
  return i - start;
}

/** [-+]?[0-9]+ */
bool looksLikeInteger(std::string_view s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return skipDigits(s, i) > 0 && i == s.size();
}

/** [-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)? */
bool looksLikeNumber(std::string_view s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t mantissa_digits = skipDigits(s, i);
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa_digits += skipDigits(s, i);
  }
  if (mantissa_digits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      ++i;
    }
    if (skipDigits(s, i) == 0) {
      return false;
    }
  }
  return i == s.size();
}

std::string formatNumber(double v) { return fmt::format("{}", v); }

}  // namespace

Mark markOf(const YAML::Node& node) {
  if (!node.IsDefined()) {
    return Mark{};
  }
  const YAML::Mark m = node.Mark();
  if (m.line < 0 || m.column < 0) {
    return Mark{};
  }
  return Mark{m.line + 1, m.column + 1};
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return "nothing";
    case YAML::NodeType::Scalar: break;
  }
  const std::string& s = node.Scalar();
  if (isTyped(node) && (looksLikeNumber(s) || s == "true" || s == "false")) {
    return s;
  }
  return fmt::format("\"{}\"", s);
}

std::string joinPath(const std::string& parent, std::string_view field) {
  if (parent.empty()) {
    return std::string(field);
  }
  return fmt::format("{}.{}", parent, field);
}

std::string indexPath(const std::string& parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

bool takeValues(LoadContext& ctx, const YAML::Node& map_or_list, Mark mark) {
  if (ctx.over_limit) {
    return false;  // reported once already
  }
  const auto scalar_bytes = [](const YAML::Node& node) {
    return node.IsScalar() ? node.Scalar().size() : 0;
  };
  ctx.values_read += map_or_list.size();
  if (map_or_list.IsMap()) {
    for (auto it = map_or_list.begin(); it != map_or_list.end(); ++it) {
      ctx.text_bytes_read += scalar_bytes(it->first) + scalar_bytes(it->second);
    }
  } else {
    for (const YAML::Node& item : map_or_list) {
      ctx.text_bytes_read += scalar_bytes(item);
    }
  }
  if (ctx.values_read <= kMaxConfigValues && ctx.text_bytes_read <= kMaxConfigTextBytes) {
    return true;
  }
  ctx.over_limit = true;
  ctx.sink.error(mark, "",
                 fmt::format("the config has more than {} values or {} MiB of text once YAML "
                             "aliases are expanded (an alias repeated inside aliased lists "
                             "multiplies them); reading stops here",
                             kMaxConfigValues, kMaxConfigTextBytes >> 20),
                 codes::kTooLarge);
  return false;
}

bool isPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "?"; }

bool readString(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                std::string& out) {
  if (!node.IsScalar()) {
    ctx.sink.error(mark, path, fmt::format("expected a string, got {}", describe(node)),
                   codes::kWrongType);
    return false;
  }
  out = node.Scalar();
  return true;
}

bool readBool(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
              bool& out) {
  if (node.IsScalar() && isTyped(node)) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      out = true;
      return true;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      out = false;
      return true;
    }
  }
  ctx.sink.error(mark, path, fmt::format("expected true or false, got {}", describe(node)),
                 codes::kWrongType);
  return false;
}

bool readInt(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
             int64_t& out, int64_t min, int64_t max) {
  if (!node.IsScalar() || !isTyped(node) || !looksLikeInteger(node.Scalar())) {
    const char* what = min >= 0 ? "a non-negative integer" : "an integer";
    ctx.sink.error(mark, path, fmt::format("expected {}, got {}", what, describe(node)),
                   codes::kWrongType);
    return false;
  }
  std::string s = node.Scalar();
  if (!s.empty() && s[0] == '+') {
    s.erase(0, 1);
  }
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    ctx.sink.error(mark, path, fmt::format("{} is too large", node.Scalar()), codes::kInvalidValue);
    return false;
  }
  if (value < 0 && min >= 0) {
    ctx.sink.error(mark, path, fmt::format("expected a non-negative integer, got {}", value),
                   codes::kInvalidValue);
    return false;
  }
  if (value < min || value > max) {
    std::string message =
        max == std::numeric_limits<int64_t>::max() || max >= (int64_t{1} << 32) - 1
            ? fmt::format("must be at least {}, got {}", min, value)
            : fmt::format("must be between {} and {}, got {}", min, max, value);
    if (value > max && max >= (int64_t{1} << 32) - 1) {
      message = fmt::format("{} is too large (at most {})", value, max);
    }
    ctx.sink.error(mark, path, message, codes::kInvalidValue);
    return false;
  }
  out = value;
  return true;
}

bool readDouble(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                double& out, double min, double max) {
  if (!node.IsScalar() || !isTyped(node) || !looksLikeNumber(node.Scalar())) {
    ctx.sink.error(mark, path, fmt::format("expected a number, got {}", describe(node)),
                   codes::kWrongType);
    return false;
  }
  double value = std::strtod(node.Scalar().c_str(), nullptr);
  if (!std::isfinite(value) || value < min || value > max) {
    ctx.sink.error(mark, path,
                   fmt::format("must be between {} and {}, got {}", formatNumber(min),
                               formatNumber(max), node.Scalar()),
                   codes::kInvalidValue);
    return false;
  }
  out = value;
  return true;
}

bool readDuration(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                  Duration& out) {
  if (!node.IsScalar()) {
    ctx.sink.error(mark, path, fmt::format("{}, got {}", kDurationHint, describe(node)),
                   codes::kWrongType);
    return false;
  }
  auto parsed = parseDuration(node.Scalar());
  if (!parsed) {
    ctx.sink.error(mark, path, parsed.error(), codes::kInvalidValue);
    return false;
  }
  out = *parsed;
  return true;
}

bool readByteSize(LoadContext& ctx, const YAML::Node& node, const std::string& path, Mark mark,
                  uint64_t& out, uint64_t max) {
  if (!node.IsScalar()) {
    ctx.sink.error(mark, path, fmt::format("{}, got {}", kByteSizeHint, describe(node)),
                   codes::kWrongType);
    return false;
  }
  auto parsed = parseByteSize(node.Scalar());
  if (!parsed) {
    ctx.sink.error(mark, path, parsed.error(), codes::kInvalidValue);
    return false;
  }
  if (*parsed > max) {
    ctx.sink.error(mark, path, fmt::format("{} is too large (at most {})", node.Scalar(), max),
                   codes::kInvalidValue);
    return false;
  }
  out = *parsed;
  return true;
}

MapReader::MapReader(LoadContext& ctx, const YAML::Node& node, std::string path, Mark mark,
                     std::vector<std::string> known)
    : ctx_(ctx), path_(std::move(path)), mark_(mark) {
  if (node.IsNull()) {
    is_map_ = true;  // `block:` with nothing after it: the block with its defaults.
    return;
  }
  if (!node.IsMap()) {
    ctx_.sink.error(mark_, path_, fmt::format("expected a mapping, got {}", describe(node)),
                    codes::kWrongType);
    return;
  }
  if (!takeValues(ctx_, node, mark_)) {
    return;
  }
  is_map_ = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;  // By value: `it->` yields a temporary proxy.
    const Mark key_mark = markOf(key);
    if (!key.IsScalar()) {
      ctx_.sink.error(key_mark, path_, "field names must be strings", codes::kWrongType);
      continue;
    }
    const std::string& name = key.Scalar();
    if (const Entry* first = find(name)) {
      ctx_.sink.error(key_mark, path_,
                      fmt::format("duplicate field \"{}\" (first set on line {})", name,
                                  markOf(first->key_node).line),
                      codes::kDuplicateKey);
      continue;
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string hint;
      for (const Alias& alias : kAliases) {
        if (alias.foreign == name &&
            std::find(known.begin(), known.end(), alias.ours) != known.end()) {
          hint = fmt::format("; did you mean \"{}\"?", alias.ours);
        }
      }
      if (hint.empty()) {
        hint = didYouMean(name, known);
      }
      if (hint.empty()) {
        hint = known.empty() ? std::string(" (this block takes no fields)")
                             : fmt::format(" (expected one of: {})", fmt::join(known, ", "));
      }
      ctx_.sink.error(key_mark, path_, fmt::format("unknown field \"{}\"{}", name, hint),
                      codes::kUnknownField);
      continue;
    }
    entries_.push_back(Entry{name, key, it->second});
    ctx_.marks.set(fieldPath(name), fieldMark(name));
  }
}

const MapReader::Entry* MapReader::find(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.key == name) {
      return &e;
    }
  }
  return nullptr;
}

Mark MapReader::fieldMark(std::string_view name) const {
  const Entry* e = find(name);
  if (e == nullptr) {
    return mark_;
  }
  if (e->value.IsNull() || markOf(e->value).line == 0) {
    return markOf(e->key_node);
  }
  return markOf(e->value);
}

Mark MapReader::keyMark(std::string_view name) const {
  const Entry* e = find(name);
  return e == nullptr ? mark_ : markOf(e->key_node);
}

YAML::Node MapReader::node(std::string_view name) const {
  const Entry* e = find(name);
  return e == nullptr ? YAML::Node(YAML::NodeType::Undefined) : e->value;
}

bool MapReader::require(std::string_view name) {
  if (has(name) || !is_map_) {
    return has(name);
  }
  ctx_.sink.error(mark_, path_, fmt::format("missing required field \"{}\"", name),
                  codes::kMissingField);
  return false;
}

int MapReader::atMostOne(std::initializer_list<std::string_view> names) {
  std::vector<std::string_view> present;
  for (std::string_view n : names) {
    if (has(n)) {
      present.push_back(n);
    }
  }
  if (present.size() > 1) {
    ctx_.sink.error(
        keyMark(present[1]), path_,
        fmt::format(R"("{}" and "{}" cannot be used together; choose one)", present[0], present[1]),
        codes::kConflictingFields);
  }
  return static_cast<int>(present.size());
}

bool MapReader::str(std::string_view name, std::string& out) {
  const Entry* e = find(name);
  return e != nullptr && readString(ctx_, e->value, fieldPath(name), fieldMark(name), out);
}

bool MapReader::boolean(std::string_view name, bool& out) {
  const Entry* e = find(name);
  return e != nullptr && readBool(ctx_, e->value, fieldPath(name), fieldMark(name), out);
}

bool MapReader::number(std::string_view name, double& out, double min, double max) {
  const Entry* e = find(name);
  return e != nullptr &&
         readDouble(ctx_, e->value, fieldPath(name), fieldMark(name), out, min, max);
}

bool MapReader::duration(std::string_view name, Duration& out) {
  const Entry* e = find(name);
  return e != nullptr && readDuration(ctx_, e->value, fieldPath(name), fieldMark(name), out);
}

bool MapReader::byteSize(std::string_view name, uint64_t& out, uint64_t max) {
  const Entry* e = find(name);
  return e != nullptr && readByteSize(ctx_, e->value, fieldPath(name), fieldMark(name), out, max);
}

bool MapReader::byteSize32(std::string_view name, uint32_t& out) {
  uint64_t value = 0;
  if (!byteSize(name, value, std::numeric_limits<uint32_t>::max())) {
    return false;
  }
  out = static_cast<uint32_t>(value);
  return true;
}

bool MapReader::stringList(std::string_view name, std::vector<std::string>& out) {
  if (!has(name)) {
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  for (const ListItem& item : list(name)) {
    std::string s;
    if (readString(ctx_, item.node, item.path, item.mark, s)) {
      values.push_back(std::move(s));
    } else {
      ok = false;
    }
  }
  const YAML::Node n = node(name);
  if (!ok || !(n.IsSequence() || n.IsNull())) {
    return false;
  }
  out = std::move(values);
  return true;
}

std::optional<MapReader> MapReader::map(std::string_view name, std::vector<std::string> known) {
  const Entry* e = find(name);
  if (e == nullptr) {
    return std::nullopt;
  }
  MapReader nested(ctx_, e->value, fieldPath(name), fieldMark(name), std::move(known));
  if (!nested.isMap()) {
    return std::nullopt;
  }
  return nested;
}

std::vector<ListItem> MapReader::list(std::string_view name) {
  std::vector<ListItem> items;
  const Entry* e = find(name);
  if (e == nullptr || e->value.IsNull()) {
    return items;
  }
  if (!e->value.IsSequence()) {
    ctx_.sink.error(fieldMark(name), fieldPath(name),
                    fmt::format("expected a list, got {}", describe(e->value)), codes::kWrongType);
    return items;
  }
  if (!takeValues(ctx_, e->value, fieldMark(name))) {
    return items;
  }
  size_t i = 0;
  for (const YAML::Node& element : e->value) {
    Mark m = markOf(element);
    if (m.line == 0 || element.IsNull()) {
      m = fieldMark(name);
    }
    std::string p = indexPath(fieldPath(name), i++);
    ctx_.marks.set(p, m);
    items.push_back(ListItem{element, std::move(p), m});
  }
  return items;
}

void MapReader::reportBadEnum(std::string_view name, const std::string& text,
                              const std::vector<std::string>& spellings) {
  ctx_.sink.error(fieldMark(name), fieldPath(name),
                  fmt::format("expected one of {}, got \"{}\"{}", fmt::join(spellings, ", "), text,
                              didYouMean(text, spellings)),
                  codes::kInvalidValue);
}

}  // namespace bulwark::config
