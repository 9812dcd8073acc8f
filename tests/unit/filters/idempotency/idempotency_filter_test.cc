#include "filters/idempotency/idempotency_filter.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include "tests/mocks/fake_filter_callbacks.h"
#include "tests/support/simulated_time.h"

namespace bulwark::filters::idempotency {
namespace {

using namespace std::chrono_literals;
using mocks::FakeFactoryContext;
using mocks::FilterUnderTest;

config::IdempotencySpec dedupe(uint64_t max_body = 1024) {
  config::IdempotencySpec spec;
  spec.dedupe_enabled = true;
  spec.dedupe_ttl = std::chrono::duration_cast<config::Duration>(1h);
  spec.dedupe_max_entries = 100;
  spec.dedupe_max_body_bytes = max_body;
  return spec;
}

config::RouteSpec routeWith(config::IdempotencySpec spec) {
  config::RouteSpec route;
  route.name = "tasks";
  route.upstream = "task";
  route.policies.idempotency = std::move(spec);
  return route;
}

/** An evbuffer holding `text`, freed with the test. */
struct Buffer {
  explicit Buffer(std::string_view text) : buf(evbuffer_new()) {
    evbuffer_add(buf, text.data(), text.size());
  }
  ~Buffer() { evbuffer_free(buf); }
  evbuffer* buf;
};

class IdempotencyFilterTest : public ::testing::Test {
protected:
  http::FilterFactoryCb build(FakeFactoryContext& ctx) {
    auto cb = mocks::createOrFail(*factory_, ctx);
    state(ctx).clock.setNowForTest([this] { return time_.now(); });
    return cb;
  }
  static IdempotencyState& state(FakeFactoryContext& ctx) {
    return *ctx.onlyState<IdempotencyState>();
  }
  /** Starts a request (headers, then `body` in one chunk when not empty). @return the last status.
   */
  std::unique_ptr<FilterUnderTest> request(const http::FilterFactoryCb& cb, std::string key,
                                           std::string body, http::FilterStatus* status,
                                           std::string method = "POST",
                                           std::string path = "/v1/tasks") {
    auto r = std::make_unique<FilterUnderTest>(dispatcher_, cb);
    r->callbacks->headers.method = std::move(method);
    r->callbacks->headers.path = std::move(path);
    if (!key.empty()) {
      r->callbacks->headers.headers.add("idempotency-key", key);
    }
    *status = r->filter->onRequestHeaders(r->callbacks->headers, body.empty());
    if (*status == http::FilterStatus::StopIterationAndBuffer) {
      Buffer b(body);
      *status = r->filter->onRequestData(b.buf, true);
    }
    return r;
  }
  /** Sends an upstream response through the filter and completes the stream. */
  static void respond(FilterUnderTest& r, uint32_t status, std::string body) {
    http::ResponseHeaders headers;
    headers.status = status;
    headers.headers.add("content-type", "application/json");
    headers.headers.add("content-length", std::to_string(body.size()));
    headers.headers.add("x-request-id", "first");
    r.filter->onResponseHeaders(headers, body.empty());
    if (!body.empty()) {
      Buffer b(body);
      r.filter->onResponseData(b.buf, true);
    }
    r.complete(status);
  }
  double result(FakeFactoryContext& ctx, const std::string& label) {
    return counterFamily(ctx.stats().registry(), "bulwark_idempotency_results_total", "")
        .Add({{"route", "tasks"}, {"result", label}})
        .Value();
  }
  double completion(FakeFactoryContext& ctx, const std::string& label) {
    return counterFamily(ctx.stats().registry(), "bulwark_idempotency_completions_total", "")
        .Add({{"route", "tasks"}, {"result", label}})
        .Value();
  }

