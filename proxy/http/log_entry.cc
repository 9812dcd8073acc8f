#include "proxy/http/log_entry.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "common/swar.h"

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

// An int64_t in decimal: 19 digits and a sign.
constexpr size_t kMaxNumberDigits = 20;

using swar::bytesBelow;
using swar::bytesEqual;
using swar::kEachByte;
using swar::kHighBits;

// True when some byte of `word` is one JSON escaping must look at: a control character, '"',
// '\\', or a non-ASCII byte (UTF-8 is checked sequence by sequence).
constexpr bool needsLook(uint64_t word) {
  return (bytesBelow(word, 0x20) | bytesEqual(word, '"') | bytesEqual(word, '\\') |
          (word & kHighBits)) != 0;
}

// Bytes a plain run may hold: printable ASCII other than '"' and '\\'.
constexpr std::array<bool, 256> kPlainByte = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) {
    plain[static_cast<size_t>(c)] = c != '"' && c != '\\';
  }
  return plain;
}();

// The `n` (1-7) bytes at `s` in the low bytes of a word, the rest zero, without a call to
// memcpy: bytes 0, n/2 and n-1 (n < 4) or two overlapping 4-byte loads.
uint64_t loadShort(const char* s, size_t n) {
  const auto byte = [s](size_t k) {
    return static_cast<uint64_t>(static_cast<unsigned char>(s[k]));
  };
  if (n >= 4) {
    uint32_t low;
    uint32_t high;
    std::memcpy(&low, s, sizeof(low));
    std::memcpy(&high, s + n - 4, sizeof(high));
    return static_cast<uint64_t>(low) | (static_cast<uint64_t>(high) << (8 * (n - 4)));
  }
  return byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)));
}

// Copies s[i, n) a word at a time while no byte of the word needs a look; returns where it
// stopped (a word that needs one, or fewer than 8 bytes left).
size_t copyPlainWords(const char* s, size_t i, size_t n, char*& p) {
  for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
    const uint64_t word = swar::load(s + i);
    if (needsLook(word)) {
      break;
    }
    std::memcpy(p, &word, sizeof(word));
    p += sizeof(word);
  }
  return i;
}

// Room writeJsonChars may write past what it returns (a whole word for a short tail).
constexpr size_t kJsonSlack = sizeof(uint64_t);

// Writes `text` escaped (no quotes) at `p`, which has room for kJsonBytesPerByte bytes per byte
// of `text` and kJsonSlack more; returns the end. A text with nothing to escape, the common
// case, goes in whole words: one for a text shorter than a word, else a word per 8 bytes and a
// last one overlapping the one before.
char* writeJsonChars(char* p, std::string_view text) {
  const char* s = text.data();
  const size_t n = text.size();
  size_t i = 0;
  if (n < sizeof(uint64_t)) {
    if (n == 0) {
      return p;
    }
    const uint64_t word = loadShort(s, n);
    if (!needsLook(word | (kEachByte * 'a' << (8 * n)))) {
      std::memcpy(p, &word, sizeof(word));
      return p + n;
    }
  } else {
    i = copyPlainWords(s, i, n, p);
    if (i == n) {
      return p;
    }
    if (i + sizeof(uint64_t) > n) {
      uint64_t last;
      std::memcpy(&last, s + n - sizeof(last), sizeof(last));
      if (!needsLook(last)) {
        std::memcpy(p - (i + sizeof(last) - n), &last, sizeof(last));
        return p + (n - i);
      }
    }
  }
  while (true) {
    i = copyPlainWords(s, i, n, p);
    for (; i < n && kPlainByte[static_cast<unsigned char>(s[i])]; ++i) {
      *p++ = s[i];
    }
    if (i == n) {
      return p;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t length = utf8SequenceLength(text, i);
      if (length == 0) {
        std::memcpy(p, "\xEF\xBF\xBD", 3);  // U+FFFD for a byte that starts no valid sequence
        p += 3;
        ++i;
      } else {
        std::memcpy(p, s + i, length);
        p += length;
        i += length;
      }
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"': *p++ = '"'; break;
      case '\\': *p++ = '\\'; break;
      case '\b': *p++ = 'b'; break;
      case '\f': *p++ = 'f'; break;
      case '\n': *p++ = 'n'; break;
      case '\r': *p++ = 'r'; break;
      case '\t': *p++ = 't'; break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char u[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        std::memcpy(p, u, sizeof(u));
        p += sizeof(u);
      }
    }
    ++i;
  }
}

