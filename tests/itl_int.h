/*
 * tests/itl_int.h — what the files of the test helper library share
 * among themselves (not for tests: they include itlib.h).
 */
#ifndef WEFT_TESTS_ITL_INT_H
#define WEFT_TESTS_ITL_INT_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Remember (on 1) or forget (on 0) a child process, which itl_fail kills.
 * Only the test's main thread starts and reaps children.
 */
void itl__track(pid_t pid, int on);

/* Wait for events (poll) on fd until the monotonic deadline (ms): >0 ready, 0 timed out, -errno. */
int itl__wait_fd(int fd, short events, int64_t deadline);

#endif /* WEFT_TESTS_ITL_INT_H */
