#include "tests/support/grpc_codec.h"

#include <cstdio>

#include "common/grpc_status.h"

namespace bulwark::testing {

const char* grpcStatusName(GrpcStatus status) {
  const auto& names = bulwark::grpcStatusNames();
  const auto i = static_cast<size_t>(status);
  // The table's names are string literals, so data() is NUL-terminated.
  return static_cast<int>(status) >= 0 && i < names.size() ? names[i].data() : "INVALID_CODE";
}

std::string encodeGrpcPrefix(uint32_t declared_length, uint8_t flag) {
  std::string out(5, '\0');
  out[0] = static_cast<char>(flag);
  out[1] = static_cast<char>((declared_length >> 24) & 0xff);
  out[2] = static_cast<char>((declared_length >> 16) & 0xff);
  out[3] = static_cast<char>((declared_length >> 8) & 0xff);
  out[4] = static_cast<char>(declared_length & 0xff);
  return out;
}

std::string encodeGrpcMessage(std::string_view payload, bool compressed) {
  std::string out = encodeGrpcPrefix(static_cast<uint32_t>(payload.size()), compressed ? 1 : 0);
  out.append(payload);
  return out;
}

std::optional<std::vector<std::string>> decodeGrpcMessages(std::string_view body) {
  std::vector<std::string> out;
  while (!body.empty()) {
    if (body.size() < 5) {
      return std::nullopt;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    const uint64_t len =
        (uint64_t{p[1]} << 24) | (uint64_t{p[2]} << 16) | (uint64_t{p[3]} << 8) | uint64_t{p[4]};
    if (body.size() - 5 < len) {
      return std::nullopt;
    }
    out.emplace_back(body.substr(5, len));
    body.remove_prefix(5 + len);
  }
  return out;
}

std::string decodeGrpcMessageHeader(std::string_view value) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() && hex(value[i + 1]) >= 0 &&
        hex(value[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(value[i + 1]) * 16 + hex(value[i + 2])));
      i += 2;
    } else {
      out.push_back(value[i]);
    }
  }
  return out;
}

std::string encodeGrpcMessageHeader(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out.append(buf);
    }
  }
  return out;
}

}  // namespace bulwark::testing
