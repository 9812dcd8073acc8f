#include "proxy/http/log_entry.h"

#include <charconv>
#include <iterator>

#include <fmt/format.h>

namespace bulwark::http {
namespace {

// Length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629 table), 0 if it is not.
size_t utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (i + length > text.size() || byte(i + 1) < low || byte(i + 1) > high) {
    return 0;
  }
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
      return 0;
    }
  }
  return length;
}

bool needsQuotes(std::string_view value) {
  return value.empty() || value.find_first_of(" \"=") != std::string_view::npos;
}

}  // namespace

void appendNumber(std::string& out, int64_t value) {
  char digits[24];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), value).ptr;
  out.append(digits, static_cast<size_t>(end - digits));
}

void appendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    // Runs of printable ASCII, the common case, go in one append.
    size_t run = i;
    while (run < text.size()) {
      const auto r = static_cast<unsigned char>(text[run]);
      if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\') {
        break;
      }
      ++run;
    }
    out.append(text.data() + i, run - i);
    i = run;
    if (i == text.size()) {
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = utf8SequenceLength(text, i);
      if (length == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD for a byte that starts no valid sequence
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

void LogEntry::add(std::string_view key, const std::vector<std::string>& values) {
  std::string json = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      json.push_back(',');
    }
    appendJsonString(json, values[i]);
  }
  json.push_back(']');
  addJson(key, std::move(json));
}

std::string LogEntry::json() const {
  std::string out;
  out.reserve(512);
  out.push_back('{');
  for (size_t i = 0; i < fields_.size(); ++i) {
    const Field& f = fields_[i];
    if (i > 0) {
      out.push_back(',');
    }
    appendJsonString(out, f.key);
    out.push_back(':');
    switch (f.kind) {
      case Kind::String:
      case Kind::OwnedString: appendJsonString(out, f.string()); break;
      case Kind::Number: appendNumber(out, f.number); break;
      case Kind::Json: out.append(f.owned); break;
    }
  }
  out.push_back('}');
  return out;
}

std::string LogEntry::text() const {
  std::string out;
  out.reserve(512);
  for (const Field& f : fields_) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    out.append(f.key).push_back('=');
    switch (f.kind) {
      case Kind::String:
      case Kind::OwnedString:
        if (needsQuotes(f.string())) {
          appendJsonString(out, f.string());
        } else {
          out.append(f.string());
        }
        break;
      case Kind::Number: appendNumber(out, f.number); break;
      case Kind::Json: out.append(f.owned); break;
    }
  }
  return out;
}

}  // namespace bulwark::http
