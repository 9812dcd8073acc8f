#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace bulwark::http {

/**
 * Appends `text` as a JSON string (quotes included): `"` `\` and control characters escaped,
 * bytes that are not UTF-8 replaced by U+FFFD, so any input gives a valid JSON line.
 */
void appendJsonString(std::string& out, std::string_view text);

/** Appends `value` in decimal. */
void appendNumber(std::string& out, int64_t value);

/** A value that writes itself as JSON text (an object, an array). Thread: its owner's. */
class JsonWritable {
public:
  virtual void appendJson(std::string& out) const = 0;

protected:
  ~JsonWritable() = default;
};

/**
 * One access-log line: fields in the order added, rendered straight to JSON or key=value text.
 * Building a JSON document per request instead costs a tree node and a few strings per field.
 * String fields added by view must outlive the rendering (the request's own strings do).
 * Thread: value type.
 */
class LogEntry {
public:
  LogEntry() { fields_.reserve(24); }

  // Keys are plain literals (no character JSON escapes), written as they are.

  /** A string field; the view must stay valid until rendered. */
  void add(std::string_view key, std::string_view value) {
    fields_.push_back({key, Kind::String, value, {}, 0, nullptr});
  }
  void add(std::string_view key, const char* value) { add(key, std::string_view(value)); }
  /** A string field that the entry keeps. */
  void addOwned(std::string_view key, std::string value) {
    fields_.push_back({key, Kind::OwnedString, {}, std::move(value), 0, nullptr});
  }
  template <typename Integer, typename = std::enable_if_t<std::is_integral_v<Integer> &&
                                                          !std::is_same_v<Integer, bool>>>
  void add(std::string_view key, Integer value) {
    fields_.push_back({key, Kind::Number, {}, {}, static_cast<int64_t>(value), nullptr});
  }
  /** A JSON array of strings. */
  void add(std::string_view key, const std::vector<std::string>& values);
  /** A field whose value is already JSON text (an object, an array). */
  void addJson(std::string_view key, std::string json) {
    fields_.push_back({key, Kind::Json, {}, std::move(json), 0, nullptr});
  }
  /** A field written by `value` when rendered (no text built in between); it must outlive that. */
  void addJson(std::string_view key, const JsonWritable& value) {
    fields_.push_back({key, Kind::Writer, {}, {}, 0, &value});
  }

  /** {"key":value,...} on one line, no newline. */
  std::string json() const;
  void appendJson(std::string& out) const;
  /** key=value pairs separated by spaces; strings with spaces, quotes or '=' (or empty) quoted. */
  std::string text() const;
  void appendText(std::string& out) const;

private:
  enum class Kind { String, OwnedString, Number, Json, Writer };
  struct Field {
    std::string_view key;
    Kind kind;
    std::string_view view;
    std::string owned;
    int64_t number;
    const JsonWritable* writer;
    std::string_view string() const { return kind == Kind::String ? view : owned; }
  };
  /** The most bytes appendJson writes for `f` (a writer: its key only). */
  static size_t boundOf(const Field& f);

  std::vector<Field> fields_;
};

}  // namespace bulwark::http
