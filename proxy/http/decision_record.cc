#include "proxy/http/decision_record.h"

#include <fmt/format.h>

#include "proxy/http/log_entry.h"

namespace bulwark::http {
namespace {

/** Header-safe text: visible ASCII kept, anything else (and the separators) as '_'. */
std::string headerSafe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '(' || c == ')' || c == '=') {
      c = '_';
    }
  }
  return out;
}

}  // namespace

void DecisionRecord::add(std::string name, Fields fields) {
  decisions_.emplace_back(std::move(name), std::move(fields));
}

bool DecisionRecord::has(std::string_view name) const {
  for (const auto& [n, fields] : decisions_) {
    if (n == name) {
      return true;
    }
  }
  return false;
}

void DecisionRecord::startAttempt(uint32_t number, std::string kind, std::string reason,
                                  std::string host) {
  Attempt a;
  a.number = number;
  a.kind = std::move(kind);
  a.reason = std::move(reason);
  a.host = std::move(host);
  attempts_.push_back(std::move(a));
}

void DecisionRecord::endAttempt(uint32_t number, std::string_view outcome, uint32_t status,
                                int64_t duration_ms) {
  for (Attempt& a : attempts_) {
    if (a.number == number && a.outcome.empty()) {
      a.outcome = std::string(outcome);
      a.status = status;
      a.duration_ms = duration_ms;
      return;
    }
  }
}

nlohmann::json DecisionRecord::toJson() const {
  nlohmann::json out = nlohmann::json::object();
  out["route"] = route_;
  if (!attempts_.empty()) {
    nlohmann::json attempts = nlohmann::json::array();
    for (const Attempt& a : attempts_) {
      nlohmann::json j = {{"n", a.number}, {"kind", a.kind}, {"host", a.host}};
      if (!a.reason.empty()) {
        j["reason"] = a.reason;
      }
      j["outcome"] = a.outcome.empty() ? "running" : a.outcome;
      if (a.status != 0) {
        j["status"] = a.status;
      }
      if (a.duration_ms >= 0) {
        j["duration_ms"] = a.duration_ms;
      }
      attempts.push_back(std::move(j));
    }
    out["attempts"] = std::move(attempts);
  }
  if (!retry_stop_.empty()) {
    out["retry_stop"] = retry_stop_;
  }
  for (const auto& [name, fields] : decisions_) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : fields) {
      j[k] = v;
    }
    out[name] = std::move(j);
  }
  if (deadline_received_ms_) {
    out["deadline_received_ms"] = *deadline_received_ms_;
  }
  if (deadline_sent_ms_) {
    out["deadline_sent_ms"] = *deadline_sent_ms_;
  }
  return out;
}

std::string DecisionRecord::toJsonText() const {
  std::string out;
  appendJson(out);
  return out;
}

void DecisionRecord::appendJson(std::string& out) const {
  out.append("{\"route\":");
  appendJsonString(out, route_);
  const auto field = [&out](std::string_view key) {
    out.push_back(',');
    appendJsonString(out, key);
    out.push_back(':');
  };
  if (!attempts_.empty()) {
    field("attempts");
    out.push_back('[');
    for (size_t i = 0; i < attempts_.size(); ++i) {
      const Attempt& a = attempts_[i];
      out.append(i == 0 ? "{\"n\":" : ",{\"n\":");
      appendNumber(out, a.number);
      out.append(",\"kind\":");
      appendJsonString(out, a.kind);
      field("host");
      appendJsonString(out, a.host);
      if (!a.reason.empty()) {
        field("reason");
        appendJsonString(out, a.reason);
      }
      field("outcome");
      appendJsonString(out, a.outcome.empty() ? std::string_view("running") : a.outcome);
      if (a.status != 0) {
        out.append(",\"status\":");
        appendNumber(out, a.status);
      }
      if (a.duration_ms >= 0) {
        out.append(",\"duration_ms\":");
        appendNumber(out, a.duration_ms);
      }
      out.push_back('}');
    }
    out.push_back(']');
  }
  if (!retry_stop_.empty()) {
    field("retry_stop");
    appendJsonString(out, retry_stop_);
  }
  for (const auto& [name, fields] : decisions_) {
    field(name);
    out.push_back('{');
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) {
        out.push_back(',');
      }
      appendJsonString(out, fields[i].first);
      out.push_back(':');
      appendJsonString(out, fields[i].second);
    }
    out.push_back('}');
  }
  if (deadline_received_ms_) {
    fmt::format_to(std::back_inserter(out), ",\"deadline_received_ms\":{}", *deadline_received_ms_);
  }
  if (deadline_sent_ms_) {
    fmt::format_to(std::back_inserter(out), ",\"deadline_sent_ms\":{}", *deadline_sent_ms_);
  }
  out.push_back('}');
}

std::string DecisionRecord::compact() const {
  std::string out = "route=" + headerSafe(route_);
  for (const Attempt& a : attempts_) {
    fmt::format_to(std::back_inserter(out), "; attempt={},{}{},{},{},{},{}ms", a.number, a.kind,
                   a.reason.empty() ? "" : ":" + headerSafe(a.reason), headerSafe(a.host),
                   a.outcome.empty() ? "running" : a.outcome, a.status,
                   std::max<int64_t>(a.duration_ms, 0));
  }
  for (const auto& [name, fields] : decisions_) {
    out += "; " + headerSafe(name);
    if (!fields.empty()) {
      out += "(";
      for (size_t i = 0; i < fields.size(); ++i) {
        out +=
            (i == 0 ? "" : ",") + headerSafe(fields[i].first) + "=" + headerSafe(fields[i].second);
      }
      out += ")";
    }
  }
  if (!retry_stop_.empty()) {
    out += "; retry_stop=" + headerSafe(retry_stop_);
  }
  if (deadline_received_ms_ || deadline_sent_ms_) {
    out += "; deadline=";
    out += deadline_received_ms_ ? fmt::format("in {}ms", *deadline_received_ms_) : "in none";
    out += deadline_sent_ms_ ? fmt::format(",out {}ms", *deadline_sent_ms_) : ",out none";
  }
  if (out.size() > kMaxCompactBytes) {
    out.resize(kMaxCompactBytes - 3);
    out += "...";
  }
  return out;
}

}  // namespace bulwark::http
