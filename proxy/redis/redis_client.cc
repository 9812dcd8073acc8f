#include "proxy/redis/redis_client.h"

#include <array>
#include <utility>

#include <fmt/format.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "proxy/config/address.h"
#include "proxy/upstream/dns_resolver.h"

namespace bulwark::redis {

std::string_view opResultLabel(OpResult result) {
  switch (result) {
    case OpResult::Ok: return "ok";
    case OpResult::Timeout: return "timeout";
    case OpResult::Unavailable: return "unavailable";
    case OpResult::ConnectionLost: return "connection_lost";
  }
  return "unknown";
}

Script::Script(std::string body) : body_(std::move(body)) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_Digest(body_.data(), body_.size(), digest.data(), &len, EVP_sha1(), nullptr);
  for (unsigned int i = 0; i < len; ++i) {
    fmt::format_to(std::back_inserter(sha1_), "{:02x}", digest[i]);
  }
}

RedisMetrics::RedisMetrics(prometheus::Registry& registry)
    : operations_(prometheus::BuildCounter()
                      .Name("bulwark_redis_operations_total")
                      .Help("Operations on the shared-state Redis by operation and result")
                      .Register(registry)),
      connected_gauge_(prometheus::BuildGauge()
                           .Name("bulwark_redis_connected")
                           .Help("Worker connections to Redis that are up (breaker closed)")
                           .Register(registry)
                           .Add({})) {}

prometheus::Counter& RedisMetrics::operation(std::string_view op, std::string_view result) {
  return operations_.Add({{"op", std::string(op)}, {"result", std::string(result)}});
}

void RedisMetrics::connectedDelta(int delta) {
  connected_.fetch_add(delta);
  connected_gauge_.Increment(delta);
}

bool RedisClient::Reply::isError() const {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}

std::string_view replyString(const redisReply* reply) {
  if (reply == nullptr || reply->str == nullptr ||
      (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS &&
       reply->type != REDIS_REPLY_ERROR)) {
    return {};
  }
  return {reply->str, reply->len};
}

long long replyInteger(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
}

const redisReply* replyElement(const redisReply* reply, size_t i) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements) {
    return nullptr;
  }
  return reply->element[i];
}

/** One operation waiting for its answer. Thread: owning worker. */
struct RedisClient::Operation {
  std::string_view op;  // a literal (command()'s contract)
  Callback callback;    // null: fire and forget
  std::chrono::steady_clock::time_point deadline;
  bool internal = false;  // connection setup and probes: not counted, not breaker input
};

RedisClient::RedisClient(event::Dispatcher& dispatcher, config::RedisSpec spec,
                         std::shared_ptr<RedisMetrics> metrics)
    : dispatcher_(dispatcher), spec_(std::move(spec)), metrics_(std::move(metrics)) {
  if (auto hp = config::parseHostPort(spec_.address)) {
    host_ = hp->host;
    port_ = hp->port;
    host_is_literal_ = hp->kind != config::HostPort::Kind::Name;
  }
  retry_timer_ = dispatcher_.createTimer([this] { connect(); });
  timeout_timer_ = dispatcher_.createTimer([this] { onTimeouts(); });
  metrics_->clientsDelta(1);
  connect();
}

RedisClient::~RedisClient() {
  // Whoever waited has gone (callers keep the client alive while they wait): drop the callbacks
  // without running them, then the connection.
  operations_.clear();
  setReady(false);
  resolver_.reset();
  if (context_ != nullptr) {
    redisAsyncContext* ac = context_;
    context_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
  }
  metrics_->clientsDelta(-1);
}

void RedisClient::connect() {
  if (host_.empty()) {
    lost("invalid address");
    return;
  }
  if (host_is_literal_) {
    connectTo(host_);
    return;
  }
  if (resolver_ == nullptr) {
    resolver_ = std::make_unique<upstream::DnsResolver>(dispatcher_);
  }
  state_ = State::Resolving;
  resolver_->resolve(host_, [this](Result<upstream::DnsAnswer> answer) {
    if (!answer || answer->addresses.empty()) {
      lost(answer ? "no address for " + host_ : answer.error());
      return;
    }
    connectTo(answer->addresses.front());
  });
}

