/*
 * fuzz_body.h - the bodies of the fuzz targets, shared by the libFuzzer
 * programs (tests/fuzz/fuzz_*.c, built by `make fuzz`) and by the cmocka
 * regression test that replays a fixed corpus (tests/test_fuzz_corpus.c,
 * run by `make test`).
 *
 * Each body takes one input of any length and content, runs it, checks the
 * invariants it knows and frees everything. A broken invariant prints what
 * broke on stderr and aborts, which both libFuzzer and the test report as a
 * crash; sanitizer reports (ASan, UBSan, LeakSanitizer) do the rest. Neither
 * body uses cmocka, so the libFuzzer build needs no test framework.
 */
#ifndef MUXRING_TEST_FUZZ_BODY_H
#define MUXRING_TEST_FUZZ_BODY_H

#include <stddef.h>
#include <stdint.h>

/* The wire codec (src/wire/frame.c) against an independent model of the header
 * rules. Always returns 0. */
int fuzz_frame_input(const uint8_t *data, size_t size);

/*
 * The engine (src/engine/session.h). The first byte is a configuration:
 *   bit 0  role of engine A (0 client, 1 server)
 *   bit 1  typed sessions
 *   bit 2  peer mode: a second engine B of the other role is wired to A
 *   bit 3  MR_RECV_COPY
 *   bit 4  small limits (tiny frames, backlog, stream count, caps)
 *   bit 5  start a heartbeat on A (typed only)
 *   bit 6  accept every stream at once (mr_session_accept_done)
 *   bit 7  at the end, free the sessions as they are (no close first)
 * The second byte is the mode. With bit 7 set (FZ_MODE_RAW) everything
 * after it is wire input for A alone, cut into chunks as its low bits say
 * (0: whole, 1: byte by byte, else sizes from a generator seeded with the
 * byte; bit 6: larger chunks) and pumped after each chunk; bit 2 also
 * advances A's clock. This is how captured vectors are replayed. Without
 * bit 7 (its other bits are then unused), everything after the second byte
 * is a program of operations (open, write, close, reset, feed raw bytes,
 * pump output, deliver to the peer, release views, advance the clock,
 * heartbeat, GOAWAY, ...), see fuzz_engine_body.c.
 * Always returns 0.
 */
int fuzz_engine_input(const uint8_t *data, size_t size);

/*
 * Two engines, a client and a server, through a link that damages bytes
 * (tests/support/fuzz_link_body.c). The first byte is a configuration
 * (FZL_CFG_*); the rest is a program of operations, one opcode byte each
 * (high nibble: the operation; bit 3: engine A or B; bits 0-2: a small
 * argument) followed by the bytes it reads (an input that runs out reads
 * zeros):
 *   0  open a stream (typed sessions: one type byte)
 *   1  write: stream, length byte        2  write: stream, length * 256
 *   3  stream: stream, code; arg % 3: close-write, close, reset
 *   4  release views (arg of them, 0: all), position byte
 *   5  take one accepted stream (accept_done)
 *   6  arg & 1: close the session, else GOAWAY; code byte
 *   7  typed: arg & 1: beat, else start a heartbeat; interval, seed bytes
 *   8  move output onto the wire: bytes / 64, packet size / (arg + 1)
 *   9  move all output onto the wire
 *  10  deliver arg + 1 packets of this side's wire to the peer
 *  11, 12  damage a packet of this side's wire: packet, position, amount;
 *      the kind is ((op - 11) * 8 + arg) % 5: flip a bit, truncate, drop
 *      bytes, duplicate, swap with the next packet
 *  13  advance both clocks by a byte's worth of milliseconds
 *  14  both ways until quiet (arg & 1: releasing views and accepting)
 *  15  arg 7: cut the connection (a byte says which side sees a reset,
 *      which end-of-file); else as 14 with releases
 * Always returns 0.
 */
int fuzz_link_input(const uint8_t *data, size_t size);

#define FZL_CFG_A_SERVER 0x01u   /* A is the server, B the client */
#define FZL_CFG_TYPED 0x02u      /* typed sessions */
#define FZL_CFG_COPY_A 0x04u     /* A receives with MR_RECV_COPY */
#define FZL_CFG_COPY_B 0x08u     /* B receives with MR_RECV_COPY */
#define FZL_CFG_SMALL 0x10u      /* small frames, backlog, stream limit */
#define FZL_CFG_BIG_WINDOW 0x20u /* windows above 256 KiB */

/* Configuration byte bits, for building seeds. */
#define FZ_CFG_SERVER 0x01u
#define FZ_CFG_TYPED 0x02u
#define FZ_CFG_PEER 0x04u
#define FZ_CFG_COPY 0x08u
#define FZ_CFG_SMALL 0x10u
#define FZ_CFG_HEARTBEAT 0x20u
#define FZ_CFG_AUTO_ACCEPT 0x40u
#define FZ_CFG_NO_CLOSE 0x80u
#define FZ_MODE_RAW 0x80u

#endif
