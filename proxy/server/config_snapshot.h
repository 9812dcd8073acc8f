#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "proxy/config/spec.h"
#include "proxy/config/tls_files.h"
#include "proxy/http/access_log.h"
#include "proxy/redis/redis_client.h"
#include "proxy/router/route_entry.h"
#include "proxy/tracing/tracer.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::server {

/**
 * Everything a worker needs to serve with one config version. Built on the main thread,
 * published to workers by shared_ptr; in-flight streams keep their snapshot alive (RCU).
 * Thread: immutable, any.
 */
struct ConfigSnapshot {
  config::ProxyConfigSpec spec;
  std::map<std::string, router::ListenerConfig> listeners;
  std::map<std::string, upstream::UpstreamSharedPtr> upstreams;
  http::AccessLogSharedPtr access_log;  // null when off; kept across reloads that keep its options
  // Every certificate the TLS contexts of this snapshot loaded, as read then (/certs).
  std::vector<config::CertificateInfo> certificates;
  // observability.tracing with an exporter; null: no spans.
  tracing::TracerConstSharedPtr tracer;
  // observability.explain.allowFrom, parsed.
  std::vector<Cidr> explain_allow_from;
  // Set when spec.redis is; the same object for the life of the process.
  std::shared_ptr<redis::RedisMetrics> redis_metrics;
  uint64_t generation = 0;
};
using ConfigSnapshotConstSharedPtr = std::shared_ptr<const ConfigSnapshot>;

}  // namespace bulwark::server
