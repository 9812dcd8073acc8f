#pragma once

namespace bulwark {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace bulwark
