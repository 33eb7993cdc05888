# Fault tests: misbehaving clients beside healthy, byte-checked traffic
# (see docs/reliability.md). Each starts weft-echo on loopback, labelled
# "faults"; run them alone with
#   ctest -L faults
# bench/faults.sh runs the same programs at full scale with a baseline.
if(NOT TARGET weft-echo OR NOT TARGET weft-load)
  message(STATUS "fault tests need weft-echo and weft-load (WEFT_BUILD_TOOLS=ON): skipped")
  return()
endif()
include(${CMAKE_CURRENT_SOURCE_DIR}/itlib.cmake)

add_library(ft_lib STATIC ft_lib.c ${PROJECT_SOURCE_DIR}/tools/hist.c ${PROJECT_SOURCE_DIR}/stats/hist.c)
target_include_directories(ft_lib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR})
target_link_libraries(ft_lib PUBLIC itlib Threads::Threads m)
target_compile_options(ft_lib PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes)
if(NOT WEFT_SANITIZE STREQUAL "")
  target_compile_definitions(ft_lib PUBLIC FT_SANITIZED=1)
endif()

set(WEFT_FT_TESTS)
foreach(ft slowloris reset vanish slow_consumer oversize limits sigterm churn attack)
  add_executable(ft_${ft} ft_${ft}.c)
  target_link_libraries(ft_${ft} PRIVATE ft_lib)
  target_compile_options(ft_${ft} PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes)
  if(ft STREQUAL "churn")
    add_test(NAME ft_${ft} COMMAND ft_${ft} $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-load>)
  else()
    add_test(NAME ft_${ft} COMMAND ft_${ft} $<TARGET_FILE:weft-echo>)
  endif()
  list(APPEND WEFT_FT_TESTS ft_${ft})
endforeach()
set_tests_properties(${WEFT_FT_TESTS} PROPERTIES LABELS faults TIMEOUT 60)
# Thousands of connections and fd limits: keep them apart from each other
# and from the other socket-heavy tests.
set_tests_properties(${WEFT_FT_TESTS} PROPERTIES RUN_SERIAL TRUE)