// The most bytes writeJsonChars writes per input byte: a control character becomes \u00XX.
// (A byte that starts no valid UTF-8 sequence becomes the 3 bytes of U+FFFD.)
constexpr size_t kJsonBytesPerByte = 6;

char* writeJsonString(char* p, std::string_view text) {
  *p++ = '"';
  p = writeJsonChars(p, text);
  *p++ = '"';
  return p;
}

char* writeNumber(char* p, int64_t value) {
  return std::to_chars(p, p + kMaxNumberDigits, value).ptr;
}

bool needsQuotes(std::string_view value) {
  return value.empty() || value.find_first_of(" \"=") != std::string_view::npos;
}

}  // namespace

void appendNumber(std::string& out, int64_t value) {
  char digits[kMaxNumberDigits];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), value).ptr;
  out.append(digits, static_cast<size_t>(end - digits));
}

void appendJsonString(std::string& out, std::string_view text) {
  const size_t at = out.size();
  out.resize(at + kJsonBytesPerByte * text.size() + 2 + kJsonSlack);
  char* end = writeJsonString(out.data() + at, text);
  out.resize(static_cast<size_t>(end - out.data()));
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

size_t LogEntry::boundOf(const Field& f) {
  // ,"key": and the value
  const size_t framing = f.key.size() + 4;
  switch (f.kind) {
    case Kind::String:
    case Kind::OwnedString: return framing + kJsonBytesPerByte * f.string().size() + 2;
    case Kind::Number: return framing + kMaxNumberDigits;
    case Kind::Json: return framing + f.owned.size();
    case Kind::Writer: return framing;
  }
  return framing;
}

void LogEntry::appendJson(std::string& out) const {
  out.push_back('{');
  size_t i = 0;
  while (i < fields_.size()) {
    // Fields up to the next writer go through a raw pointer into room made once for all of
    // them: no capacity check or length update per byte or per field.
    size_t bound = 0;
    size_t end = i;
    for (; end < fields_.size() && fields_[end].kind != Kind::Writer; ++end) {
      bound += boundOf(fields_[end]);
    }
    if (end < fields_.size()) {
      bound += boundOf(fields_[end]);  // the writer's own key
    }
    const size_t at = out.size();
    out.resize(at + bound + kJsonSlack);
    char* p = out.data() + at;
    for (; i < fields_.size(); ++i) {
      const Field& f = fields_[i];
      if (i > 0) {
        *p++ = ',';
      }
      *p++ = '"';
      std::memcpy(p, f.key.data(), f.key.size());  // keys are plain literals
      p += f.key.size();
      *p++ = '"';
      *p++ = ':';
      if (f.kind == Kind::Writer) {
        break;
      }
      switch (f.kind) {
        case Kind::String:
        case Kind::OwnedString: p = writeJsonString(p, f.string()); break;
        case Kind::Number: p = writeNumber(p, f.number); break;
        case Kind::Json: p = std::copy(f.owned.begin(), f.owned.end(), p); break;
        case Kind::Writer: break;
      }
    }
    out.resize(static_cast<size_t>(p - out.data()));
    if (i < fields_.size()) {
      fields_[i].writer->appendJson(out);
      ++i;
    }
  }
  out.push_back('}');
}

std::string LogEntry::json() const {
  std::string out;
  appendJson(out);
  return out;
}

std::string LogEntry::text() const {
  std::string out;
  appendText(out);
  return out;
}

void LogEntry::appendText(std::string& out) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    const Field& f = fields_[i];
    if (i > 0) {
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
      case Kind::Writer: f.writer->appendJson(out); break;
    }
  }
}

}  // namespace bulwark::http
