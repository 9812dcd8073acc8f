#include "examples/common/http_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <cstring>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

namespace bulwark::examples {

Result<int> bindLoopback(evhttp* http, int port, evhttp_bound_socket** handle) {
  if (port < 0 || port > 65535) {
    return Status::error("port out of range: " + std::to_string(port));
  }
  evhttp_bound_socket* bound =
      evhttp_bind_socket_with_handle(http, "127.0.0.1", static_cast<uint16_t>(port));
  if (bound == nullptr) {
    return Status::error("cannot bind 127.0.0.1:" + std::to_string(port) + ": " +
                         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
  }
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&addr), &len) !=
      0) {
    return Status::error(std::string("getsockname: ") + std::strerror(errno));
  }
  if (handle != nullptr) {
    *handle = bound;
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

bool peerIsLoopback(evhttp_connection* evcon) {
  const sockaddr* addr = evhttp_connection_get_addr(evcon);
  if (addr == nullptr) {
    return false;
  }
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
      return true;
    }
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::string requestBody(evhttp_request* req) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  std::string body(len, '\0');
  if (len > 0) {
    evbuffer_copyout(in, body.data(), len);
  }
  return body;
}

std::optional<std::string> requestHeader(evhttp_request* req, const char* name) {
  const char* value = evhttp_find_header(evhttp_request_get_input_headers(req), name);
  if (value == nullptr) {
    return std::nullopt;
  }
  return std::string(value);
}

std::string_view methodName(evhttp_request* req) {
  switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
  }
  return "UNKNOWN";
}

bool splitUri(evhttp_request* req, std::string& path, std::string& query) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  if (uri == nullptr) {
    return false;
  }
  const char* raw_path = evhttp_uri_get_path(uri);
  const char* raw_query = evhttp_uri_get_query(uri);
  char* decoded =
      evhttp_uridecode(raw_path != nullptr && *raw_path != '\0' ? raw_path : "/", 0, nullptr);
  if (decoded == nullptr) {
    return false;
  }
  path = decoded;
  free(decoded);
  query = raw_query != nullptr ? raw_query : "";
  return true;
}

std::optional<std::string> queryParam(const std::string& query, const std::string& name) {
  evkeyvalq params;
  TAILQ_INIT(&params);
  if (evhttp_parse_query_str(query.c_str(), &params) != 0) {
    evhttp_clear_headers(&params);
    return std::nullopt;
  }
  std::optional<std::string> result;
  if (const char* value = evhttp_find_header(&params, name.c_str())) {
    result = value;
  }
  evhttp_clear_headers(&params);
  return result;
}

void sendReply(evhttp_request* req, int status, const std::string& body,
               const HeaderList& headers) {
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  for (const auto& [name, value] : headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, status, reasonPhrase(status), buf);
  evbuffer_free(buf);
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace bulwark::examples
