#include "proxy/config/parser.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "common/cidr.h"
#include "common/grpc_status.h"
#include "proxy/config/address.h"
#include "proxy/config/duration.h"
#include "proxy/config/inheritance.h"
#include "proxy/config/suggest.h"
#include "proxy/config/tls_files.h"
#include "proxy/config/validate.h"
#include "proxy/config/vocabulary.h"
#include "proxy/config/yaml_reader.h"

namespace bulwark::config {
namespace {

using Fields = std::vector<std::string>;

std::string toLower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// ---------------------------------------------------------------------------------------------
// Small typed fields shared by several blocks.

/** Names of listeners, upstreams and routes end up in metric labels and references. */
void readName(LoadContext& ctx, MapReader& m, std::string& out) {
  if (!m.require("name") || !m.str("name", out)) {
    return;
  }
  static const RE2 kName("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  if (!RE2::FullMatch(out, kName)) {
    ctx.sink.error(m.fieldMark("name"), m.fieldPath("name"),
                   fmt::format("name \"{}\" must start with a letter or digit and contain only "
                               "letters, digits, \".\", \"_\" and \"-\" (at most 128)",
                               out),
                   codes::kInvalidValue);
    out.clear();
  }
}

/** HTTP field names are case-insensitive; store them lower-cased (pseudo-headers allowed). */
bool readHeaderName(LoadContext& ctx, MapReader& m, std::string_view field, std::string& out) {
  std::string value;
  if (!m.str(field, value)) {
    return false;
  }
  static const RE2 kToken(":?[!#$%&'*+.^_`|~0-9A-Za-z-]+");
  if (!RE2::FullMatch(value, kToken)) {
    ctx.sink.error(m.fieldMark(field), m.fieldPath(field),
                   fmt::format("\"{}\" is not a valid HTTP header name", value),
                   codes::kInvalidValue);
    return false;
  }
  out = toLower(value);
  return true;
}

void readRegex(LoadContext& ctx, MapReader& m, std::string_view field, std::string& out) {
  if (!m.str(field, out)) {
    return;
  }
  auto [verdict, first_use] = ctx.regex_errors.try_emplace(out);
  if (first_use) {
    RE2::Options options;
    options.set_log_errors(false);
    RE2 re(out, options);
    if (!re.ok()) {
      verdict->second = re.error().empty() ? std::string("does not compile") : re.error();
    }
  }
  if (!verdict->second.empty()) {
    ctx.sink.error(m.fieldMark(field), m.fieldPath(field),
                   fmt::format("invalid regular expression \"{}\": {}", out, verdict->second),
                   codes::kBadRegex);
  }
}

void readMethods(LoadContext& ctx, MapReader& m, std::string_view field,
                 std::vector<std::string>& out) {
  if (!m.has(field)) {
    return;
  }
  std::vector<std::string> methods;
  for (const ListItem& item : m.list(field)) {
    std::string method;
    if (!readString(ctx, item.node, item.path, item.mark, method)) {
      continue;
    }
    const auto& known = httpMethods();
    if (std::find(known.begin(), known.end(), method) == known.end()) {
      ctx.sink.error(item.mark, item.path,
                     fmt::format("unknown HTTP method \"{}\"{}", method, didYouMean(method, known)),
                     codes::kInvalidValue);
      continue;
    }
    if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
      methods.push_back(method);
    }
  }
  out = std::move(methods);
}

void readStatusCodes(LoadContext& ctx, MapReader& m, std::string_view field,
                     std::vector<uint32_t>& out) {
  if (!m.has(field)) {
    return;
  }
  std::vector<uint32_t> codes_out;
  for (const ListItem& item : m.list(field)) {
    int64_t code = 0;
    if (readInt(ctx, item.node, item.path, item.mark, code, 100, 599)) {
      codes_out.push_back(static_cast<uint32_t>(code));
    }
  }
  out = std::move(codes_out);
}

void readGrpcStatus(LoadContext& ctx, MapReader& m, std::string_view field, std::string& out) {
  std::string value;
  if (!m.str(field, value)) {
    return;
  }
  const auto& names = grpcStatusNames();
  if (std::find(names.begin(), names.end(), value) == names.end()) {
    const std::vector<std::string> candidates(names.begin(), names.end());
    ctx.sink.error(
        m.fieldMark(field), m.fieldPath(field),
        fmt::format("unknown gRPC status \"{}\"{}", value, didYouMean(value, candidates)),
        codes::kInvalidValue);
    return;
  }
  out = value;
}

/** A list of words from a fixed vocabulary. */
void readWordList(LoadContext& ctx, MapReader& m, std::string_view field,
                  const std::vector<std::string>& vocabulary, std::string_view what,
                  std::vector<std::string>& out) {
  if (!m.has(field)) {
    return;
  }
  std::vector<std::string> words;
  for (const ListItem& item : m.list(field)) {
    std::string word;
    if (!readString(ctx, item.node, item.path, item.mark, word)) {
      continue;
    }
    if (std::find(vocabulary.begin(), vocabulary.end(), word) == vocabulary.end()) {
      ctx.sink.error(item.mark, item.path,
                     fmt::format("unknown {} \"{}\"{}", what, word, didYouMean(word, vocabulary)),
                     codes::kInvalidValue);
      continue;
    }
    words.push_back(word);
  }
  out = std::move(words);
}

// ---------------------------------------------------------------------------------------------
// Policy blocks (defaults and routes).

TimeoutsSpec parseTimeouts(LoadContext& ctx, MapReader& m) {
  (void)ctx;
  TimeoutsSpec t;
  m.duration("request", t.request);
  m.duration("idle", t.idle);
  if (auto g = m.map("grpc", {"honorDeadline", "deadlineOffset", "maxDeadline"})) {
    g->boolean("honorDeadline", t.grpc.honor_deadline);
    g->duration("deadlineOffset", t.grpc.deadline_offset);
    g->duration("maxDeadline", t.grpc.max_deadline);
  }
  return t;
}

void readRetryOn(LoadContext& ctx, MapReader& m, std::vector<std::string>& out) {
  if (!m.has("retryOn")) {
    return;
  }
  // A YAML list of tokens; a CSV string is accepted so Istio's retryOn can be pasted as is.
  std::vector<std::pair<std::string, std::pair<std::string, Mark>>> tokens;  // token, path, mark
  const YAML::Node node = m.node("retryOn");
  if (node.IsScalar()) {
    std::stringstream ss(node.Scalar());
    std::string token;
    while (std::getline(ss, token, ',')) {
      token.erase(0, token.find_first_not_of(' '));
      token.erase(token.find_last_not_of(' ') + 1);
      tokens.push_back({token, {m.fieldPath("retryOn"), m.fieldMark("retryOn")}});
    }
  } else {
    for (const ListItem& item : m.list("retryOn")) {
      std::string token;
      if (readString(ctx, item.node, item.path, item.mark, token)) {
        tokens.push_back({token, {item.path, item.mark}});
      }
    }
  }
  std::vector<std::string> result;
  const auto& known = allRetryOnTokens();
  for (const auto& [token, where] : tokens) {
    if (std::find(known.begin(), known.end(), token) != known.end()) {
      if (std::find(result.begin(), result.end(), token) == result.end()) {
        result.push_back(token);
      }
      continue;
    }
    std::string hint = didYouMean(token, known);
    if (hint.empty() && !token.empty() &&
        token.find_first_not_of("0123456789") == std::string::npos) {
      hint = "; put status codes in retriableStatusCodes and add retriable-status-codes";
    }
    ctx.sink.error(where.second, where.first,
                   fmt::format("unknown retryOn token \"{}\"{}", token, hint),
                   codes::kInvalidValue);
  }
  out = std::move(result);
}

RetriesSpec parseRetries(LoadContext& ctx, MapReader& m) {
  RetriesSpec r;
  m.integer("attempts", r.attempts, 1);
  m.duration("perTryTimeout", r.per_try_timeout);
  readRetryOn(ctx, m, r.retry_on);
  readStatusCodes(ctx, m, "retriableStatusCodes", r.retriable_status_codes);
  const bool has_codes_token =
      std::find(r.retry_on.begin(), r.retry_on.end(), "retriable-status-codes") != r.retry_on.end();
  if (!r.retriable_status_codes.empty() && !has_codes_token) {
    ctx.sink.warning(m.fieldMark("retriableStatusCodes"), m.fieldPath("retriableStatusCodes"),
                     "has no effect without the retryOn token \"retriable-status-codes\"",
                     codes::kIneffectiveSetting);
  }
  if (has_codes_token && r.retriable_status_codes.empty()) {
    ctx.sink.warning(m.fieldMark("retryOn"), m.fieldPath("retryOn"),
                     "\"retriable-status-codes\" has no effect without retriableStatusCodes",
                     codes::kIneffectiveSetting);
  }
  if (auto b = m.map("backoff", {"baseInterval", "maxInterval", "jitter"})) {
    const bool has_base = b->duration("baseInterval", r.backoff.base_interval);
    const bool has_max = b->duration("maxInterval", r.backoff.max_interval);
    if (has_base && !b->has("maxInterval")) {
      // Envoy: max defaults to 10x base. Capped at the largest duration a config can spell, so
      // `check --print-effective` prints a value that parses back.
      r.backoff.max_interval = std::min(r.backoff.base_interval * 10, kMaxConfigDuration);
    }
    if (has_base && has_max && r.backoff.base_interval > r.backoff.max_interval) {
      ctx.sink.error(b->fieldMark("baseInterval"), b->fieldPath("baseInterval"),
                     fmt::format("baseInterval {} is greater than maxInterval {}",
                                 b->node("baseInterval").Scalar(), b->node("maxInterval").Scalar()),
                     codes::kInconsistentValues);
    }
    b->enumeration<Jitter>(
        "jitter", r.backoff.jitter,
        {{"full", Jitter::Full}, {"equal", Jitter::Equal}, {"none", Jitter::None}});
  }
  if (auto b = m.map("budget", {"percent", "minRetryConcurrency"})) {
    b->number("percent", r.budget.percent, 0, 100);
    b->integer("minRetryConcurrency", r.budget.min_retry_concurrency);
  }
  m.boolean("retryIgnorePreviousHosts", r.retry_ignore_previous_hosts);
  m.boolean("respectRetryAfter", r.respect_retry_after);
  m.duration("maxRetryAfter", r.max_retry_after);
  m.enumeration<NonIdempotentPolicy>(
      "nonIdempotent", r.non_idempotent,
      {{"never", NonIdempotentPolicy::Never},
       {"withIdempotencyKey", NonIdempotentPolicy::WithIdempotencyKey},
       {"always", NonIdempotentPolicy::Always}});
  m.byteSize("retryBufferLimit", r.retry_buffer_limit);
  return r;
}

HedgingSpec parseHedging(LoadContext& ctx, MapReader& m) {
  HedgingSpec h;
  if (m.has("delay") && m.node("delay").IsScalar() && m.node("delay").Scalar() == "auto") {
    h.delay_auto = true;
  } else {
    m.duration("delay", h.delay);
  }
  m.duration("minDelay", h.min_delay);
  m.number("percentile", h.percentile, 50, 99.9);
  if (!h.delay_auto && (m.has("minDelay") || m.has("percentile"))) {
    const std::string field = m.has("minDelay") ? "minDelay" : "percentile";
    ctx.sink.error(m.fieldMark(field), m.fieldPath(field), "only applies with delay: auto",
                   codes::kConflictingFields);
  }
  m.integer("maxRequests", h.max_requests, 2, 10);
  return h;
}

/** `mode` of a protective policy: enforce (refuse) or dryRun (decide, count, let through). */
void readMode(MapReader& m, std::string& mode) {
  m.enumeration<std::string>("mode", mode, {{"enforce", "enforce"}, {"dryRun", "dryRun"}});
}

BulkheadSpec parseBulkhead(LoadContext& ctx, MapReader& m) {
  BulkheadSpec b;
  m.integer("maxConcurrentRequests", b.max_concurrent_requests, 1);
  readMode(m, b.mode);
  m.integer("maxQueuedRequests", b.max_queued_requests);
  m.duration("queueTimeout", b.queue_timeout);
  if (auto p = m.map("partitionBy", {"header"})) {
    p->require("header");
    readHeaderName(ctx, *p, "header", b.partition_header);
  }
  m.integer("maxConcurrentPerPartition", b.max_concurrent_per_partition);
  if (m.has("maxConcurrentPerPartition") && !m.has("partitionBy")) {
    ctx.sink.error(m.keyMark("maxConcurrentPerPartition"), m.fieldPath("maxConcurrentPerPartition"),
                   "needs partitionBy.header", codes::kInconsistentValues);
  }
  return b;
}

LoadSheddingSpec parseLoadShedding(LoadContext& ctx, MapReader& m) {
  LoadSheddingSpec s;
  readMode(m, s.mode);
  if (auto a = m.map("adaptiveConcurrency",
                     {"algorithm", "minLimit", "maxLimit", "latencyPercentile", "window"})) {
    AdaptiveConcurrencySpec ac;
    a->enumeration<std::string>("algorithm", ac.algorithm,
                                {{"gradient", "gradient"}, {"aimd", "aimd"}});
    const bool has_min = a->integer("minLimit", ac.min_limit, 1);
    const bool has_max = a->integer("maxLimit", ac.max_limit, 1);
    if ((has_min || has_max) && ac.min_limit > ac.max_limit) {
      ctx.sink.error(
          a->fieldMark(has_min ? "minLimit" : "maxLimit"),
          a->fieldPath(has_min ? "minLimit" : "maxLimit"),
          fmt::format("minLimit {} is greater than maxLimit {}", ac.min_limit, ac.max_limit),
          codes::kInconsistentValues);
    }
    a->number("latencyPercentile", ac.latency_percentile, 0.01, 1);
    a->duration("window", ac.window);
    s.adaptive_concurrency = ac;
  }
  if (m.has("priorityHeader")) {
    readHeaderName(ctx, m, "priorityHeader", s.priority_header);
  }
  if (auto r = m.map("reject", {"httpStatus", "grpcStatus", "retryAfter"})) {
    r->integer("httpStatus", s.reject.http_status, 400, 599);
    readGrpcStatus(ctx, *r, "grpcStatus", s.reject.grpc_status);
    r->duration("retryAfter", s.reject.retry_after);
  }
  return s;
}

RateLimitSpec parseRateLimit(LoadContext& ctx, MapReader& m) {
  RateLimitSpec r;
  if (m.require("requestsPerSecond")) {
    if (m.number("requestsPerSecond", r.requests_per_second, 0, 1e9) &&
        r.requests_per_second <= 0) {
      ctx.sink.error(m.fieldMark("requestsPerSecond"), m.fieldPath("requestsPerSecond"),
                     "must be greater than 0 (remove the block to disable rate limiting)",
                     codes::kInvalidValue);
    }
  }
  m.integer("burst", r.burst);
  readMode(m, r.mode);
  if (auto k = m.map("key", {"header", "clientIp"})) {
    if (k->atMostOne({"header", "clientIp"}) == 0) {
      ctx.sink.error(k->mark(), k->path(), R"(needs one of "header" or "clientIp")",
                     codes::kMissingField);
    }
    if (k->has("header")) {
      readHeaderName(ctx, *k, "header", r.key_header);
    }
    k->boolean("clientIp", r.key_client_ip);
  }
  m.enumeration<std::string>("headers", r.headers,
                             {{"draft", "draft"}, {"legacy", "legacy"}, {"off", "off"}});
  m.enumeration<std::string>("scope", r.scope, {{"local", "local"}, {"global", "global"}});
  const bool has_mode = m.enumeration<std::string>(
      "failureMode", r.failure_mode, {{"allow", "allow"}, {"deny", "deny"}, {"local", "local"}});
  const bool has_instances = m.integer("expectedInstances", r.expected_instances, 1, 100000);
  if ((has_mode || has_instances) && r.scope != "global") {
    const char* field = has_mode ? "failureMode" : "expectedInstances";
    ctx.sink.error(m.fieldMark(field), m.fieldPath(field),
                   "only applies to scope: global (a local limit never waits for Redis)",
                   codes::kConflictingFields);
  } else if (has_instances && r.failure_mode != "local") {
    ctx.sink.error(m.fieldMark("expectedInstances"), m.fieldPath("expectedInstances"),
                   "only applies to failureMode: local", codes::kConflictingFields);
  }
  return r;
}

IdempotencySpec parseIdempotency(LoadContext& ctx, MapReader& m) {
  IdempotencySpec i;
  if (m.has("header")) {
    readHeaderName(ctx, m, "header", i.header);
  }
  readMethods(ctx, m, "requiredFor", i.required_for);
  m.enumeration<std::string>("onMissing", i.on_missing,
                             {{"noRetry", "noRetry"}, {"reject", "reject"}});
  if (auto d = m.map("dedupe", {"enabled", "ttl", "maxEntries", "fingerprint", "maxBodyBytes",
                                "store", "lease", "failureMode"})) {
    d->boolean("enabled", i.dedupe_enabled);
    d->duration("ttl", i.dedupe_ttl);
    d->integer("maxEntries", i.dedupe_max_entries, 1);
    readWordList(ctx, *d, "fingerprint", {"method", "path", "bodySha256"}, "fingerprint part",
                 i.dedupe_fingerprint);
    d->byteSize("maxBodyBytes", i.dedupe_max_body_bytes);
    d->enumeration<std::string>("store", i.dedupe_store,
                                {{"memory", "memory"}, {"redis", "redis"}});
    const bool has_lease = d->duration("lease", i.dedupe_lease);
    if (has_lease && i.dedupe_lease.count() == 0) {
      ctx.sink.error(d->fieldMark("lease"), d->fieldPath("lease"), "must be greater than 0s",
                     codes::kInvalidValue);
    }
    const bool has_mode = d->enumeration<std::string>("failureMode", i.dedupe_failure_mode,
                                                      {{"deny", "deny"}, {"allow", "allow"}});
    if ((has_lease || has_mode) && i.dedupe_store != "redis") {
      const char* field = has_lease ? "lease" : "failureMode";
      ctx.sink.error(d->fieldMark(field), d->fieldPath(field), "only applies to store: redis",
                     codes::kConflictingFields);
    }
  }
  return i;
}

FallbackSpec parseFallback(LoadContext& ctx, MapReader& m) {
  FallbackSpec f;
  if (m.require("on")) {
    readWordList(ctx, m, "on", fallbackTriggers(), "fallback trigger", f.on);
    if (f.on.empty() && m.node("on").IsSequence() && m.node("on").size() == 0) {
      ctx.sink.error(m.fieldMark("on"), m.fieldPath("on"), "must list at least one trigger",
                     codes::kInvalidValue);
    }
  }
  m.atMostOne({"response", "grpc"});
  if (auto r = m.map("response", {"status", "headers", "body"})) {
    r->integer("status", f.status, 100, 599);
    if (r->has("headers")) {
      // Header names are free-form, so the mapping is read directly instead of by MapReader.
      const YAML::Node headers = r->node("headers");
      const std::string headers_path = r->fieldPath("headers");
      if (!headers.IsMap()) {
        ctx.sink.error(
            r->fieldMark("headers"), headers_path,
            fmt::format("expected a mapping of header names to values, got {}", describe(headers)),
            codes::kWrongType);
      } else if (takeValues(ctx, headers, r->fieldMark("headers"))) {
        for (auto it = headers.begin(); it != headers.end(); ++it) {
          std::string name;
          std::string value;
          const std::string path = joinPath(headers_path, it->first.Scalar());
          if (readString(ctx, it->first, headers_path, markOf(it->first), name) &&
              readString(ctx, it->second, path, markOf(it->second), value)) {
            f.headers.emplace_back(toLower(name), value);
          }
        }
      }
    }
    r->str("body", f.body);
  }
  if (auto g = m.map("grpc", {"status", "message"})) {
    g->require("status");
    readGrpcStatus(ctx, *g, "status", f.grpc_status);
    g->str("message", f.grpc_message);
  }
  return f;
}

const Fields kTimeoutsFields = {"request", "idle", "grpc"};
const Fields kRetriesFields = {"attempts",
                               "perTryTimeout",
                               "retryOn",
                               "retriableStatusCodes",
                               "backoff",
                               "budget",
                               "retryIgnorePreviousHosts",
                               "respectRetryAfter",
                               "maxRetryAfter",
                               "nonIdempotent",
                               "retryBufferLimit"};
const Fields kHedgingFields = {"delay", "maxRequests", "minDelay", "percentile"};
const Fields kBulkheadFields = {
    "mode",         "maxConcurrentRequests", "maxQueuedRequests",
    "queueTimeout", "partitionBy",           "maxConcurrentPerPartition"};
const Fields kLoadSheddingFields = {"adaptiveConcurrency", "priorityHeader", "reject", "mode"};
const Fields kRateLimitFields = {"requestsPerSecond", "burst", "key",
                                 "headers",           "scope", "failureMode",
                                 "expectedInstances", "mode"};
const Fields kIdempotencyFields = {"header", "requiredFor", "onMissing", "dedupe"};
const Fields kFallbackFields = {"on", "response", "grpc"};

const Fields kPolicyBlockNames = {"timeouts",     "retries",   "hedging",     "bulkhead",
                                  "loadShedding", "rateLimit", "idempotency", "fallback"};

template <typename Spec, typename Parse>
void parseBlock(LoadContext& ctx, MapReader& parent, std::string_view name, const Fields& fields,
                Parse parse, std::optional<Spec>& out) {
  if (auto m = parent.map(name, fields)) {
    out = parse(ctx, *m);
  }
}

void parsePolicyBlocks(LoadContext& ctx, MapReader& m, PolicyBlocks& p) {
  parseBlock(ctx, m, "timeouts", kTimeoutsFields, parseTimeouts, p.timeouts);
  parseBlock(ctx, m, "retries", kRetriesFields, parseRetries, p.retries);
  parseBlock(ctx, m, "hedging", kHedgingFields, parseHedging, p.hedging);
  parseBlock(ctx, m, "bulkhead", kBulkheadFields, parseBulkhead, p.bulkhead);
  parseBlock(ctx, m, "loadShedding", kLoadSheddingFields, parseLoadShedding, p.load_shedding);
  parseBlock(ctx, m, "rateLimit", kRateLimitFields, parseRateLimit, p.rate_limit);
  parseBlock(ctx, m, "idempotency", kIdempotencyFields, parseIdempotency, p.idempotency);
  parseBlock(ctx, m, "fallback", kFallbackFields, parseFallback, p.fallback);
}

// ---------------------------------------------------------------------------------------------
// Top-level sections.

void parseAdmin(LoadContext& ctx, MapReader& root, AdminSpec& admin) {
  auto m = root.map("admin", {"address", "readiness"});
  if (!m) {
    return;
  }
  m->str("address", admin.address);
  if (auto r = m->map("readiness", {"requireUpstreams"})) {
    r->stringList("requireUpstreams", admin.require_upstreams);
  }
  (void)ctx;
}

void parseRedis(LoadContext& ctx, MapReader& root, std::optional<RedisSpec>& out) {
  auto m = root.map("redis", {"address", "sentinel", "database", "passwordFile", "timeout", "tls"});
  if (!m) {
    return;
  }
  RedisSpec redis;
  // Refused rather than ignored: a user who asks for them must not get a plaintext single-node
  // connection silently.
  if (m->has("sentinel")) {
    ctx.sink.error(m->fieldMark("sentinel"), m->fieldPath("sentinel"),
                   "Redis Sentinel is not supported: set address to the master (or to a "
                   "Sentinel-aware proxy in front of it)",
                   codes::kInvalidValue);
  }
  if (m->has("tls")) {
    ctx.sink.error(m->fieldMark("tls"), m->fieldPath("tls"),
                   "TLS to Redis is not supported: the hiredis of Debian bookworm (0.14) has no "
                   "TLS; reach Redis over loopback, a private network or a TLS sidecar",
                   codes::kInvalidValue);
  }
  if (m->require("address") && m->str("address", redis.address)) {
    auto hp = parseHostPort(redis.address);
    if (!hp) {
      ctx.sink.error(m->fieldMark("address"), m->fieldPath("address"), hp.status().message(),
                     codes::kInvalidValue);
    } else if (hp->port == 0 || hp->isWildcard()) {
      ctx.sink.error(
          m->fieldMark("address"), m->fieldPath("address"),
          fmt::format(R"(expected the host:port of a Redis server, got "{}")", redis.address),
          codes::kInvalidValue);
    }
  }
  m->integer("database", redis.database, 0, 65535);
  if (m->str("passwordFile", redis.password_file)) {
    std::ifstream file(redis.password_file, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    if (!file) {
      ctx.sink.error(m->fieldMark("passwordFile"), m->fieldPath("passwordFile"),
                     fmt::format("cannot read \"{}\"", redis.password_file), codes::kInvalidValue);
    } else {
      redis.password = text.str();
      // Files written by `echo` or editors end in a newline that is not part of the password.
      while (!redis.password.empty() &&
             (redis.password.back() == '\n' || redis.password.back() == '\r')) {
        redis.password.pop_back();
      }
      if (redis.password.empty()) {
        ctx.sink.error(m->fieldMark("passwordFile"), m->fieldPath("passwordFile"),
                       fmt::format("\"{}\" is empty", redis.password_file), codes::kInvalidValue);
      }
    }
  }
  if (m->duration("timeout", redis.timeout) && redis.timeout.count() == 0) {
    ctx.sink.error(m->fieldMark("timeout"), m->fieldPath("timeout"), "must be greater than 0s",
                   codes::kInvalidValue);
  }
  out = std::move(redis);
}

void parseOverload(LoadContext& ctx, MapReader& runtime, OverloadSpec& out) {
  auto m = runtime.map("overload", {"maxHeapBytes", "refreshInterval", "actions"});
  if (!m) {
    return;
  }
  if (m->require("maxHeapBytes") && m->byteSize("maxHeapBytes", out.max_heap_bytes) &&
      out.max_heap_bytes != 0 && out.max_heap_bytes < (16u << 20)) {
    ctx.sink.error(m->fieldMark("maxHeapBytes"), m->fieldPath("maxHeapBytes"),
                   fmt::format("must be at least 16Mi (16777216), got {}", out.max_heap_bytes),
                   codes::kInvalidValue);
  }
  if (m->duration("refreshInterval", out.refresh_interval) &&
      (out.refresh_interval.count() < 10 || out.refresh_interval.count() > 10000)) {
    ctx.sink.error(m->fieldMark("refreshInterval"), m->fieldPath("refreshInterval"),
                   "must be between 10ms and 10s", codes::kInvalidValue);
  }
  std::vector<std::string> seen;
  for (const ListItem& item : m->list("actions")) {
    MapReader a(ctx, item.node, item.path, item.mark, {"action", "threshold"});
    if (!a.isMap()) {
      continue;
    }
    OverloadActionSpec action;
    if (a.require("action")) {
      a.enumeration<std::string>("action", action.action,
                                 {{"stopAcceptingConnections", "stopAcceptingConnections"},
                                  {"disableKeepalive", "disableKeepalive"},
                                  {"resetHighMemoryStreams", "resetHighMemoryStreams"}});
    }
    if (a.require("threshold")) {
      a.number("threshold", action.threshold, 0.05, 1.0);
    }
    if (!action.action.empty()) {
      if (std::find(seen.begin(), seen.end(), action.action) != seen.end()) {
        ctx.sink.error(a.fieldMark("action"), a.fieldPath("action"),
                       fmt::format("{} is listed twice", action.action), codes::kDuplicateName);
      }
      seen.push_back(action.action);
    }
    out.actions.push_back(std::move(action));
  }
  if (out.actions.empty() && !m->has("actions") && out.max_heap_bytes != 0) {
    // Envoy's usual ladder: shed keep-alive first, then new connections, then the streams that
    // hold the memory.
    out.actions = {{"disableKeepalive", 0.8},
                   {"stopAcceptingConnections", 0.9},
                   {"resetHighMemoryStreams", 0.95}};
  }
}

void parseRuntime(LoadContext& ctx, MapReader& root, RuntimeSpec& runtime) {
  auto m = root.map("runtime",
                    {"concurrency", "drain", "maxConnectionsPerWorker", "watchConfig", "overload"});
  if (!m) {
    return;
  }
  if (m->has("concurrency")) {
    const YAML::Node n = m->node("concurrency");
    if (n.IsScalar() && n.Scalar() == "auto") {
      runtime.concurrency = 0;
    } else if (n.IsScalar() && isPlainScalar(n) &&
               n.Scalar().find_first_not_of("-0123456789") == std::string::npos) {
      m->integer("concurrency", runtime.concurrency, 1, 1024);
    } else {
      ctx.sink.error(m->fieldMark("concurrency"), m->fieldPath("concurrency"),
                     fmt::format("expected \"auto\" or a number of workers, got {}", describe(n)),
                     codes::kWrongType);
    }
  }
  if (auto d = m->map("drain", {"minDuration", "timeout", "exitOnZeroActive"})) {
    const bool has_min = d->duration("minDuration", runtime.drain.min_duration);
    const bool has_timeout = d->duration("timeout", runtime.drain.timeout);
    if ((has_min || has_timeout) && runtime.drain.min_duration > runtime.drain.timeout) {
      ctx.sink.error(d->fieldMark("minDuration"), d->fieldPath("minDuration"),
                     "minDuration is longer than timeout", codes::kInconsistentValues);
    }
    d->boolean("exitOnZeroActive", runtime.drain.exit_on_zero_active);
  }
  m->integer("maxConnectionsPerWorker", runtime.max_connections_per_worker);
  parseOverload(ctx, *m, runtime.overload);
  if (bool watch = false; m->boolean("watchConfig", watch)) {
    runtime.watch_config = watch;
  }
}

void parseObservability(LoadContext& ctx, MapReader& root, ObservabilitySpec& o) {
  auto m = root.map("observability", {"accessLog", "metrics", "tracing", "explain"});
  if (!m) {
    return;
  }
  if (auto a = m->map("accessLog", {"path", "format", "sample", "flushInterval"})) {
    a->str("path", o.access_log.path);
    a->enumeration<std::string>("format", o.access_log.format,
                                {{"json", "json"}, {"text", "text"}});
    a->number("sample", o.access_log.sample, 0, 1);
    if (a->duration("flushInterval", o.access_log.flush_interval) &&
        o.access_log.flush_interval.count() == 0) {
      ctx.sink.error(a->fieldMark("flushInterval"), a->fieldPath("flushInterval"),
                     "must be greater than 0s", codes::kInvalidValue);
    }
  }
  if (auto mm = m->map("metrics", {"path", "latencyBuckets"})) {
    if (mm->str("path", o.metrics_path) && (o.metrics_path.empty() || o.metrics_path[0] != '/')) {
      ctx.sink.error(mm->fieldMark("path"), mm->fieldPath("path"),
                     fmt::format(R"(must start with "/", got "{}")", o.metrics_path),
                     codes::kInvalidValue);
    }
    if (mm->has("latencyBuckets")) {
      std::vector<double> buckets;
      bool ok = true;
      for (const ListItem& item : mm->list("latencyBuckets")) {
        double v = 0;
        if (!readDouble(ctx, item.node, item.path, item.mark, v, 0, 3600)) {
          ok = false;
          continue;
        }
        if (v <= 0 || (!buckets.empty() && v <= buckets.back())) {
          ctx.sink.error(item.mark, item.path,
                         "bucket bounds must be positive and strictly increasing",
                         codes::kInvalidValue);
          ok = false;
        }
        buckets.push_back(v);
      }
      if (ok && buckets.empty()) {
        ctx.sink.error(mm->fieldMark("latencyBuckets"), mm->fieldPath("latencyBuckets"),
                       "must list at least one bucket bound", codes::kInvalidValue);
      } else if (ok) {
        o.latency_buckets = std::move(buckets);
      }
    }
  }
  if (auto e = m->map("explain", {"allowFrom"})) {
    if (e->stringList("allowFrom", o.explain_allow_from)) {
      for (const ListItem& item : e->list("allowFrom")) {
        if (item.node.IsScalar() && !Cidr::parse(item.node.Scalar())) {
          ctx.sink.error(
              item.mark, item.path,
              fmt::format(R"(expected an address or CIDR such as "10.0.0.0/8", got "{}")",
                          item.node.Scalar()),
              codes::kInvalidValue);
        }
      }
    }
  }
  if (auto t = m->map("tracing", {"propagation", "requestId", "sampling", "exporter"})) {
    readWordList(ctx, *t, "propagation", {"w3c", "b3"}, "propagation format", o.trace_propagation);
    if (auto s = t->map("sampling", {"ratio", "parentBased"})) {
      s->number("ratio", o.trace_sampling_ratio, 0, 1);
      s->boolean("parentBased", o.trace_sampling_parent_based);
    }
    if (auto e = t->map("exporter", {"otlp"})) {
      if (auto otlp = e->map("otlp", {"endpoint", "timeout", "batch", "maxQueue"})) {
        if (otlp->require("endpoint") && otlp->str("endpoint", o.otlp_endpoint)) {
          const std::string_view url = o.otlp_endpoint;
          const std::string_view rest =
              url.substr(0, 7) == "http://" ? url.substr(7) : std::string_view();
          const std::string_view authority = rest.substr(0, rest.find('/'));
          if (authority.empty() || !parseHostPort(authority) ||
              parseHostPort(authority)->port == 0) {
            ctx.sink.error(otlp->fieldMark("endpoint"), otlp->fieldPath("endpoint"),
                           fmt::format(R"(expected "http://HOST:PORT/PATH" (OTLP/HTTP), got "{}")",
                                       o.otlp_endpoint),
                           codes::kInvalidValue);
          }
        }
        if (otlp->duration("timeout", o.otlp_timeout) && o.otlp_timeout.count() == 0) {
          ctx.sink.error(otlp->fieldMark("timeout"), otlp->fieldPath("timeout"),
                         "must be greater than 0s", codes::kInvalidValue);
        }
        if (auto b = otlp->map("batch", {"maxSpans", "interval"})) {
          b->integer("maxSpans", o.otlp_batch_max_spans, 1, 100000);
          if (b->duration("interval", o.otlp_batch_interval) &&
              o.otlp_batch_interval.count() == 0) {
            ctx.sink.error(b->fieldMark("interval"), b->fieldPath("interval"),
                           "must be greater than 0s", codes::kInvalidValue);
          }
        }
        otlp->integer("maxQueue", o.otlp_max_queue, 1, 10000000);
      }
    }
    if (auto r = t->map("requestId", {"generate", "preserveExternal", "returnInResponse"})) {
      r->boolean("generate", o.request_id.generate);
      r->boolean("preserveExternal", o.request_id.preserve_external);
      r->boolean("returnInResponse", o.request_id.return_in_response);
    }
  }
}

// A certificate within 30 days of its end still loads, with a warning (check and reload).
constexpr int64_t kExpiryWarningDays = 30;

void checkCertificateFiles(LoadContext& ctx, MapReader& m, const std::string& chain,
                           const std::string& key, std::string_view chain_field) {
  const CertificateCheck check = checkCertificateAndKey(chain, key);
  if (check.error) {
    ctx.sink.error(m.fieldMark(chain_field), m.fieldPath(chain_field), *check.error,
                   codes::kInvalidValue);
  } else if (check.days_until_expiry < 0) {
    ctx.sink.error(m.fieldMark(chain_field), m.fieldPath(chain_field),
                   fmt::format("the certificate in \"{}\" has expired", chain),
                   codes::kInvalidValue);
  } else if (check.days_until_expiry < kExpiryWarningDays) {
    ctx.sink.warning(
        m.fieldMark(chain_field), m.fieldPath(chain_field),
        fmt::format("the certificate in \"{}\" expires in {} days", chain, check.days_until_expiry),
        codes::kIneffectiveSetting);
  }
}

void readCaCertificates(LoadContext& ctx, MapReader& m, std::string& out) {
  if (m.str("caCertificates", out)) {
    if (auto error = checkCaBundle(out)) {
      ctx.sink.error(m.fieldMark("caCertificates"), m.fieldPath("caCertificates"), *error,
                     codes::kInvalidValue);
    }
  }
}

void parseListenerTls(LoadContext& ctx, MapReader& listener, ListenerSpec& l) {
  auto m = listener.map(
      "tls", {"mode", "certificates", "caCertificates", "subjectAltNames", "minProtocolVersion",
              "alpn", "handshakeTimeout", "forwardClientCertDetails"});
  if (!m) {
    return;
  }
  ListenerTlsSpec tls;
  m->enumeration<std::string>(
      "mode", tls.mode,
      {{"SIMPLE", "SIMPLE"}, {"MUTUAL", "MUTUAL"}, {"OPTIONAL_MUTUAL", "OPTIONAL_MUTUAL"}});
  if (m->require("certificates")) {
    for (const ListItem& item : m->list("certificates")) {
      MapReader c(ctx, item.node, item.path, item.mark, {"certificateChain", "privateKey"});
      if (!c.isMap()) {
        continue;
      }
      TlsCertificateSpec cert;
      const bool has_chain =
          c.require("certificateChain") && c.str("certificateChain", cert.certificate_chain);
      const bool has_key = c.require("privateKey") && c.str("privateKey", cert.private_key);
      if (has_chain && has_key) {
        checkCertificateFiles(ctx, c, cert.certificate_chain, cert.private_key, "certificateChain");
      }
      tls.certificates.push_back(std::move(cert));
    }
    if (tls.certificates.empty() && m->node("certificates").IsSequence()) {
      ctx.sink.error(m->fieldMark("certificates"), m->fieldPath("certificates"),
                     "needs at least one {certificateChain, privateKey}", codes::kInvalidValue);
    }
  }
  readCaCertificates(ctx, *m, tls.ca_certificates);
  if (tls.mode != "SIMPLE" && tls.ca_certificates.empty()) {
    ctx.sink.error(
        m->fieldMark("mode"), m->fieldPath("mode"),
        fmt::format("mode {} verifies client certificates: caCertificates is required", tls.mode),
        codes::kMissingField);
  }
  m->stringList("subjectAltNames", tls.subject_alt_names);
  if (!tls.subject_alt_names.empty() && tls.mode == "SIMPLE") {
    ctx.sink.error(m->fieldMark("subjectAltNames"), m->fieldPath("subjectAltNames"),
                   "client SANs are only checked with mode MUTUAL or OPTIONAL_MUTUAL",
                   codes::kConflictingFields);
  }
  if (m->has("minProtocolVersion")) {
    std::string version;
    if (m->str("minProtocolVersion", version)) {
      if (version == "TLSV1_2" || version == "TLSV1_3") {
        tls.min_protocol_version = version;
      } else {
        ctx.sink.error(m->fieldMark("minProtocolVersion"), m->fieldPath("minProtocolVersion"),
                       version == "TLSV1_0" || version == "TLSV1_1" || version == "TLS_AUTO"
                           ? fmt::format("{} is not accepted: TLS 1.0 and 1.1 are never "
                                         "negotiated (use TLSV1_2 or TLSV1_3)",
                                         version)
                           : fmt::format(R"(expected TLSV1_2 or TLSV1_3, got "{}")", version),
                       codes::kInvalidValue);
      }
    }
  }
  if (m->stringList("alpn", tls.alpn)) {
    for (const std::string& protocol : tls.alpn) {
      if (protocol != "h2" && protocol != "http/1.1") {
        ctx.sink.error(m->fieldMark("alpn"), m->fieldPath("alpn"),
                       fmt::format(R"(unknown ALPN protocol "{}" (h2, http/1.1))", protocol),
                       codes::kInvalidValue);
      }
    }
  }
  m->duration("handshakeTimeout", tls.handshake_timeout);
  m->boolean("forwardClientCertDetails", tls.forward_client_cert_details);
  l.tls = std::move(tls);
}

void parseUpstreamTls(LoadContext& ctx, MapReader& upstream, UpstreamSpec& u) {
  auto m = upstream.map("tls", {"mode", "sni", "caCertificates", "subjectAltNames",
                                "clientCertificate", "privateKey", "insecureSkipVerify"});
  if (!m) {
    return;
  }
  UpstreamTlsSpec tls;
  m->enumeration<std::string>("mode", tls.mode, {{"SIMPLE", "SIMPLE"}, {"MUTUAL", "MUTUAL"}});
  m->str("sni", tls.sni);
  readCaCertificates(ctx, *m, tls.ca_certificates);
  m->stringList("subjectAltNames", tls.subject_alt_names);
  m->str("clientCertificate", tls.client_certificate);
  m->str("privateKey", tls.private_key);
  m->boolean("insecureSkipVerify", tls.insecure_skip_verify);
  const bool has_pair = !tls.client_certificate.empty() || !tls.private_key.empty();
  if (tls.mode == "MUTUAL") {
    if (tls.client_certificate.empty() || tls.private_key.empty()) {
      ctx.sink.error(m->fieldMark("mode"), m->fieldPath("mode"),
                     "mode MUTUAL presents a client certificate: clientCertificate and "
                     "privateKey are required",
                     codes::kMissingField);
    } else {
      checkCertificateFiles(ctx, *m, tls.client_certificate, tls.private_key, "clientCertificate");
    }
  } else if (has_pair) {
    ctx.sink.error(m->fieldMark("clientCertificate"), m->fieldPath("clientCertificate"),
                   "a client certificate is only presented with mode MUTUAL",
                   codes::kConflictingFields);
  }
  if (tls.insecure_skip_verify &&
      (!tls.ca_certificates.empty() || !tls.subject_alt_names.empty())) {
    ctx.sink.error(m->fieldMark("insecureSkipVerify"), m->fieldPath("insecureSkipVerify"),
                   "insecureSkipVerify turns off the checks caCertificates and subjectAltNames "
                   "ask for",
                   codes::kConflictingFields);
  }
  u.tls = std::move(tls);
}

void parseListener(LoadContext& ctx, const ListItem& item, ListenerSpec& l) {
  MapReader m(ctx, item.node, item.path, item.mark,
              {"name", "address", "protocol", "routes", "limits", "http", "tls"});
  l.mark = item.mark;
  if (!m.isMap()) {
    return;
  }
  readName(ctx, m, l.name);
  if (m.require("address")) {
    m.str("address", l.address);
  }
  // `grpc` is h2c prior knowledge: gRPC clients never speak HTTP/1.1.
  m.enumeration<ListenerProtocol>("protocol", l.protocol,
                                  {{"http1", ListenerProtocol::Http1},
                                   {"h2c", ListenerProtocol::H2c},
                                   {"auto", ListenerProtocol::Auto},
                                   {"grpc", ListenerProtocol::H2c}});
  m.stringList("routes", l.routes);
  if (auto lim = m.map("limits",
                       {"maxRequestHeadersBytes", "maxHeadersCount", "maxRequestBodyBytes",
                        "headerReadTimeout", "idleTimeout", "writeTimeout", "maxConcurrentStreams",
                        "minRequestBodyRate", "requestBodyRateWindow", "streamErrorBudget"})) {
    ListenerLimitsSpec& s = l.limits;
    if (lim->byteSize32("maxRequestHeadersBytes", s.max_request_headers_bytes) &&
        s.max_request_headers_bytes < 1024) {
      ctx.sink.error(lim->fieldMark("maxRequestHeadersBytes"),
                     lim->fieldPath("maxRequestHeadersBytes"),
                     fmt::format("must be at least 1024, got {}", s.max_request_headers_bytes),
                     codes::kInvalidValue);
    }
    lim->integer("maxHeadersCount", s.max_headers_count, 1, 10000);
    lim->byteSize("maxRequestBodyBytes", s.max_request_body_bytes);
    lim->duration("headerReadTimeout", s.header_read_timeout);
    lim->duration("idleTimeout", s.idle_timeout);
    lim->duration("writeTimeout", s.write_timeout);
    lim->integer("maxConcurrentStreams", s.max_concurrent_streams, 1, 1u << 31);
    lim->byteSize("minRequestBodyRate", s.min_request_body_rate);
    if (lim->duration("requestBodyRateWindow", s.request_body_rate_window) &&
        s.request_body_rate_window.count() < 100) {
      ctx.sink.error(lim->fieldMark("requestBodyRateWindow"),
                     lim->fieldPath("requestBodyRateWindow"), "must be at least 100ms",
                     codes::kInvalidValue);
    }
    if (auto budget = lim->map("streamErrorBudget", {"burst", "perSecond"})) {
      budget->integer("burst", s.stream_error_burst, 1, 1000000);
      budget->integer("perSecond", s.stream_errors_per_second, 1, 1000000);
    }
  }
  if (auto http = m.map("http", {"normalizePath", "mergeSlashes", "escapedSlashes"})) {
    http->boolean("normalizePath", l.http.normalize_path);
    http->boolean("mergeSlashes", l.http.merge_slashes);
    http->enumeration<std::string>("escapedSlashes", l.http.escaped_slashes,
                                   {{"KEEP_UNCHANGED", "KEEP_UNCHANGED"},
                                    {"REJECT_REQUEST", "REJECT_REQUEST"},
                                    {"UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_REDIRECT"},
                                    {"UNESCAPE_AND_FORWARD", "UNESCAPE_AND_FORWARD"}});
  }
  parseListenerTls(ctx, m, l);
}

void parseEndpoints(LoadContext& ctx, MapReader& up, UpstreamSpec& u) {
  auto m = up.map("endpoints", {"static", "dns"});
  if (!m) {
    return;
  }
  m->atMostOne({"static", "dns"});
  for (const ListItem& item : m->list("static")) {
    MapReader e(ctx, item.node, item.path, item.mark, {"address", "weight"});
    if (!e.isMap()) {
      continue;
    }
    EndpointSpec ep;
    if (e.require("address")) {
      e.str("address", ep.address);
    }
    e.integer("weight", ep.weight, 1, 1000000);
    u.static_endpoints.push_back(std::move(ep));
  }
  if (auto d = m->map("dns", {"name", "port", "refreshInterval"})) {
    DnsSpec dns;
    if (d->require("name")) {
      d->str("name", dns.name);
    }
    if (d->require("port")) {
      d->integer("port", dns.port, 1, 65535);
    }
    d->duration("refreshInterval", dns.refresh_interval);
    u.dns = std::move(dns);
  }
}

void parseLoadBalancer(LoadContext& ctx, MapReader& up, LoadBalancerSpec& lb) {
  auto m = up.map("loadBalancer", {"simple", "choiceCount", "consistentHash"});
  if (!m) {
    return;
  }
  const bool has_simple = m->enumeration<LbPolicy>("simple", lb.policy,
                                                   {{"ROUND_ROBIN", LbPolicy::RoundRobin},
                                                    {"LEAST_REQUEST", LbPolicy::LeastRequest},
                                                    {"RANDOM", LbPolicy::Random},
                                                    {"RING_HASH", LbPolicy::RingHash},
                                                    {"MAGLEV", LbPolicy::Maglev},
                                                    {"PEAK_EWMA", LbPolicy::PeakEwma}});
  m->integer("choiceCount", lb.choice_count, 2, 100);
  if (auto c = m->map("consistentHash", {"httpHeaderName", "httpCookie", "useSourceIp"})) {
    ConsistentHashSpec hash;
    if (c->atMostOne({"httpHeaderName", "httpCookie", "useSourceIp"}) == 0) {
      ctx.sink.error(c->mark(), c->path(),
                     R"(needs one of "httpHeaderName", "httpCookie" or "useSourceIp")",
                     codes::kMissingField);
    }
    if (c->has("httpHeaderName")) {
      readHeaderName(ctx, *c, "httpHeaderName", hash.http_header_name);
    }
    if (auto cookie = c->map("httpCookie", {"name"})) {
      cookie->require("name");
      cookie->str("name", hash.http_cookie_name);
    }
    c->boolean("useSourceIp", hash.use_source_ip);
    lb.consistent_hash = std::move(hash);
    if (!has_simple) {
      lb.policy = LbPolicy::RingHash;  // Istio: consistentHash alone selects ring hash
    }
  }
  const bool hashing = lb.policy == LbPolicy::RingHash || lb.policy == LbPolicy::Maglev;
  if (has_simple && hashing && !m->has("consistentHash")) {
    ctx.sink.error(m->fieldMark("simple"), m->fieldPath("simple"),
                   fmt::format("{} needs consistentHash (httpHeaderName, httpCookie or "
                               "useSourceIp)",
                               m->node("simple").Scalar()),
                   codes::kMissingField);
  }
  if (has_simple && !hashing && m->has("consistentHash")) {
    ctx.sink.error(m->keyMark("consistentHash"), m->fieldPath("consistentHash"),
                   fmt::format("only used with simple: RING_HASH or MAGLEV, not {}",
                               m->node("simple").Scalar()),
                   codes::kConflictingFields);
  }
}

void parseConnectionPool(LoadContext& ctx, MapReader& up, ConnectionPoolSpec& p) {
  (void)ctx;
  auto m = up.map("connectionPool", {"tcp", "http"});
  if (!m) {
    return;
  }
  if (auto t = m->map("tcp", {"maxConnections", "connectTimeout", "idleTimeout"})) {
    t->integer("maxConnections", p.max_connections, 1);
    t->duration("connectTimeout", p.connect_timeout);
    if (p.connect_timeout.count() == 0) {
      ctx.sink.error(t->fieldMark("connectTimeout"), t->fieldPath("connectTimeout"),
                     "must be greater than 0s", codes::kInvalidValue);
    }
    t->duration("idleTimeout", p.idle_timeout);
  }
  if (auto h = m->map("http", {"maxPendingRequests", "maxRequests", "maxRequestsPerConnection",
                               "maxRetries", "maxConcurrentStreams"})) {
    h->integer("maxPendingRequests", p.max_pending_requests);
    h->integer("maxRequests", p.max_requests, 1);
    h->integer("maxRequestsPerConnection", p.max_requests_per_connection);
    h->integer("maxRetries", p.max_retries);
    h->integer("maxConcurrentStreams", p.max_concurrent_streams, 1, 1u << 31);
  }
}

void parseOutlierDetection(LoadContext& ctx, MapReader& up, UpstreamSpec& u) {
  auto m =
      up.map("outlierDetection",
             {"consecutive5xxErrors", "consecutiveGatewayErrors", "consecutiveLocalOriginFailures",
              "failurePercentageThreshold", "failurePercentageMinimumHosts",
              "failurePercentageRequestVolume", "interval", "baseEjectionTime", "maxEjectionTime",
              "maxEjectionPercent", "panicThresholdPercent", "ignoreRetryAfter", "mode"});
  if (!m) {
    return;
  }
  OutlierDetectionSpec o;
  readMode(*m, o.mode);
  m->integer("consecutive5xxErrors", o.consecutive_5xx_errors);
  m->integer("consecutiveGatewayErrors", o.consecutive_gateway_errors);
  m->integer("consecutiveLocalOriginFailures", o.consecutive_local_origin_failures);
  m->integer("failurePercentageThreshold", o.failure_percentage_threshold, 0, 100);
  m->integer("failurePercentageMinimumHosts", o.failure_percentage_minimum_hosts);
  m->integer("failurePercentageRequestVolume", o.failure_percentage_request_volume);
  m->duration("interval", o.interval);
  const bool has_base = m->duration("baseEjectionTime", o.base_ejection_time);
  const bool has_max = m->duration("maxEjectionTime", o.max_ejection_time);
  if ((has_base || has_max) && o.base_ejection_time > o.max_ejection_time) {
    ctx.sink.error(m->fieldMark(has_base ? "baseEjectionTime" : "maxEjectionTime"),
                   m->fieldPath(has_base ? "baseEjectionTime" : "maxEjectionTime"),
                   "baseEjectionTime is longer than maxEjectionTime", codes::kInconsistentValues);
  }
  m->integer("maxEjectionPercent", o.max_ejection_percent, 0, 100);
  m->integer("panicThresholdPercent", o.panic_threshold_percent, 0, 100);
  m->boolean("ignoreRetryAfter", o.ignore_retry_after);
  if (o.interval.count() == 0) {
    ctx.sink.error(m->fieldMark("interval"), m->fieldPath("interval"), "must be greater than 0s",
                   codes::kInvalidValue);
  }
  u.outlier_detection = o;
}

void parseCircuitBreaker(LoadContext& ctx, MapReader& up, UpstreamSpec& u) {
  auto m = up.map("circuitBreaker", {"failureRateThreshold", "slowCallDurationThreshold",
                                     "slowCallRateThreshold", "minimumRequests", "window",
                                     "openDuration", "halfOpenRequests", "perHost", "mode"});
  if (!m) {
    return;
  }
  CircuitBreakerSpec c;
  readMode(*m, c.mode);
  m->integer("failureRateThreshold", c.failure_rate_threshold, 1, 100);
  m->duration("slowCallDurationThreshold", c.slow_call_duration_threshold);
  m->integer("slowCallRateThreshold", c.slow_call_rate_threshold, 1, 100);
  m->integer("minimumRequests", c.minimum_requests, 1);
  m->duration("window", c.window);
  m->duration("openDuration", c.open_duration);
  m->integer("halfOpenRequests", c.half_open_requests, 1);
  m->boolean("perHost", c.per_host);
  for (std::string_view field : {"window", "openDuration"}) {
    if (m->has(field) && (field == "window" ? c.window : c.open_duration).count() == 0) {
      ctx.sink.error(m->fieldMark(field), m->fieldPath(field), "must be greater than 0s",
                     codes::kInvalidValue);
    }
  }
  u.circuit_breaker = c;
}

void parseHealthCheck(LoadContext& ctx, MapReader& up, UpstreamSpec& u) {
  auto m = up.map("healthCheck", {"http", "grpc", "tcp", "interval", "timeout",
                                  "unhealthyThreshold", "healthyThreshold"});
  if (!m) {
    return;
  }
  HealthCheckSpec h;
  if (m->atMostOne({"http", "grpc", "tcp"}) == 0) {
    ctx.sink.error(m->mark(), m->path(), R"(needs one of "http", "grpc" or "tcp")",
                   codes::kMissingField);
  }
  if (auto http = m->map("http", {"path", "expectedStatuses"})) {
    h.kind = HealthCheckSpec::Kind::Http;
    if (http->str("path", h.http_path) && (h.http_path.empty() || h.http_path[0] != '/')) {
      ctx.sink.error(http->fieldMark("path"), http->fieldPath("path"),
                     fmt::format(R"(must start with "/", got "{}")", h.http_path),
                     codes::kInvalidValue);
    }
    readStatusCodes(ctx, *http, "expectedStatuses", h.expected_statuses);
  }
  if (auto grpc = m->map("grpc", {"service"})) {
    h.kind = HealthCheckSpec::Kind::Grpc;
    grpc->str("service", h.grpc_service);
  }
  if (m->map("tcp", {})) {
    h.kind = HealthCheckSpec::Kind::Tcp;
  }
  m->duration("interval", h.interval);
  m->duration("timeout", h.timeout);
  for (std::string_view field : {"interval", "timeout"}) {
    if (m->has(field) && (field == "interval" ? h.interval : h.timeout).count() == 0) {
      ctx.sink.error(m->fieldMark(field), m->fieldPath(field), "must be greater than 0s",
                     codes::kInvalidValue);
    }
  }
  m->integer("unhealthyThreshold", h.unhealthy_threshold, 1);
  m->integer("healthyThreshold", h.healthy_threshold, 1);
  u.health_check = h;
}

void parseUpstream(LoadContext& ctx, const ListItem& item, UpstreamSpec& u) {
  MapReader m(ctx, item.node, item.path, item.mark,
              {"name", "protocol", "endpoints", "loadBalancer", "connectionPool",
               "outlierDetection", "circuitBreaker", "healthCheck", "tls"});
  u.mark = item.mark;
  if (!m.isMap()) {
    return;
  }
  readName(ctx, m, u.name);
  m.enumeration<UpstreamProtocol>("protocol", u.protocol,
                                  {{"http1", UpstreamProtocol::Http1},
                                   {"http2", UpstreamProtocol::Http2},
                                   {"grpc", UpstreamProtocol::Grpc}});
  parseEndpoints(ctx, m, u);
  parseLoadBalancer(ctx, m, u.load_balancer);
  parseConnectionPool(ctx, m, u.connection_pool);
  parseOutlierDetection(ctx, m, u);
  parseCircuitBreaker(ctx, m, u);
  parseHealthCheck(ctx, m, u);
  parseUpstreamTls(ctx, m, u);
}

void parseMatch(LoadContext& ctx, MapReader& route, RouteMatchSpec& match) {
  auto m = route.map("match", {"path", "methods", "headers", "grpc", "sni"});
  if (!m) {
    return;
  }
  if (m->stringList("sni", match.sni)) {
    for (auto& name : match.sni) {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
  }
  m->atMostOne({"path", "grpc"});
  if (auto p = m->map("path", {"prefix", "exact", "regex"})) {
    if (p->atMostOne({"prefix", "exact", "regex"}) == 0) {
      ctx.sink.error(p->mark(), p->path(), R"(needs one of "prefix", "exact" or "regex")",
                     codes::kMissingField);
    }
    for (auto [field, kind] : {std::pair{"prefix", PathMatchSpec::Kind::Prefix},
                               std::pair{"exact", PathMatchSpec::Kind::Exact}}) {
      if (p->str(field, match.path.value)) {
        match.path.kind = kind;
        if (match.path.value.empty() || match.path.value[0] != '/') {
          ctx.sink.error(p->fieldMark(field), p->fieldPath(field),
                         fmt::format(R"(must start with "/", got "{}")", match.path.value),
                         codes::kInvalidValue);
        }
      }
    }
    if (p->has("regex")) {
      match.path.kind = PathMatchSpec::Kind::Regex;
      readRegex(ctx, *p, "regex", match.path.value);
    }
  }
  readMethods(ctx, *m, "methods", match.methods);
  for (const ListItem& item : m->list("headers")) {
    MapReader h(ctx, item.node, item.path, item.mark,
                {"name", "exact", "prefix", "regex", "present", "invert"});
    if (!h.isMap()) {
      continue;
    }
    HeaderMatchSpec spec;
    if (h.require("name")) {
      readHeaderName(ctx, h, "name", spec.name);
    }
    h.atMostOne({"exact", "prefix", "regex", "present"});
    if (h.str("exact", spec.value)) {
      spec.kind = HeaderMatchSpec::Kind::Exact;
    } else if (h.str("prefix", spec.value)) {
      spec.kind = HeaderMatchSpec::Kind::Prefix;
    } else if (h.has("regex")) {
      spec.kind = HeaderMatchSpec::Kind::Regex;
      readRegex(ctx, h, "regex", spec.value);
    } else if (h.has("present")) {
      bool present = true;
      if (h.boolean("present", present) && !present) {
        ctx.sink.error(h.fieldMark("present"), h.fieldPath("present"),
                       "present: false is not supported; use present: true with invert: true",
                       codes::kInvalidValue);
      }
    }
    h.boolean("invert", spec.invert);
    match.headers.push_back(std::move(spec));
  }
  if (auto g = m->map("grpc", {"service", "method"})) {
    GrpcMatchSpec grpc;
    static const RE2 kService("[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*");
    static const RE2 kMethod("[A-Za-z_][A-Za-z0-9_]*");
    if (g->require("service") && g->str("service", grpc.service) &&
        !RE2::FullMatch(grpc.service, kService)) {
      ctx.sink.error(g->fieldMark("service"), g->fieldPath("service"),
                     fmt::format("\"{}\" is not a gRPC service name like "
                                 "\"ranking.v1.RankingService\"",
                                 grpc.service),
                     codes::kInvalidValue);
    }
    if (g->str("method", grpc.method) && !RE2::FullMatch(grpc.method, kMethod)) {
      ctx.sink.error(g->fieldMark("method"), g->fieldPath("method"),
                     fmt::format(R"("{}" is not a gRPC method name like "Rank")", grpc.method),
                     codes::kInvalidValue);
    }
    match.grpc = std::move(grpc);
  }
}

// Upgrade protocols a route tunnels: RFC 9110 tokens, compared without case. h2c is never tunnelled
// (a lone "Upgrade: h2c" is ignored and the request goes on in HTTP/1.1, as with Envoy).
void readUpgrades(LoadContext& ctx, MapReader& m, std::vector<std::string>& out) {
  if (!m.has("upgrades")) {
    return;
  }
  std::vector<std::string> upgrades;
  for (const ListItem& item : m.list("upgrades")) {
    std::string token;
    if (!readString(ctx, item.node, item.path, item.mark, token)) {
      continue;
    }
    const bool is_token =
        !token.empty() && std::all_of(token.begin(), token.end(), [](unsigned char c) {
          return std::isalnum(c) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
        });
    std::transform(token.begin(), token.end(), token.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!is_token) {
      ctx.sink.error(
          item.mark, item.path,
          fmt::format(R"("{}" is not an upgrade protocol token like "websocket")", token),
          codes::kInvalidValue);
      continue;
    }
    if (token == "h2c") {
      ctx.sink.error(item.mark, item.path,
                     "h2c is not tunnelled: a lone \"Upgrade: h2c\" is ignored and the request "
                     "is served in HTTP/1.1 (clients that want HTTP/2 connect with prior "
                     "knowledge)",
                     codes::kInvalidValue);
      continue;
    }
    if (std::find(upgrades.begin(), upgrades.end(), token) == upgrades.end()) {
      upgrades.push_back(token);
    }
  }
  out = std::move(upgrades);
}

void parseRoute(LoadContext& ctx, const ListItem& item, RouteSpec& r) {
  Fields fields = {"name", "match", "upstream", "upgrades"};
  fields.insert(fields.end(), kPolicyBlockNames.begin(), kPolicyBlockNames.end());
  MapReader m(ctx, item.node, item.path, item.mark, fields);
  r.mark = item.mark;
  if (!m.isMap()) {
    return;
  }
  readName(ctx, m, r.name);
  parseMatch(ctx, m, r.match);
  if (m.require("upstream")) {
    m.str("upstream", r.upstream);
  }
  readUpgrades(ctx, m, r.upgrades);
  parsePolicyBlocks(ctx, m, r.policies);
}

void parseRoot(LoadContext& ctx, const YAML::Node& node, ProxyConfigSpec& spec) {
  MapReader root(ctx, node, "", markOf(node),
                 {"apiVersion", "kind", "metadata", "admin", "runtime", "observability", "redis",
                  "defaults", "listeners", "upstreams", "routes"});
  if (!root.isMap()) {
    return;
  }
  std::string value;
  if (root.require("apiVersion") && root.str("apiVersion", value) && value != kApiVersion) {
    ctx.sink.error(root.fieldMark("apiVersion"), "apiVersion",
                   fmt::format(R"(expected "{}", got "{}")", kApiVersion, value), codes::kHeader);
  }
  if (root.require("kind") && root.str("kind", value) && value != kKind) {
    ctx.sink.error(root.fieldMark("kind"), "kind",
                   fmt::format(R"(expected "{}", got "{}")", kKind, value), codes::kHeader);
  }
  if (auto meta = root.map("metadata", {"name"})) {
    meta->str("name", spec.name);
  }
  parseAdmin(ctx, root, spec.admin);
  parseRuntime(ctx, root, spec.runtime);
  parseObservability(ctx, root, spec.observability);
  parseRedis(ctx, root, spec.redis);
  if (auto d = root.map("defaults", kPolicyBlockNames)) {
    parsePolicyBlocks(ctx, *d, spec.defaults);
  }
  for (const ListItem& item : root.list("listeners")) {
    parseListener(ctx, item, spec.listeners.emplace_back());
  }
  for (const ListItem& item : root.list("upstreams")) {
    parseUpstream(ctx, item, spec.upstreams.emplace_back());
  }
  for (const ListItem& item : root.list("routes")) {
    parseRoute(ctx, item, spec.routes.emplace_back());
  }
}

/**
 * Counts documents (up to two) without building nodes. yaml-cpp 0.7's LoadAll never returns on
 * some invalid input such as a leading "," (jbeder/yaml-cpp#1040, fixed upstream by #1319): its
 * parser keeps starting empty documents at the same position. This loop is bounded and reports
 * that case as `stuck`. Thread: the loading thread.
 */
class DocumentScan : public YAML::EventHandler {
public:
  explicit DocumentScan(const std::string& text) {
    std::stringstream input(text);
    YAML::Parser parser(input);
    while (starts_.size() < 3 && parser.HandleNextDocument(*this)) {
    }
  }
  size_t documents() const { return std::min<size_t>(starts_.size(), 2); }
  bool stuck() const { return starts_.size() >= 2 && sameMark(starts_[0], starts_[1]); }
  Mark start(size_t i) const { return Mark{starts_[i].line + 1, starts_[i].column + 1}; }

  // YAML::EventHandler
  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

private:
  static bool sameMark(const YAML::Mark& a, const YAML::Mark& b) {
    return a.pos == b.pos && a.line == b.line && a.column == b.column;
  }
  std::vector<YAML::Mark> starts_;
};

/** yaml-cpp's "error at line 2, column 2: " prefix is dropped: we print the position ourselves. */
void reportYamlException(DiagnosticSink& sink, const YAML::Exception& e) {
  Mark mark;
  if (e.mark.line >= 0) {
    mark = Mark{e.mark.line + 1, e.mark.column + 1};
  }
  sink.error(mark, "", fmt::format("YAML syntax error: {}", e.msg), codes::kYamlSyntax);
}

}  // namespace

std::string LoadResult::errorText() const {
  std::string out;
  for (const ConfigDiagnostic& d : diagnostics) {
    if (d.warning) {
      continue;
    }
    if (!out.empty()) {
      out += '\n';
    }
    out += d.format();
  }
  return out;
}

Result<ProxyConfigSpec> LoadResult::toResult() && {
  if (config) {
    return std::move(*config);
  }
  return Status::error(errorText());
}

namespace {

LoadResult loadUnguarded(std::string_view text, const std::string& pseudo_path) {
  LoadResult result;
  DiagnosticSink sink(pseudo_path);
  LoadContext ctx{sink, result.marks};
  ProxyConfigSpec spec;
  spec.source_path = pseudo_path;

  YAML::Node root;
  bool syntax_ok = false;
  try {
    const std::string copy(text);
    DocumentScan scan(copy);
    if (scan.stuck()) {
      sink.error(scan.start(0), "",
                 "YAML syntax error: unexpected character (a \",\" outside [] or {}?)",
                 codes::kYamlSyntax);
    } else {
      if (scan.documents() > 1) {
        sink.error(scan.start(1), "",
                   "only one YAML document is allowed (remove the second \"---\")",
                   codes::kYamlSyntax);
      }
      root = YAML::Load(copy);
      syntax_ok = true;
    }
  } catch (const YAML::Exception& e) {
    reportYamlException(sink, e);
  }
  if (syntax_ok) {
    if (!root.IsDefined() || root.IsNull()) {
      sink.error(Mark{1, 1}, "",
                 fmt::format("the file is empty; expected a mapping with apiVersion: {} and "
                             "kind: {}",
                             kApiVersion, kKind),
                 codes::kHeader);
    } else {
      try {
        parseRoot(ctx, root, spec);
        validateNames(ctx, spec);
        applyInheritance(spec);
        validateEffective(ctx, spec);
      } catch (const YAML::Exception& e) {
        reportYamlException(sink, e);
      }
    }
  }

  result.diagnostics = sink.take();
  if (countErrors(result.diagnostics) == 0) {
    result.config = std::move(spec);
  }
  return result;
}

}  // namespace

LoadResult loadConfigString(std::string_view text, const std::string& pseudo_path) {
  // Every reader reports bad values as diagnostics and never throws; this is the last line of
  // defence, so that a bug in one of them fails a reload or `bulwark check` with a message
  // instead of terminating the process.
  try {
    return loadUnguarded(text, pseudo_path);
  } catch (const std::exception& e) {
    LoadResult result;
    DiagnosticSink sink(pseudo_path);
    sink.error(Mark{}, "", fmt::format("internal error while reading the config: {}", e.what()),
               codes::kInternal);
    result.diagnostics = sink.take();
    return result;
  }
}

LoadResult loadConfigFile(const std::string& path) {
  std::string text;
  int read_errno = 0;
  errno = 0;
  if (FILE* file = std::fopen(path.c_str(), "rb")) {
    char chunk[64 * 1024];
    size_t n = 0;
    while ((n = std::fread(chunk, 1, sizeof(chunk), file)) > 0) {
      text.append(chunk, n);
    }
    if (std::ferror(file) != 0) {
      read_errno = errno != 0 ? errno : EIO;
    }
    std::fclose(file);
  } else {
    read_errno = errno != 0 ? errno : EIO;
  }
  if (read_errno != 0) {
    LoadResult result;
    result.unreadable = true;
    DiagnosticSink sink(path);
    sink.error(Mark{}, "", fmt::format("cannot read the file: {}", std::strerror(read_errno)),
               codes::kUnreadable);
    result.diagnostics = sink.take();
    return result;
  }
  return loadConfigString(text, path);
}

}  // namespace bulwark::config
