# flags.cmake - the fuzzing build (-DCGRAD_FUZZ=ON, clang only): every target, the library
# included, is compiled with libFuzzer's coverage instrumentation, AddressSanitizer and
# UndefinedBehaviorSanitizer (undefined behaviour stops the run, so libFuzzer records it).
# Included from the top-level CMakeLists.txt before any target; fuzz/CMakeLists.txt adds the
# targets. `make fuzz` / scripts/fuzz-all configure build-fuzz this way and run them.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CGRAD_FUZZ needs clang (configure with CC=clang); found ${CMAKE_C_COMPILER_ID}")
endif()
set(CGRAD_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_compile_options(-fsanitize=fuzzer-no-link ${CGRAD_SANITIZERS})
add_link_options(${CGRAD_SANITIZERS})