void RedisClient::connectTo(const std::string& ip) {
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), port_);
  if (ac == nullptr) {
    lost("out of memory");
    return;
  }
  if (ac->err != 0) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    lost(why);
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, dispatcher_.base());
  redisAsyncSetConnectCallback(ac, &RedisClient::onConnected);
  redisAsyncSetDisconnectCallback(ac, &RedisClient::onDisconnected);
  context_ = ac;
  state_ = State::Probing;
  // Queued before the connection completes; hiredis sends them once it does. The PING's
  // deadline also bounds a connect that never completes (a black-holed address).
  auto setup_failed = [this](std::string_view what) {
    return [this, what](const Reply& reply) {
      if (reply.result != OpResult::Ok || reply.isError()) {
        fail(fmt::format("{} failed: {}", what,
                         reply.isError() ? replyString(reply.reply) : opResultLabel(reply.result)));
      }
    };
  };
  if (!spec_.password.empty()) {
    send("auth", {"AUTH", spec_.password}, setup_failed("AUTH"), true);
  }
  if (spec_.database != 0) {
    send("select", {"SELECT", std::to_string(spec_.database)}, setup_failed("SELECT"), true);
  }
  send(
      "ping", {"PING"},
      [this](const Reply& reply) {
        if (reply.result == OpResult::Ok && !reply.isError()) {
          consecutive_failures_ = 0;
          retry_interval_ = kMinRetryInterval;
          if (state_ != State::Ready) {
            spdlog::info("redis {}: connected", spec_.address);
          }
          state_ = State::Ready;
          setReady(true);
        } else if (context_ != nullptr) {
          fail(fmt::format("probe failed: {}", reply.isError() ? replyString(reply.reply)
                                                               : opResultLabel(reply.result)));
        }
      },
      true);
}

void RedisClient::onConnected(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self == nullptr || status == REDIS_OK || ac != self->context_) {
    return;
  }
  // hiredis frees the context after this callback.
  self->context_ = nullptr;
  self->lost(ac->errstr);
}

void RedisClient::onDisconnected(const redisAsyncContext* ac, int status) {
  (void)status;
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self == nullptr || ac != self->context_) {
    return;  // a context this client dropped itself
  }
  self->context_ = nullptr;
  self->lost(ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

void RedisClient::onReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self == nullptr) {
    return;
  }
  const auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(privdata));
  if (reply == nullptr) {
    // The context is going away (closed by the peer, or freed): nothing more can be sent on it.
    if (ac == self->context_) {
      self->context_ = nullptr;
      self->lost(ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
    }
    self->complete(id, OpResult::ConnectionLost, nullptr);
    return;
  }
  self->complete(id, OpResult::Ok, static_cast<const redisReply*>(reply));
}

void RedisClient::fail(std::string_view why) {
  redisAsyncContext* ac = context_;
  context_ = nullptr;
  lost(why);
  if (ac != nullptr) {
    // Runs the callbacks of what was sent on it with no reply (ConnectionLost).
    redisAsyncFree(ac);
  }
}

void RedisClient::lost(std::string_view why) {
  if (state_ == State::Backoff) {
    return;
  }
  if (state_ == State::Ready) {
    spdlog::warn("redis {}: unavailable ({}); failure modes apply, retrying in {} ms",
                 spec_.address, why, retry_interval_.count());
  } else {
    spdlog::debug("redis {}: connect attempt failed ({}); retrying in {} ms", spec_.address, why,
                  retry_interval_.count());
  }
  state_ = State::Backoff;
  setReady(false);
  retry_timer_->enableTimer(retry_interval_);
  retry_interval_ = std::min(retry_interval_ * 2, kMaxRetryInterval);
}

void RedisClient::setReady(bool ready) {
  if (ready != counted_connected_) {
    counted_connected_ = ready;
    metrics_->connectedDelta(ready ? 1 : -1);
  }
}

prometheus::Counter& RedisClient::counter(std::string_view op, std::string_view result) {
  auto by_op = counters_.find(op);
  if (by_op == counters_.end()) {
    by_op =
        counters_
            .emplace(std::string(op), std::map<std::string, prometheus::Counter*, std::less<>>())
            .first;
  }
  auto it = by_op->second.find(result);
  if (it == by_op->second.end()) {
    it = by_op->second.emplace(std::string(result), &metrics_->operation(op, result)).first;
  }
  return *it->second;
}

