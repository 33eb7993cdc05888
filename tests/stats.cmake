# Statistics tests: the admin socket, the metrics listener, weft-stat, and
# the snapshot API under concurrency (see docs/stats.md). Real programs on loopback, labelled
# "stats"; run them alone with
#   ctest -L stats
if(NOT TARGET weft-echo OR NOT TARGET weft-stat)
  message(STATUS "stats tests need weft-echo and weft-stat (WEFT_BUILD_TOOLS=ON): skipped")
  return()
endif()

# The programs are weft_it_exe's, on itlib (tests/itlib.cmake).
include(${CMAKE_CURRENT_SOURCE_DIR}/itlib.cmake)

weft_it_exe(st_exact st_exact.c)
weft_it_exe(st_admin st_admin.c LIBS Threads::Threads)
weft_it_exe(st_concurrency st_concurrency.c LIBS weft_static weft_internal Threads::Threads)
weft_it_exe(st_lockout st_lockout.c LIBS weft_internal)
weft_it_exe(st_emfile st_emfile.c)

add_test(NAME st_exact COMMAND st_exact $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-stat>)
add_test(NAME st_admin COMMAND st_admin $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-stat>)
add_test(NAME st_concurrency COMMAND st_concurrency)
add_test(NAME st_lockout COMMAND st_lockout $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-stat>)
add_test(NAME st_emfile COMMAND st_emfile $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-stat>)
if(WEFT_SANITIZE STREQUAL "address")
  set_tests_properties(st_concurrency PROPERTIES ENVIRONMENT WEFT_ASAN=1)
endif()
add_test(NAME st_cli COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/st_cli.sh $<TARGET_FILE:weft-echo>
                             $<TARGET_FILE:weft-stat>)
# Prometheus text of every server through promtool (tests/st_prometheus.sh).
set(_weft_servers $<TARGET_FILE:weft-echo>)
foreach(p weft-http weft-kv weft-chat weft-multi)
  if(TARGET ${p})
    list(APPEND _weft_servers $<TARGET_FILE:${p}>)
  endif()
endforeach()
add_test(NAME st_prometheus COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/st_prometheus.sh
                                    ${PROJECT_SOURCE_DIR} ${PROJECT_VERSION}
                                    $<TARGET_FILE:weft-stat> $<TARGET_FILE:weft-load> ${_weft_servers})
unset(_weft_servers)
# The status page in headless Chromium (tests/st_status_page.sh).
add_test(NAME st_status_page COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/st_status_page.sh
                                     $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-load>)
set(WEFT_ST_TESTS st_exact st_admin st_concurrency st_cli st_lockout st_emfile st_prometheus
    st_status_page)
set_tests_properties(${WEFT_ST_TESTS} PROPERTIES LABELS stats TIMEOUT 180)
# No TSan suppressions for these: the library's RCU use is annotated for TSan
# (stats/service.c) and these tests run clean under it without any.

# A program's own admin commands (weft_server_add_command).
weft_it_exe(st_commands st_commands.c LIBS weft_static weft_internal Threads::Threads)
add_test(NAME st_commands COMMAND st_commands)
set_tests_properties(st_commands PROPERTIES LABELS stats TIMEOUT 60)
