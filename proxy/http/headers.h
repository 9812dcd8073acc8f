#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::http {

/**
 * Ordered header list with lower-case names (HTTP/2 rules; HTTP/1 names are lower-cased on
 * parse). Duplicates are kept in order. Small and linear on purpose: requests carry few headers.
 * Thread: value type, owning worker.
 */
class HeaderMap {
public:
  using Entry = std::pair<std::string, std::string>;

  void add(std::string name, std::string value) {
    if (entries_.capacity() == 0) {
      entries_.reserve(kInitialCapacity);  // one allocation for a typical message
    }
    entries_.emplace_back(std::move(name), std::move(value));
  }
  /** Replaces every header called name with one entry (appends when absent). */
  void set(std::string_view name, std::string value);
  /** Removes every header called name; returns how many were removed. */
  size_t remove(std::string_view name);
  /** Removes every header whose name satisfies `pred(std::string_view)`, in one pass. */
  template <typename Predicate>
  void removeIf(Predicate pred) {
    std::erase_if(entries_, [&](const Entry& e) { return pred(std::string_view(e.first)); });
  }
  /** First value of name, or nullopt. */
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  size_t count(std::string_view name) const;
  /** All values of name joined with ", " (RFC 9110 list semantics). */
  std::optional<std::string> getJoined(std::string_view name) const;

  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>& entries() { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  /** Sum of name and value lengths (for limits). */
  size_t byteSize() const;

private:
  static constexpr size_t kInitialCapacity = 12;
  std::vector<Entry> entries_;
};

/** A request's pseudo-headers plus its header list. */
struct RequestHeaders {
  std::string method;
  std::string path;       // origin-form target, with query
  std::string scheme;     // "http" unless set by the client
  std::string authority;  // :authority or Host
  HeaderMap headers;      // regular headers only (no pseudo-headers, no hop-by-hop after strip)
  int http_major = 1;
  int http_minor = 1;
  // An HTTP/1.1 protocol switch (Upgrade with Connection: upgrade): the protocol asked for,
  // lowercased ("websocket"); empty for an ordinary request. The hop-by-hop strip removed the
  // Upgrade and Connection headers; an upstream codec that forwards the switch writes them again
  // from this. A route that does not list the protocol in `upgrades` answers 403.
  std::string upgrade;
  // The TLS server name the client asked for (lower-case; empty without TLS or SNI).
  std::string sni;

  bool isGrpc() const;
};
using RequestHeadersPtr = std::unique_ptr<RequestHeaders>;

struct ResponseHeaders {
  uint32_t status = 200;
  HeaderMap headers;
};
using ResponseHeadersPtr = std::unique_ptr<ResponseHeaders>;

/** Removes hop-by-hop headers (RFC 9110 §7.6.1) including any named in Connection. */
void stripHopByHop(HeaderMap& headers);

/** The value without leading and trailing spaces and tabs (RFC 9112 §5.1 optional whitespace). */
std::string_view trimOwsView(std::string_view value);
std::string trimOws(const std::string& value);

/** Lower-cases ASCII in place. */
void toLowerInPlace(std::string& s);

/** True for methods RFC 9110 calls idempotent. */
bool isIdempotentMethod(std::string_view method);

/** Reason phrase for an HTTP status code ("OK", "Service Unavailable", ...). */
std::string_view reasonPhrase(uint32_t status);

}  // namespace bulwark::http
