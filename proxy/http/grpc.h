#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace bulwark::http::grpc {

/** Parses grpc-timeout ("100m", "5S", "2H"); nullopt when malformed (callers then ignore it). */
std::optional<std::chrono::microseconds> parseTimeout(std::string_view value);
/**
 * Encodes a duration as grpc-timeout: at most 8 digits, in the finest unit that fits, rounded
 * down (never a longer deadline); negative is "0u", beyond 99999999H is 99999999H.
 */
std::string encodeTimeout(std::chrono::microseconds timeout);

}  // namespace bulwark::http::grpc
