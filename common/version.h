#pragma once

#include <string>

namespace bulwark {
inline constexpr const char* kVersion = "0.1.0";
/** "bulwark 0.1.0", for logs and `bulwark version`. */
std::string versionString();
}  // namespace bulwark
