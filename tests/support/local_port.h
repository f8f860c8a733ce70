/*
 * local_port.h - loopback ports for tests that start servers as child
 * processes and must know when they listen.
 */
#ifndef MUXRING_TEST_LOCAL_PORT_H
#define MUXRING_TEST_LOCAL_PORT_H

#include <stdbool.h>

/* A port on 127.0.0.1 that was free a moment ago (the kernel picked it for
 * a socket that is closed again); fails the test when it cannot. */
int lp_free_port(void);

/* Whether something listens on 127.0.0.1:port (from /proc/net/tcp): a
 * child's listener is seen without connecting to it, so a test never
 * takes a server's first connection for its own. */
bool lp_listening(int port);

#endif
