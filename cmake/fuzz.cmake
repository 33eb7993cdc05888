# libFuzzer targets (configure with CC=clang -DWEFT_FUZZ=ON; fuzz/run.sh runs
# every target for a bounded time from its committed seed corpus).
#
# weft_fuzz_target(name sources...): a fuzz target that compiles the parser
# it drives directly, without weft_static (and so without jemalloc, which
# must not share the process with the sanitizers' allocator), so ASan sees
# every buffer at its exact size. Every sanitizer report aborts
# (-fno-sanitize-recover=all): a UBSan finding fails the run like a crash,
# whatever UBSAN_OPTIONS says.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "WEFT_FUZZ needs clang (configure with CC=clang)")
endif()

function(weft_fuzz_target name)
  add_executable(${name} ${ARGN})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include
                             ${WEFT_GENERATED_INCLUDE})
  target_compile_options(${name} PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes
                         -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
endfunction()
