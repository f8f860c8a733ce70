/*
 * net.h - the synchronous socket chores around the ring: name resolution,
 * creating, tuning, binding and listening. Nothing here is on a per-frame
 * path; the I/O itself always goes through the ring.
 */
#ifndef MUXRING_NET_H
#define MUXRING_NET_H

#include <netdb.h>
#include <stdbool.h>

/*
 * Resolves host:port for TCP (host NULL: 127.0.0.1). passive: for bind.
 * Returns 0 with *out set (free with freeaddrinfo), -EINVAL for NULL port,
 * -ENOMEM, or -EHOSTUNREACH when the name does not resolve.
 */
int mr_net_resolve(const char *host, const char *port, bool passive,
		   struct addrinfo **out);

/* A close-on-exec stream socket of the address's family; fd or -errno. */
int mr_net_socket(const struct addrinfo *ai);

/* Per-connection options: TCP_NODELAY on TCP sockets (the driver batches
 * frames itself; Nagle would only add delay). Errors are ignored. */
void mr_net_tune(int fd);

/*
 * A listening TCP socket on host:port (SO_REUSEADDR), trying each address.
 * Returns the fd or -errno (-EHOSTUNREACH, -EADDRINUSE, ...).
 */
int mr_net_listen(const char *host, const char *port, int backlog);

/* The local port of a bound socket (host order), or -errno. */
int mr_net_local_port(int fd);

/*
 * Takes an fd handed to the loop by the application: 0 when it is a stream
 * socket and the caller's other arguments were valid (args_valid), else
 * -EINVAL (or -errno of getsockopt) with fd closed, because the loop owns
 * every fd given to it, also when the call fails.
 */
int mr_net_adopt_stream(int fd, bool args_valid);

#endif
