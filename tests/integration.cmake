# Integration tests: real programs that start servers on loopback (see
# tests/itlib.h). Each is labelled "integration"; run them alone with
#   ctest -L integration
# The ones that start weft-echo get its path from CMake.
if(NOT TARGET weft-echo)
  message(STATUS "integration tests need weft-echo (WEFT_BUILD_TOOLS=ON): skipped")
  return()
endif()

# The programs are weft_it_exe's (tests/itlib.cmake).
include(${CMAKE_CURRENT_SOURCE_DIR}/itlib.cmake)

weft_it_exe(it_echo_random it_echo_random.c)
weft_it_exe(it_10k it_10k.c)
weft_it_exe(it_halfclose_reset_slow it_halfclose_reset_slow.c)
weft_it_exe(it_client it_client.c)
weft_it_exe(it_shutdown it_shutdown.c LIBS weft_static weft_internal Threads::Threads)

add_test(NAME it_echo_random COMMAND it_echo_random $<TARGET_FILE:weft-echo>)
# The same over ::1; reported as skipped (not passed) where ::1 cannot be bound.
add_test(NAME it_echo_random_ipv6 COMMAND it_echo_random $<TARGET_FILE:weft-echo> ipv6)
set_tests_properties(it_echo_random_ipv6 PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME it_10k COMMAND it_10k $<TARGET_FILE:weft-echo>)
add_test(NAME it_halfclose_reset_slow COMMAND it_halfclose_reset_slow $<TARGET_FILE:weft-echo>)
add_test(NAME it_shutdown COMMAND it_shutdown)
set(WEFT_IT_TESTS it_echo_random it_echo_random_ipv6 it_10k it_halfclose_reset_slow it_shutdown)

# valgrind cannot run sanitizer builds; every other build runs this test,
# and it fails (does not skip) where valgrind is missing.
if(WEFT_SANITIZE STREQUAL "")
  add_test(NAME it_valgrind
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/it_valgrind.sh $<TARGET_FILE:weft-echo>
                   $<TARGET_FILE:it_client>)
  list(APPEND WEFT_IT_TESTS it_valgrind)
endif()

set_tests_properties(${WEFT_IT_TESTS} PROPERTIES LABELS integration TIMEOUT 180)
# 10,000 connections need most of the fd and port budget: run it alone.
set_tests_properties(it_10k PROPERTIES RUN_SERIAL TRUE)

# Regression tests for two bugs found while writing the suite (see each
# file's header): a weft_post racing the worker's exit, and output destroyed
# by a reset when a stopped connection still had unread input.
weft_it_exe(it_post_race it_post_race.c LIBS weft_static weft_internal Threads::Threads)
weft_it_exe(it_stop_no_reset it_stop_no_reset.c LIBS weft_static weft_internal)
add_test(NAME it_post_race COMMAND it_post_race)
add_test(NAME it_stop_no_reset COMMAND it_stop_no_reset)
set_tests_properties(it_post_race it_stop_no_reset PROPERTIES LABELS integration TIMEOUT 120)

# weft-load detects a corrupting echo server (and passes a correct one).
if(TARGET weft-load)
  add_executable(corrupt_echo corrupt_echo.c)
  target_compile_options(corrupt_echo PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes)
  add_test(NAME test_load_corrupt
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_load_corrupt.sh $<TARGET_FILE:weft-load>
                   $<TARGET_FILE:corrupt_echo>)
  # Over ::1; skipped (SKIP_RETURN_CODE) where the host has no IPv6 loopback.
  add_test(NAME test_load_corrupt_ipv6
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_load_corrupt.sh $<TARGET_FILE:weft-load>
                   $<TARGET_FILE:corrupt_echo> ipv6)
  set_tests_properties(test_load_corrupt test_load_corrupt_ipv6 PROPERTIES LABELS integration
                       TIMEOUT 120)
  set_tests_properties(test_load_corrupt_ipv6 PROPERTIES SKIP_RETURN_CODE 77)
endif()

# A handler that stops consuming under backpressure gets its ring again.
weft_it_exe(it_redeliver it_redeliver.c LIBS weft_static weft_internal)
add_test(NAME it_redeliver COMMAND it_redeliver)
set_tests_properties(it_redeliver PROPERTIES LABELS integration TIMEOUT 60)

# Reaching connections from other threads: weft_send_to, weft_broadcast.
weft_it_exe(it_remote it_remote.c LIBS weft_static weft_internal Threads::Threads)
add_test(NAME it_remote COMMAND it_remote)
set_tests_properties(it_remote PROPERTIES LABELS integration TIMEOUT 60)

# Every server program's command line through weft_main: help, version,
# usage errors, a port in use, the I/O backend (tests/it_cli.sh).
set(_weft_programs $<TARGET_FILE:weft-echo>)
foreach(p weft-http weft-kv weft-chat)
  if(TARGET ${p})
    list(APPEND _weft_programs $<TARGET_FILE:${p}>)
  endif()
endforeach()
add_test(NAME it_cli COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/it_cli.sh $<TARGET_FILE:weft-stat>
                             ${_weft_programs})
