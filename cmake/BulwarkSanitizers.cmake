# BULWARK_SANITIZE=address|undefined|address,undefined|thread applies to every target.
if(BULWARK_SANITIZE)
  # RelWithDebInfo compiles at -O1 -g1 here instead of -O2 -g: the level the sanitizers are
  # documented for, and line tables with inlined frames are all a report's stack needs. It
  # nearly halves the compile time (proxy/server/server.cc under ASan + UBSan: 43 s of CPU at
  # -O2 -g, 23 s at -O1 -g1), which keeps the sanitizer step of scripts/test.sh affordable.
  # Debug builds keep their -O0 -g.
  set(CMAKE_C_FLAGS_RELWITHDEBINFO "-O1 -g1 -DNDEBUG")
  set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -g1 -DNDEBUG")
  add_compile_options(-fsanitize=${BULWARK_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${BULWARK_SANITIZE})
  if(BULWARK_SANITIZE MATCHES "thread")
    # g++ 12 warns (-Wtsan, an error with BULWARK_WERROR) that TSan does not model
    # atomic_thread_fence. The fences here (filters/bulkhead) only order atomics against each
    # other; the data they guard is locked, so TSan still sees every non-atomic access paired.
    add_compile_options(-Wno-tsan)
  endif()
  if(BULWARK_SANITIZE MATCHES "address")
    # With -fsanitize=address, g++ 12 reports -Wmaybe-uninitialized (an error with
    # BULWARK_WERROR) inside <regex> (std::function moved in _NFA::_M_insert_*), in every file
    # that compiles a std::regex: a false positive of the instrumented code, not of ours. The
    # warning stays on, as an error, in the normal build.
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  if(BULWARK_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
