#include "proxy/http/decision_record.h"

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

TEST(DecisionRecordTest, JsonHasEveryPart) {
  DecisionRecord record;
  record.setRoute("tasks");
  record.startAttempt(1, "initial", "", "10.0.0.1:80");
  record.endAttempt(1, "gateway-error", 503, 12);
  record.startAttempt(2, "retry", "gateway-error", "10.0.0.2:80");
  record.endAttempt(2, "success", 200, 8);
  record.endAttempt(2, "cancelled", 0, 99);  // an ended attempt keeps its outcome
  record.add("rate_limited", {{"key", "acme"}, {"limit", "5/s"}});
  record.setRetryStop("budget_exhausted");
  record.setDeadlineReceived(500);
  record.setDeadlineSent(480);
  const nlohmann::json j = record.toJson();
  EXPECT_EQ("tasks", j["route"]);
  ASSERT_EQ(2u, j["attempts"].size());
  EXPECT_EQ("gateway-error", j["attempts"][0]["outcome"]);
  EXPECT_EQ(503, j["attempts"][0]["status"]);
  EXPECT_EQ("gateway-error", j["attempts"][1]["reason"]);
  EXPECT_EQ("success", j["attempts"][1]["outcome"]);
  EXPECT_EQ(8, j["attempts"][1]["duration_ms"]);
  EXPECT_EQ("acme", j["rate_limited"]["key"]);
  EXPECT_EQ("budget_exhausted", j["retry_stop"]);
  EXPECT_EQ(500, j["deadline_received_ms"]);
  EXPECT_EQ(480, j["deadline_sent_ms"]);
  EXPECT_TRUE(record.has("rate_limited"));
  EXPECT_FALSE(record.has("shed"));
  // The access log writes the text form: the same object.
  EXPECT_EQ(j, nlohmann::json::parse(record.toJsonText()));
}

TEST(DecisionRecordTest, JsonTextOfARecordWithOnlyARoute) {
  DecisionRecord record;
  record.setRoute("a \"quoted\" route");
  EXPECT_EQ(record.toJson(), nlohmann::json::parse(record.toJsonText()));
  record.startAttempt(1, "initial", "", "10.0.0.1:80");
  EXPECT_EQ(record.toJson(), nlohmann::json::parse(record.toJsonText()));
}

TEST(DecisionRecordTest, CompactIsOneSafeHeaderLine) {
  DecisionRecord record;
  record.setRoute("api");
  record.startAttempt(1, "initial", "", "10.0.0.1:80");
  // Values come from requests (keys): separators and control bytes must not break the line.
  record.add("rate_limited", {{"key", "a;b=c,d\r\nX-Evil: 1"}});
  const std::string line = record.compact();
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("route=api; attempt=1,initial,10.0.0.1:80,running,0,0ms"), std::string::npos)
      << line;
  EXPECT_NE(line.find("rate_limited(key=a_b_c_d__X-Evil:_1)"), std::string::npos) << line;
}

TEST(DecisionRecordTest, CompactIsBounded) {
  DecisionRecord record;
  record.setRoute("r");
  for (uint32_t i = 1; i <= 500; ++i) {
    record.startAttempt(i, "retry", "reset", "10.0.0.1:80");
  }
  const std::string line = record.compact();
  EXPECT_EQ(DecisionRecord::kMaxCompactBytes, line.size());
  EXPECT_EQ("...", line.substr(line.size() - 3));
}

}  // namespace
}  // namespace bulwark::http
