#include "common/version.h"

namespace bulwark {

std::string versionString() { return std::string("bulwark ") + kVersion; }

}  // namespace bulwark
