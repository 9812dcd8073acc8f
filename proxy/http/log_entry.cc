#include "proxy/http/log_entry.h"

#include <charconv>
#include <cstdint>
#include <cstring>
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

constexpr uint64_t kEachByte = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// High bit set in some byte when a byte of `word` is below `bound` (<= 0x80). The borrow can
// mark a byte above one that really is below, never when none is: exact for "any byte".
constexpr uint64_t bytesBelow(uint64_t word, uint64_t bound) {
  return (word - kEachByte * bound) & ~word & kHighBits;
}

// True when some byte of `word` is one JSON escaping must look at: a control character, '"',
// '\\', or a non-ASCII byte (UTF-8 is checked sequence by sequence).
constexpr bool needsLook(uint64_t word) {
  return (bytesBelow(word, 0x20) | bytesBelow(word ^ (kEachByte * '"'), 1) |
          bytesBelow(word ^ (kEachByte * '\\'), 1) | (word & kHighBits)) != 0;
}

// Length of the leading run of `text` that goes out as it is: 8 bytes per step while no byte
// needs a look (a short tail too, padded with a plain byte), then byte by byte up to the first
// that does.
size_t plainPrefix(std::string_view text) {
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= text.size(); i += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof(word));
    if (needsLook(word)) {
      break;
    }
  }
  if (i + sizeof(uint64_t) > text.size() && i < text.size()) {
    uint64_t word = kEachByte * 'a';
    std::memcpy(&word, text.data() + i, text.size() - i);
    if (!needsLook(word)) {
      return text.size();
    }
  }
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
      break;
    }
  }
  return i;
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
  if (plainPrefix(text) == text.size()) {
    // Nothing to escape, the common case: one resize and one copy, quotes included.
    const size_t at = out.size();
    out.resize(at + text.size() + 2);
    char* p = out.data() + at;
    p[0] = '"';
    std::memcpy(p + 1, text.data(), text.size());
    p[text.size() + 1] = '"';
    return;
  }
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    // Runs of printable ASCII, the common case, go in one append.
    const size_t run = plainPrefix(text.substr(i));
    out.append(text.data() + i, run);
    i += run;
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
  out.reserve(1024);  // a typical line is 600-700 bytes: one allocation, no growth
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
  out.reserve(1024);  // a typical line is 600-700 bytes: one allocation, no growth
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
