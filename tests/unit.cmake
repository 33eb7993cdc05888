# Unit tests: one cmocka runner per module (see weft_unit_test in CMakeLists.txt).
weft_unit_test(test_ring test_ring.c)   # buffers/ring.c
weft_unit_test(test_inbox test_inbox.c) # workers/inbox.c
weft_unit_test(test_pool test_pool.c)   # buffers/pool.c, buffers/arena.c
weft_unit_test(test_timer test_timer.c) # workers/timer.c
weft_unit_test(test_load_hist test_load_hist.c ${PROJECT_SOURCE_DIR}/tools/hist.c) # tools/hist.c
weft_unit_test(test_config test_config.c)
