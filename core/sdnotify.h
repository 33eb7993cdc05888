/*
 * core/sdnotify.h — the service manager's notification protocol
 * (sd_notify(3)): a datagram of "NAME=value" lines to the Unix socket
 * $NOTIFY_SOCKET names ('@' first: the abstract namespace). Written here
 * rather than linked from libsystemd: the protocol is one sendto(2), and a
 * program then runs the same with or without systemd.
 */
#ifndef WEFT_CORE_SDNOTIFY_H
#define WEFT_CORE_SDNOTIFY_H

#include <stdint.h>

/*
 * Send msg ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...", ...) to
 * $NOTIFY_SOCKET: 1 sent, 0 when there is no NOTIFY_SOCKET, or a negative
 * errno. Any thread; one socket per call.
 */
int sdn_notify(const char *msg);

/*
 * The watchdog interval the service manager asks for, in microseconds
 * ($WATCHDOG_USEC, when $WATCHDOG_PID is unset or this process), else 0.
 */
uint64_t sdn_watchdog_usec(void);

#endif
