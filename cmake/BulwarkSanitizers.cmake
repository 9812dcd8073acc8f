# BULWARK_SANITIZE=address|undefined|address,undefined|thread applies to every target.
if(BULWARK_SANITIZE)
  add_compile_options(-fsanitize=${BULWARK_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${BULWARK_SANITIZE})
  if(BULWARK_SANITIZE MATCHES "thread")
    # g++ 12 warns (-Wtsan, an error with BULWARK_WERROR) that TSan does not model
    # atomic_thread_fence. The fences here (filters/bulkhead) only order atomics against each
    # other; the data they guard is locked, so TSan still sees every non-atomic access paired.
    add_compile_options(-Wno-tsan)
  endif()
  if(BULWARK_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
