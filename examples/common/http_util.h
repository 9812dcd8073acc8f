#pragma once

// Small evhttp helpers shared by the example HTTP servers and the fault control endpoint.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct evhttp_connection;

namespace bulwark::examples {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/**
 * Binds `http` to 127.0.0.1:`port` (0 = any free port).
 * @return the bound port; `*handle` receives the listener so it can be closed on drain.
 */
Result<int> bindLoopback(evhttp* http, int port, evhttp_bound_socket** handle);

/** True when the peer of `evcon` is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
bool peerIsLoopback(evhttp_connection* evcon);

/** The whole request body as a string (copied; example bodies are small). */
std::string requestBody(evhttp_request* req);

/** A request header value, if present (case-insensitive name). */
std::optional<std::string> requestHeader(evhttp_request* req, const char* name);

/** HTTP method name ("GET", "POST", ...). */
std::string_view methodName(evhttp_request* req);

/** Splits the request URI into decoded path and raw query; false when the URI does not parse. */
bool splitUri(evhttp_request* req, std::string& path, std::string& query);

/** Value of `name` in a query string such as "status=done&x=1" (percent-decoded). */
std::optional<std::string> queryParam(const std::string& query, const std::string& name);

/** Sends a complete reply with `body` and `headers` (Content-Type included by the caller). */
void sendReply(evhttp_request* req, int status, const std::string& body, const HeaderList& headers);

/** The standard reason phrase for `status` ("Service Unavailable"), "" when unknown. */
const char* reasonPhrase(int status);

}  // namespace bulwark::examples
