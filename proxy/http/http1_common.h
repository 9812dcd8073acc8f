#pragma once

// What the HTTP/1 server and client codecs share: reading header fields that llhttp hands over
// in pieces, checking what it let through, the counted read-disable of their connection, and
// passing the connection's watermarks on to the one active stream.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/swar.h"
#include "proxy/http/codec.h"
#include "proxy/http/headers.h"
#include "proxy/network/codec_connection.h"

namespace bulwark::http {

// RFC 9110 field-value: VCHAR, obs-text, SP and HTAB only. Anything else (NUL, CR, LF, other
// controls) is a smuggling or injection shape.
inline bool validHttp1HeaderValue(std::string_view v) {
  // Eight bytes per step while none is a control character or DEL; a word holding one (a tab
  // is allowed, so it lands here too) and the rest go byte by byte.
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= v.size(); i += sizeof(uint64_t)) {
    const uint64_t word = swar::load(v.data() + i);
    if ((swar::bytesBelow(word, 0x20) | swar::bytesEqual(word, 0x7f)) != 0) {
      break;
    }
  }
  for (; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

/** RFC 9110 tchar: the bytes a field name may hold. */
inline constexpr std::array<bool, 256> kHttpTokenChar = [] {
  std::array<bool, 256> token{};
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~0123456789"
                                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
    token[c] = true;
  }
  return token;
}();

// RFC 9110 §5.1: a field name is a token. llhttp (as Debian builds it, not in strict mode) lets
// an empty name or one with SP through ("Content-Length : 5"); a hop behind us, or the client
// a response goes back to, could read those differently.
inline bool validHttp1HeaderName(std::string_view n) {
  if (n.empty()) {
    return false;
  }
  for (unsigned char c : n) {
    if (!kHttpTokenChar[c]) {
      return false;
    }
  }
  return true;
}

/**
 * One header section being read from llhttp callbacks: a field's name and value may each
 * arrive in several pieces, and the section's size is bounded. Each field is checked for what
 * llhttp lets through (validHttp1HeaderName, validHttp1HeaderValue) as it is finished, while its
 * bytes are still in cache. Thread: owning worker.
 */
class Http1HeaderReader {
public:
  /** A new message: nothing read, nothing counted, nothing invalid. */
  void reset() {
    field_.clear();
    value_.clear();
    in_value_ = false;
    bytes_ = 0;
    invalid_ = nullptr;
  }
  /** Counts `len` more bytes of the header section. @return false once they pass `limit`. */
  bool count(size_t len, size_t limit) {
    bytes_ += len;
    return bytes_ <= limit;
  }
  /** A piece of a field name; the field whose value was being read ends first, into `into`. */
  void appendName(std::string_view piece, HeaderMap& into) {
    if (in_value_) {
      finish(into);
    }
    field_.append(piece);
  }
  void appendValue(std::string_view piece) {
    in_value_ = true;
    value_.append(piece);
  }
  bool hasName() const { return !field_.empty(); }
  bool inValue() const { return in_value_; }
  /** Ends the field being read, if any: name lower-cased, value trimmed, added to `into`. */
  void finish(HeaderMap& into) {
    if (field_.empty()) {
      return;
    }
    toLowerInPlace(field_);
    const std::string_view value = trimOwsView(value_);
    if (invalid_ == nullptr) {
      if (!validHttp1HeaderName(field_)) {
        invalid_ = "http1.invalid_header_name";
      } else if (!validHttp1HeaderValue(value)) {
        invalid_ = "http1.invalid_header_value";
      }
    }
    if (value.size() == value_.size()) {
      into.add(std::move(field_), std::move(value_));  // nothing to trim: no copy
    } else {
      into.add(std::move(field_), std::string(value));
    }
    field_.clear();
    value_.clear();
    in_value_ = false;
  }
  /**
   * The rule the first invalid field finished since reset() broke ("http1.invalid_header_name"
   * or "http1.invalid_header_value"), or null when every field was valid.
   */
  const char* firstInvalid() const { return invalid_; }

private:
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  size_t bytes_ = 0;
  const char* invalid_ = nullptr;
};

/**
 * Writes an HTTP/1 message head straight into room reserved at the end of a connection's output
 * (CodecConnection::reserveOutput): no string grown piece by piece and copied again. The caller
 * reserves an upper bound of what it writes (headLength() helps) and commits size().
 * Thread: the codec's.
 */
class HeadWriter {
public:
  explicit HeadWriter(char* room) : begin_(room), end_(room) {}
  HeadWriter& put(std::string_view text) {
    std::memcpy(end_, text.data(), text.size());
    end_ += text.size();
    return *this;
  }
  /** "name: value\r\n" */
  HeadWriter& field(std::string_view name, std::string_view value) {
    put(name);
    end_[0] = ':';
    end_[1] = ' ';
    end_ += 2;
    put(value);
    return crlf();
  }
  HeadWriter& crlf() {
    end_[0] = '\r';
    end_[1] = '\n';
    end_ += 2;
    return *this;
  }
  char* room() const { return begin_; }
  size_t size() const { return static_cast<size_t>(end_ - begin_); }

private:
  char* begin_;
  char* end_;
};

/** Upper bound of the bytes `headers` takes as "name: value\r\n" lines. */
inline size_t headLength(const HeaderMap& headers) {
  return headers.byteSize() + 4 * headers.size();
}

/**
 * Read-disable requests counted, so the connection reads again only when every disable has
 * been matched by an enable (the stream and the codec may both hold one). Thread: owning worker.
 */
class Http1ReadDisable {
public:
  void apply(network::CodecConnection& connection, bool disable) {
    if (disable) {
      ++count_;
      connection.readDisable(true);
    } else if (count_ > 0) {
      --count_;
      connection.readDisable(false);
    }
  }

  /** The stream is gone: whatever it held is released (one enable, as the codecs always did). */
  void clear(network::CodecConnection& connection) {
    if (count_ > 0) {
      connection.readDisable(false);
      count_ = 0;
    }
  }

private:
  int count_ = 0;
};

/** Tells the active stream, if any, that the connection's send buffer crossed a watermark. */
inline void forwardWatermark(bool stream_active, StreamCallbacks* callbacks, bool above_high) {
  if (!stream_active || callbacks == nullptr) {
    return;
  }
  if (above_high) {
    callbacks->onAboveWriteBufferHighWatermark();
  } else {
    callbacks->onBelowWriteBufferLowWatermark();
  }
}

}  // namespace bulwark::http