set_tests_properties(it_cli PROPERTIES LABELS integration TIMEOUT 180)
# --version, --config, --print-config and log lines (tests/it_ops_cli.sh).
add_test(NAME it_ops_cli COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/it_ops_cli.sh ${PROJECT_VERSION}
                                 $<TARGET_FILE:weft-load> $<TARGET_FILE:weft-stat> --
                                 ${_weft_programs})
set_tests_properties(it_ops_cli PROPERTIES LABELS integration TIMEOUT 180)
unset(_weft_programs)

# systemd: socket activation and sd_notify, the service manager played by the test.
weft_it_exe(it_systemd it_systemd.c)
add_test(NAME it_systemd COMMAND it_systemd $<TARGET_FILE:weft-echo>)
set_tests_properties(it_systemd PROPERTIES LABELS integration TIMEOUT 120)
# Zero-downtime reload and upgrade under load (tests/it_reload.c).
weft_it_exe(it_reload it_reload.c LIBS Threads::Threads)
add_test(NAME it_reload COMMAND it_reload $<TARGET_FILE:weft-echo> 200 5)
set_tests_properties(it_reload PROPERTIES LABELS integration TIMEOUT 180)
# Man pages (tests/man_pages.sh): every program's, current and clean.
set(_weft_pages $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-load> $<TARGET_FILE:weft-stat>)
foreach(p weft-http weft-kv weft-chat weft-multi)
  if(TARGET ${p})
    list(APPEND _weft_pages $<TARGET_FILE:${p}>)
  endif()
endforeach()
add_test(NAME man_pages COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/man_pages.sh ${PROJECT_SOURCE_DIR}
                                ${_weft_pages})
set_tests_properties(man_pages PROPERTIES LABELS integration TIMEOUT 120)
unset(_weft_pages)
add_test(NAME it_units COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/it_units.sh ${PROJECT_SOURCE_DIR}
                               $<TARGET_FILE:weft-echo>)
set_tests_properties(it_units PROPERTIES LABELS integration TIMEOUT 60)


# Outbound connections on real sockets, and the per-worker hooks.
weft_it_exe(it_connect it_connect.c LIBS weft_static weft_internal Threads::Threads)
add_test(NAME it_connect COMMAND it_connect)
set_tests_properties(it_connect PROPERTIES LABELS integration TIMEOUT 60)

# The layout rules: one-way folder dependencies, socket calls only in the
# I/O backends (tests/check_layout.sh).
add_test(NAME check_layout COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_layout.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(check_layout PROPERTIES LABELS integration TIMEOUT 30)
# docs/architecture.md's map names every file of the source folders, and
# every file it names exists (tests/check_map.sh).
add_test(NAME check_map COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_map.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(check_map PROPERTIES LABELS integration TIMEOUT 30)

# Many listeners: handlers, limits, Unix socket files, SO_REUSEPORT.
weft_it_exe(it_listeners it_listeners.c LIBS weft_static weft_internal Threads::Threads)
add_test(NAME it_listeners COMMAND it_listeners)
set_tests_properties(it_listeners PROPERTIES LABELS integration TIMEOUT 60)

# Files in the output path (weft_send_file) on real sockets.
weft_it_exe(it_sendfile it_sendfile.c LIBS weft_static weft_internal Threads::Threads)
add_test(NAME it_sendfile COMMAND it_sendfile)
set_tests_properties(it_sendfile PROPERTIES LABELS integration TIMEOUT 120)

# A linked pair (weft_link): 1 GiB each way through an in-process proxy.
weft_it_exe(it_link it_link.c LIBS weft_static weft_internal Threads::Threads)
add_test(NAME it_link COMMAND it_link)
# 2 GiB through one process: alone, so it neither starves nor is starved.
set_tests_properties(it_link PROPERTIES LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)
if(NOT WEFT_SANITIZE STREQUAL "")
  # Instrumented copies are ~10x slower: a quarter of the bytes.
  set_tests_properties(it_link PROPERTIES ENVIRONMENT WEFT_IT_LINK_MB=256)
endif()

# TLS with real clients and servers: openssl s_client/s_server, Python's
# ssl, curl and wrk (tests/it_tls.py makes its certificates).
add_test(NAME it_tls
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/it_tls.py $<TARGET_FILE:weft-echo>
                 $<TARGET_FILE:weft-http> $<TARGET_FILE:weft-proxy> $<TARGET_FILE:weft-stat>
                 $<TARGET_FILE:weft-lb>)
set_tests_properties(it_tls PROPERTIES LABELS integration TIMEOUT 180)
# The same servers under valgrind memcheck (not in sanitizer builds).
if(WEFT_SANITIZE STREQUAL "")
  add_test(NAME it_tls_valgrind
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/it_tls.py --valgrind
                   $<TARGET_FILE:weft-echo> $<TARGET_FILE:weft-http> $<TARGET_FILE:weft-proxy>
                   $<TARGET_FILE:weft-stat>)
  set_tests_properties(it_tls_valgrind PROPERTIES LABELS integration TIMEOUT 400)
endif()
# The io_uring backend: chosen by --io and WEFT_IO, and the fallback to
# epoll when the kernel refuses io_uring (tests/it_uring.sh).
add_test(NAME it_uring COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/it_uring.sh $<TARGET_FILE:weft-echo>
                               $<TARGET_FILE:weft-stat> $<TARGET_FILE:it_client>)
set_tests_properties(it_uring PROPERTIES LABELS integration TIMEOUT 120)
