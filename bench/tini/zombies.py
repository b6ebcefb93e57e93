#!/usr/bin/env python3
"""Run as the child of an init that is PID 1 of a fresh PID namespace: orphans N processes at once and
prints how many milliseconds pass until the init has reaped every one of them (their /proc entries are
gone: a zombie keeps its entry until reaped)."""
import os
import sys
import time

count = int(sys.argv[1])


def pids():
    return sum(1 for e in os.listdir("/proc") if e.isdigit())


base = pids()  # the init and this script
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.close(r)
    for _ in range(count):
        if os.fork() == 0:
            os._exit(0)
    # Every grandchild is now a zombie or about to be; our exit hands them all to PID 1.
    os.write(w, b"x")
    os._exit(0)
os.close(w)
os.read(r, 1)
os.waitpid(middle, 0)
start = time.perf_counter()
deadline = start + 60
while pids() > base:
    if time.perf_counter() > deadline:
        print("timeout", flush=True)
        sys.exit(1)
    time.sleep(0.0005)
print(f"{(time.perf_counter() - start) * 1000:.1f}", flush=True)
