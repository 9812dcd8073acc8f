# BULWARK_SANITIZE=address|undefined|address,undefined|thread applies to every target.
if(BULWARK_SANITIZE)
  add_compile_options(-fsanitize=${BULWARK_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${BULWARK_SANITIZE})
  if(BULWARK_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
