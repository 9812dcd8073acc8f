#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/config/spec.h"
#include "proxy/http/headers.h"

namespace bulwark::upstream {

/**
 * The consistent-hashing key of one request for RING_HASH / MAGLEV upstreams
 * (loadBalancer.consistentHash): the first value of `httpHeaderName`, else the cookie
 * `httpCookieName`, else (useSourceIp) the downstream IP without its port. The router puts it
 * in LbContext::hash_key.
 * Thread: any (pure).
 * @param downstream_address the client's "ip:port" or "[v6]:port".
 * @return nullopt when the policy is not consistent hashing or the request lacks the input
 *         (the balancer then picks a random slot).
 */
std::optional<uint64_t> hashKeyFor(const config::UpstreamSpec& spec,
                                   const http::RequestHeaders& headers,
                                   std::string_view downstream_address);

/** @return the value of cookie `name` in the request's Cookie header(s), or nullopt. */
std::optional<std::string_view> findCookie(const http::HeaderMap& headers, std::string_view name);

/** @return the IP part of "ip:port" / "[v6]:port" (the input itself when it has no port). */

}  // namespace bulwark::upstream
