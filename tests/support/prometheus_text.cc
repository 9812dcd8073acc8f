#include "tests/support/prometheus_text.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace bulwark::testing {

namespace {

bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

/** Cursor over one line. */
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool end() const { return i >= s.size(); }
  char peek() const { return end() ? '\0' : s[i]; }
  void skipSpaces() {
    while (!end() && (s[i] == ' ' || s[i] == '\t')) {
      ++i;
    }
  }
  bool readName(std::string* out, bool metric) {
    const size_t start = i;
    if (end() || !(metric ? isNameStart(s[i]) : (isNameStart(s[i]) && s[i] != ':'))) {
      return false;
    }
    while (!end() && isNameChar(s[i])) {
      ++i;
    }
    out->assign(s.substr(start, i - start));
    return true;
  }
};

bool parseValue(std::string_view token, double* out) {
  if (token == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (token == "+Inf" || token == "Inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (token == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (token.empty()) {
    return false;
  }
  const std::string copy(token);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

bool parseSample(std::string_view line, PrometheusSample* sample) {
  Cursor c{line};
  if (!c.readName(&sample->name, true)) {
    return false;
  }
  if (c.peek() == '{') {
    ++c.i;
    while (true) {
      c.skipSpaces();
      if (c.peek() == '}') {
        ++c.i;
        break;
      }
      std::string label;
      if (!c.readName(&label, false)) {
        return false;
      }
      c.skipSpaces();
      if (c.peek() != '=') {
        return false;
      }
      ++c.i;
      c.skipSpaces();
      if (c.peek() != '"') {
        return false;
      }
      ++c.i;
      std::string value;
      while (true) {
        if (c.end()) {
          return false;
        }
        const char ch = c.s[c.i++];
        if (ch == '"') {
          break;
        }
        if (ch == '\\') {
          if (c.end()) {
            return false;
          }
          const char esc = c.s[c.i++];
          if (esc == 'n') {
            value.push_back('\n');
          } else if (esc == '\\' || esc == '"') {
            value.push_back(esc);
          } else {
            return false;
          }
        } else {
          value.push_back(ch);
        }
      }
      if (sample->labels.count(label) != 0) {
        return false;  // duplicate label name
      }
      sample->labels[label] = std::move(value);
      c.skipSpaces();
      if (c.peek() == ',') {
        ++c.i;
      } else if (c.peek() != '}') {
        return false;
      }
    }
  }
  c.skipSpaces();
  const size_t vstart = c.i;
  while (!c.end() && c.peek() != ' ' && c.peek() != '\t') {
    ++c.i;
  }
  if (!parseValue(line.substr(vstart, c.i - vstart), &sample->value)) {
    return false;
  }
  c.skipSpaces();
  if (!c.end()) {
    const std::string ts(line.substr(c.i));
    char* end = nullptr;
    const long long v = std::strtoll(ts.c_str(), &end, 10);
    if (end != ts.c_str() + ts.size()) {
      return false;
    }
    sample->timestamp_ms = v;
  }
  return true;
}

bool includes(const Labels& have, const Labels& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<PrometheusText> PrometheusText::parse(std::string_view text, std::string* error) {
  PrometheusText out;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
      continue;
    }
    line.remove_prefix(first);
    if (line[0] == '#') {
      Cursor c{line, 1};
      c.skipSpaces();
      std::string keyword;
      const size_t kstart = c.i;
      while (!c.end() && c.peek() != ' ') {
        ++c.i;
      }
      keyword = std::string(line.substr(kstart, c.i - kstart));
      if (keyword != "HELP" && keyword != "TYPE") {
        continue;  // plain comment
      }
      c.skipSpaces();
      std::string family;
      if (!c.readName(&family, true)) {
        if (error) {
          *error =
              "line " + std::to_string(line_no) + ": bad # " + keyword + ": " + std::string(line);
        }
        return std::nullopt;
      }
      c.skipSpaces();
      std::string rest(line.substr(c.i));
      (keyword == "HELP" ? out.helps_ : out.types_)[family] = rest;
      continue;
    }
    PrometheusSample sample;
    if (!parseSample(line, &sample)) {
      if (error) {
        *error = "line " + std::to_string(line_no) + ": malformed sample: " + std::string(line);
      }
      return std::nullopt;
    }
    out.samples_.push_back(std::move(sample));
  }
  return out;
}

std::vector<PrometheusSample> PrometheusText::samples(std::string_view name) const {
  std::vector<PrometheusSample> out;
  for (const auto& s : samples_) {
    if (s.name == name) {
      out.push_back(s);
    }
  }
  return out;
}

std::optional<double> PrometheusText::value(std::string_view name, const Labels& labels) const {
  const PrometheusSample* only = nullptr;
  size_t matches = 0;
  for (const auto& s : samples_) {
    if (s.name != name) {
      continue;
    }
    if (s.labels == labels) {
      return s.value;
    }
    if (includes(s.labels, labels)) {
      only = &s;
      ++matches;
    }
  }
  if (matches == 1) {
    return only->value;
  }
  return std::nullopt;
}

double PrometheusText::sum(std::string_view name, const Labels& labels) const {
  double total = 0;
  for (const auto& s : samples_) {
    if (s.name == name && includes(s.labels, labels)) {
      total += s.value;
    }
  }
  return total;
}

bool PrometheusText::has(std::string_view name, const Labels& labels) const {
  for (const auto& s : samples_) {
    if (s.name == name && includes(s.labels, labels)) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> PrometheusText::type(std::string_view family) const {
  auto it = types_.find(family);
  if (it == types_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<std::string> PrometheusText::help(std::string_view family) const {
  auto it = helps_.find(family);
  if (it == helps_.end()) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace bulwark::testing
