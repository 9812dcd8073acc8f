#include "proxy/upstream/grpc_health.h"

namespace bulwark::upstream::grpc_health {
namespace {

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool readVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) {
      return false;
    }
    auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string encodeCheckRequest(std::string_view service) {
  std::string message;
  if (!service.empty()) {
    message.push_back(0x0a);  // field 1, wire type 2 (length-delimited)
    appendVarint(message, service.size());
    message.append(service);
  }
  std::string framed;
  framed.push_back(0);  // not compressed
  auto len = static_cast<uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    framed.push_back(static_cast<char>((len >> shift) & 0xff));
  }
  framed.append(message);
  return framed;
}

std::optional<uint32_t> decodeCheckResponse(std::string_view body) {
  if (body.size() < 5 || body[0] != 0) {
    return std::nullopt;  // compressed answers are not expected
  }
  uint32_t len = 0;
  for (int i = 1; i <= 4; ++i) {
    len = (len << 8) | static_cast<uint8_t>(body[i]);
  }
  if (body.size() < 5 + static_cast<size_t>(len)) {
    return std::nullopt;
  }
  std::string_view msg = body.substr(5, len);
  uint32_t status = 0;
  while (!msg.empty()) {
    uint64_t key = 0;
    if (!readVarint(msg, key)) {
      return std::nullopt;
    }
    uint64_t field = key >> 3;
    uint64_t wire = key & 7;
    uint64_t value = 0;
    switch (wire) {
      case 0:
        if (!readVarint(msg, value)) {
          return std::nullopt;
        }
        if (field == 1) {
          status = static_cast<uint32_t>(value);
        }
        break;
      case 1:  // fixed64
      case 5:  // fixed32
      case 2:  // length-delimited
        if (wire == 2 && !readVarint(msg, value)) {
          return std::nullopt;
        }
        if (wire != 2) {
          value = wire == 1 ? 8 : 4;
        }
        if (msg.size() < value) {
          return std::nullopt;
        }
        msg.remove_prefix(value);
        break;
      default: return std::nullopt;
    }
  }
  return status;
}

}  // namespace bulwark::upstream::grpc_health
