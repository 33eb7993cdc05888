# Unit tests: one cmocka runner per module (see weft_unit_test in CMakeLists.txt).
weft_unit_test(test_ring test_ring.c)   # buffers/ring.c
weft_unit_test(test_io_sock test_io_sock.c) # workers/io_sock.c
weft_unit_test(test_inbox test_inbox.c) # workers/inbox.c
weft_unit_test(test_pool test_pool.c)   # buffers/pool.c, buffers/arena.c
weft_unit_test(test_timer test_timer.c) # workers/timer.c
weft_unit_test(test_load_hist test_load_hist.c ${PROJECT_SOURCE_DIR}/tools/hist.c) # tools/hist.c
weft_unit_test(test_config test_config.c) # core/config.c (the option table, number parsing)
# The sizes and defaults that docs/architecture.md quotes.
weft_unit_test(test_doc_figures test_doc_figures.c)

# The data plane without sockets: the scripted backend (io_script.c) stands
# in for the kernel, and each test drives the loop a turn at a time.
add_library(io_script STATIC io_script.c)
target_include_directories(io_script PUBLIC ${CMOCKA_INC} ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
target_compile_options(io_script PRIVATE ${WEFT_WARNINGS} -Wno-missing-prototypes)
target_link_libraries(io_script PUBLIC weft_static ${CMOCKA_LIB})
weft_unit_test(test_conn test_conn.c)   # workers/conn.c (through workers/loop.c)
target_link_libraries(test_conn PRIVATE io_script)
weft_unit_test(test_timeouts test_timeouts.c) # workers/timeouts.c, workers/user_timers.c
target_link_libraries(test_timeouts PRIVATE io_script)
weft_unit_test(test_outbound test_outbound.c) # workers/outbound.c
target_link_libraries(test_outbound PRIVATE io_script)
