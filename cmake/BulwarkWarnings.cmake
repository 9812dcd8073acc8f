# Warnings for project code only (third-party C sources such as llhttp are compiled without them).
add_library(bulwark_warnings INTERFACE)
target_compile_options(bulwark_warnings INTERFACE -Wall -Wextra)
if(BULWARK_WERROR)
  target_compile_options(bulwark_warnings INTERFACE -Werror)
endif()