uint64_t RedisClient::send(std::string_view op, const std::vector<std::string>& args,
                           Callback callback, bool internal) {
  if (context_ == nullptr || (!internal && state_ != State::Ready)) {
    return 0;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lens.push_back(arg.size());
  }
  const uint64_t id = next_id_++;
  // hiredis' privdata carries the operation's id, not a pointer to it: a reply that arrives
  // after the operation timed out finds no id in operations_ instead of freed memory.
  void* privdata = reinterpret_cast<void*>(  // NOLINT(performance-no-int-to-ptr)
      static_cast<uintptr_t>(id));
  if (redisAsyncCommandArgv(context_, &RedisClient::onReply, privdata,
                            static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
    return 0;
  }
  auto operation = std::make_unique<Operation>();
  operation->op = op;
  operation->callback = std::move(callback);
  operation->deadline = std::chrono::steady_clock::now() + spec_.timeout;
  operation->internal = internal;
  operations_.emplace(id, std::move(operation));
  if (!timeout_timer_->enabled()) {
    timeout_timer_->enableTimer(spec_.timeout);
  }
  return id;
}

void RedisClient::complete(uint64_t id, OpResult result, const redisReply* reply) {
  auto it = operations_.find(id);
  if (it == operations_.end()) {
    return;  // timed out, or dropped with the client
  }
  std::unique_ptr<Operation> operation = std::move(it->second);
  operations_.erase(it);
  if (!operation->internal) {
    std::string_view label = opResultLabel(result);
    if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
      // NOSCRIPT is answered by resending the script (evalScript), not a failure.
      label = replyString(reply).substr(0, 8) == "NOSCRIPT" ? "noscript" : "error";
    }
    counter(operation->op, label).Increment();
    if (result == OpResult::Ok) {
      consecutive_failures_ = 0;
    } else if (result == OpResult::Timeout && ++consecutive_failures_ >= kFailuresToOpen &&
               context_ != nullptr) {
      // Redis is up enough to hold the connection but does not answer (stopped, overloaded):
      // stop making every request wait for the timeout.
      fail(fmt::format("{} operations in a row timed out", consecutive_failures_));
    }
  }
  if (operation->callback) {
    operation->callback(Reply{result, reply});
  }
}

void RedisClient::onTimeouts() {
  const auto now = std::chrono::steady_clock::now();
  // Deadlines grow with the id (one timeout for every operation), so expired ones come first.
  while (!operations_.empty()) {
    auto it = operations_.begin();
    if (it->second->deadline > now) {
      timeout_timer_->enableTimer(
          std::chrono::duration_cast<std::chrono::microseconds>(it->second->deadline - now));
      return;
    }
    const bool internal = it->second->internal;
    complete(it->first, OpResult::Timeout, nullptr);
    if (internal && context_ != nullptr && state_ != State::Ready) {
      fail("no answer to the connection probe");
    }
  }
}

RedisClient::HandlePtr RedisClient::command(std::string_view op,
                                            const std::vector<std::string>& args,
                                            Callback callback) {
  auto cancelled = std::make_shared<bool>(false);
  Callback guarded;
  if (callback) {
    guarded = [cancelled, callback = std::move(callback)](const Reply& reply) {
      if (!*cancelled) {
        callback(reply);
      }
    };
  }
  if (send(op, args, std::move(guarded), false) == 0) {
    counter(op, opResultLabel(OpResult::Unavailable)).Increment();
    return nullptr;
  }
  return std::make_unique<Handle>([cancelled] { *cancelled = true; });
}

RedisClient::HandlePtr RedisClient::evalScript(std::string_view op, const Script& script,
                                               const std::vector<std::string>& keys,
                                               const std::vector<std::string>& args,
                                               Callback callback) {
  // One argv for both forms: EVAL differs from EVALSHA only in its first two arguments.
  auto argv = std::make_shared<std::vector<std::string>>();
  argv->reserve(3 + keys.size() + args.size());
  argv->push_back("EVALSHA");
  argv->push_back(script.sha1());
  argv->push_back(std::to_string(keys.size()));
  argv->insert(argv->end(), keys.begin(), keys.end());
  argv->insert(argv->end(), args.begin(), args.end());
  auto cancelled = std::make_shared<bool>(false);
  // Redis forgets scripts on restart (and SCRIPT FLUSH): resend the body once, then EVALSHA
  // finds it again. Scripts are statics, so the pointer outlives the operation.
  Callback on_reply = [this, alive = std::weak_ptr<bool>(alive_), cancelled, argv,
                       body = &script.body(), op,
                       callback = std::move(callback)](const Reply& reply) {
    if (reply.isError() && replyString(reply.reply).substr(0, 8) == "NOSCRIPT" &&
        !alive.expired()) {
      (*argv)[0] = "EVAL";
      (*argv)[1] = *body;
      Callback final_callback = [cancelled, callback](const Reply& r) {
        if (!*cancelled && callback) {
          callback(r);
        }
      };
      if (send(op, *argv, final_callback, false) != 0) {
        return;
      }
      counter(op, opResultLabel(OpResult::Unavailable)).Increment();
      if (!*cancelled && callback) {
        callback(Reply{OpResult::Unavailable, nullptr});
      }
      return;
    }
    if (!*cancelled && callback) {
      callback(reply);
    }
  };
  if (send(op, *argv, std::move(on_reply), false) == 0) {
    counter(op, opResultLabel(OpResult::Unavailable)).Increment();
    return nullptr;
  }
  return std::make_unique<Handle>([cancelled] { *cancelled = true; });
}

}  // namespace bulwark::redis