  event::Dispatcher dispatcher_;
  testing::SimulatedTime time_;
  http::FilterFactoryPtr factory_ = makeFactory();
};

TEST_F(IdempotencyFilterTest, EnabledOnlyByIdempotencyBlock) {
  EXPECT_EQ(factory_->name(), "idempotency");
  EXPECT_TRUE(factory_->enabledFor(routeWith(dedupe())));
  EXPECT_FALSE(factory_->enabledFor(config::RouteSpec{}));
}

// The first request proceeds; after its 201 completed, a repeat gets the stored answer verbatim,
// marked as a replay, without the first exchange's framing or request id.
TEST_F(IdempotencyFilterTest, ReplaysTheStoredResponse) {
  FakeFactoryContext ctx(routeWith(dedupe()));
  auto cb = build(ctx);
  http::FilterStatus status;
  auto first = request(cb, "k1", R"({"title":"a"})", &status);
  ASSERT_EQ(status, http::FilterStatus::Continue);
  EXPECT_TRUE(first->callbacks->replies.empty());
  respond(*first, 201, R"({"id":"t1"})");
  EXPECT_EQ(completion(ctx, "stored"), 1);

  auto again = request(cb, "k1", R"({"title":"a"})", &status);
  EXPECT_EQ(status, http::FilterStatus::StopIteration);
  const http::LocalReply& reply = again->callbacks->reply();
  EXPECT_TRUE(reply.verbatim);
  EXPECT_EQ(reply.httpStatus(), 201u);
  EXPECT_EQ(reply.reason(), "idempotent_replay");
  EXPECT_EQ(reply.body, R"({"id":"t1"})");
  EXPECT_EQ(again->callbacks->replyHeader("x-bulwark-idempotent-replay"), "true");
  EXPECT_EQ(again->callbacks->replyHeader("content-type"), "application/json");
  EXPECT_FALSE(again->callbacks->replyHeader("content-length"));
  EXPECT_FALSE(again->callbacks->replyHeader("x-request-id"));
  EXPECT_EQ(result(ctx, "proceed"), 1);
  EXPECT_EQ(result(ctx, "replayed"), 1);
}

// While the first is in flight a repeat gets 409 (with Retry-After); another payload gets 422.
TEST_F(IdempotencyFilterTest, ConflictWhileInFlightAndMismatchOnOtherBody) {
  FakeFactoryContext ctx(routeWith(dedupe()));
  auto cb = build(ctx);
  http::FilterStatus status;
  auto first = request(cb, "k2", "body-a", &status);
  ASSERT_EQ(status, http::FilterStatus::Continue);
  auto dup = request(cb, "k2", "body-a", &status);
  EXPECT_EQ(status, http::FilterStatus::StopIteration);
  EXPECT_EQ(dup->callbacks->reply().httpStatus(), 409u);
  EXPECT_EQ(dup->callbacks->replyHeader("x-bulwark-reason"), "idempotency_key_in_flight");
  EXPECT_EQ(dup->callbacks->replyHeader("content-type"), "application/problem+json");
  EXPECT_EQ(dup->callbacks->replyHeader("retry-after"), "1");
  auto other = request(cb, "k2", "body-b", &status);
  EXPECT_EQ(other->callbacks->reply().httpStatus(), 422u);
  auto other_path = request(cb, "k2", "body-a", &status, "POST", "/v1/tasks/x");
  EXPECT_EQ(other_path->callbacks->reply().httpStatus(), 422u);
  EXPECT_EQ(result(ctx, "conflict"), 1);
  EXPECT_EQ(result(ctx, "mismatch"), 2);
  EXPECT_EQ(state(ctx).store.size(), 1u);
}

// A 5xx, a local reply (e.g. the router's 504) and a reset release the key: the retry proceeds.
TEST_F(IdempotencyFilterTest, FailuresReleaseTheKey) {
  FakeFactoryContext ctx(routeWith(dedupe()));
  auto cb = build(ctx);
  http::FilterStatus status;
  auto a = request(cb, "k3", "x", &status);
  respond(*a, 503, "down");
  EXPECT_EQ(completion(ctx, "released"), 1);
  auto b = request(cb, "k3", "x", &status);
  ASSERT_EQ(status, http::FilterStatus::Continue);
  b->complete(504, true, "request_timeout");  // local reply: no response hooks ran
  EXPECT_EQ(completion(ctx, "abandoned"), 1);
  auto c = request(cb, "k3", "x", &status);
  ASSERT_EQ(status, http::FilterStatus::Continue);
  c.reset();  // destroyed without completing (connection torn down)
  EXPECT_EQ(completion(ctx, "abandoned"), 2);
  auto d = request(cb, "k3", "x", &status);
  EXPECT_EQ(status, http::FilterStatus::Continue);
  EXPECT_EQ(result(ctx, "proceed"), 4);
}

// The body is buffered up to maxBodyBytes; beyond it the request is refused with 413 (a keyed
// request that cannot be deduplicated is not forwarded). A response above the bound is
// forwarded but not stored.
TEST_F(IdempotencyFilterTest, BodyBounds) {
  FakeFactoryContext ctx(routeWith(dedupe(8)));
  auto cb = build(ctx);
  auto r = std::make_unique<FilterUnderTest>(dispatcher_, cb);
  r->callbacks->headers.method = "POST";
  r->callbacks->headers.path = "/v1/tasks";
  r->callbacks->headers.headers.add("idempotency-key", "k4");
  ASSERT_EQ(r->filter->onRequestHeaders(r->callbacks->headers, false),
            http::FilterStatus::StopIterationAndBuffer);
  Buffer part("12345678");
  EXPECT_EQ(r->filter->onRequestData(part.buf, false), http::FilterStatus::StopIterationAndBuffer);
  Buffer whole("123456789");
  EXPECT_EQ(r->filter->onRequestData(whole.buf, false), http::FilterStatus::StopIteration);
  EXPECT_EQ(r->callbacks->reply().httpStatus(), 413u);
  EXPECT_EQ(result(ctx, "body_too_large"), 1);

  http::FilterStatus status;
  auto big = request(cb, "k5", "small", &status);
  ASSERT_EQ(status, http::FilterStatus::Continue);
  respond(*big, 200, "a response over eight bytes");
  EXPECT_EQ(completion(ctx, "too_large"), 1);
  auto again = request(cb, "k5", "small", &status);
  EXPECT_EQ(status, http::FilterStatus::Continue);  // not stored: the key was released
}

// Methods outside requiredFor and gRPC pass; onMissing: reject answers 400 without a key.
TEST_F(IdempotencyFilterTest, MissingKeyAndMethods) {
  auto spec = dedupe();
  spec.on_missing = "reject";
  FakeFactoryContext ctx(routeWith(spec));
  auto cb = build(ctx);
  http::FilterStatus status;
  auto get = request(cb, "", "", &status, "GET");
  EXPECT_EQ(status, http::FilterStatus::Continue);
  auto post = request(cb, "", "x", &status);
  EXPECT_EQ(status, http::FilterStatus::StopIteration);
  EXPECT_EQ(post->callbacks->reply().httpStatus(), 400u);
  EXPECT_EQ(post->callbacks->replyHeader("x-bulwark-reason"), "idempotency_key_missing");
  auto too_long = request(cb, std::string(300, 'k'), "x", &status);
  EXPECT_EQ(too_long->callbacks->reply().httpStatus(), 400u);
  EXPECT_EQ(result(ctx, "missing_key"), 1);
  EXPECT_EQ(result(ctx, "invalid_key"), 1);
}

// Stored answers expire after the TTL; the entries gauge follows the store.
TEST_F(IdempotencyFilterTest, TtlExpiry) {
  FakeFactoryContext ctx(routeWith(dedupe()));
  auto cb = build(ctx);
  http::FilterStatus status;
  auto first = request(cb, "k6", "x", &status);
  respond(*first, 200, "ok");
  auto gauge = gaugeFamily(ctx.stats().registry(), "bulwark_idempotency_entries", "")
                   .Add({{"route", "tasks"}})
                   .Value();
  EXPECT_EQ(gauge, 1);
  time_.advance(59min);
  auto replay = request(cb, "k6", "x", &status);
  EXPECT_EQ(status, http::FilterStatus::StopIteration);
  time_.advance(2min);
  auto fresh = request(cb, "k6", "x", &status);
  EXPECT_EQ(status, http::FilterStatus::Continue);
}

// sha256Hex reads every chunk of a buffer (the empty string's digest is the known constant).
TEST(Sha256HexTest, KnownDigests) {
  Buffer empty("");
  EXPECT_EQ(sha256Hex(empty.buf),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Buffer abc("ab");
  evbuffer* more = evbuffer_new();
  evbuffer_add(more, "c", 1);
  evbuffer_add_buffer(abc.buf, more);  // two chunks
  evbuffer_free(more);
  EXPECT_EQ(sha256Hex(abc.buf), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace bulwark::filters::idempotency
