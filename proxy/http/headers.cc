#include "proxy/http/headers.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "common/swar.h"

namespace bulwark::http {

void HeaderMap::set(std::string_view name, std::string value) {
  remove(name);
  entries_.emplace_back(std::string(name), std::move(value));
}

size_t HeaderMap::remove(std::string_view name) {
  auto before = entries_.size();
  std::erase_if(entries_, [&](const Entry& e) { return e.first == name; });
  return before - entries_.size();
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.first == name) {
      return std::string_view(e.second);
    }
  }
  return std::nullopt;
}

size_t HeaderMap::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(),
                                           [&](const Entry& e) { return e.first == name; }));
}

std::optional<std::string> HeaderMap::getJoined(std::string_view name) const {
  std::optional<std::string> out;
  for (const auto& e : entries_) {
    if (e.first == name) {
      if (out) {
        out->append(", ").append(e.second);
      } else {
        out = e.second;
      }
    }
  }
  return out;
}

size_t HeaderMap::byteSize() const {
  size_t n = 0;
  for (const auto& e : entries_) {
    n += e.first.size() + e.second.size();
  }
  return n;
}

bool RequestHeaders::isGrpc() const {
  auto ct = headers.get("content-type");
  return ct && ct->substr(0, 16) == "application/grpc";
}

std::string_view trimOwsView(std::string_view value) {
  // Plain loops: find_first_not_of(" \t") calls memchr on the set for every byte it passes.
  const auto ows = [](char c) { return c == ' ' || c == '\t'; };
  size_t start = 0;
  while (start < value.size() && ows(value[start])) {
    ++start;
  }
  size_t end = value.size();
  while (end > start && ows(value[end - 1])) {
    --end;
  }
  return value.substr(start, end - start);
}

std::string trimOws(const std::string& value) { return std::string(trimOwsView(value)); }

void toLowerInPlace(std::string& s) {
  // ASCII only, eight bytes a step: this runs on every header name of every message.
  char* p = s.data();
  const size_t n = s.size();
  if (n >= sizeof(uint64_t)) {
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
      swar::store(p + i, swar::asciiLower(swar::load(p + i)));
    }
    if (i < n) {
      // The last word overlaps bytes already lowered; lowering is idempotent.
      const size_t last = n - sizeof(uint64_t);
      swar::store(p + last, swar::asciiLower(swar::load(p + last)));
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 'A' && p[i] <= 'Z') {
      p[i] = static_cast<char>(p[i] - 'A' + 'a');
    }
  }
}

void stripHopByHop(HeaderMap& headers) {
  // Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  if (auto connection = headers.getJoined("connection")) {
    std::string_view list = *connection;
    while (!list.empty()) {
      auto comma = list.find(',');
      auto token = list.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
        token.remove_prefix(1);
      }
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      std::string name(token);
      toLowerInPlace(name);
      // Never let a client strip end-to-end essentials through Connection.
      if (!name.empty() && name != "content-length" && name != "transfer-encoding" &&
          name != "host") {
        headers.remove(name);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      list.remove_prefix(comma + 1);
    }
  }
  // One pass over the headers, names told apart by length first (every message goes through
  // here, and almost none carries any of these but Connection).
  // "te" is hop-by-hop, but gRPC requires "te: trailers" end to end on HTTP/2; the HTTP/2
  // client codec adds it back for gRPC requests.
  headers.removeIf([](std::string_view name) {
    switch (name.size()) {
      case 2: return name == "te";
      case 7: return name == "upgrade";
      case 10: return name == "connection" || name == "keep-alive";
      case 14: return name == "http2-settings";
      case 16: return name == "proxy-connection";
      case 17: return name == "transfer-encoding";
      case 18: return name == "proxy-authenticate";
      case 19: return name == "proxy-authorization";
      default: return false;
    }
  });
}

bool isIdempotentMethod(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

std::string_view reasonPhrase(uint32_t status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace bulwark::http
