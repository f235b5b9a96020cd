"""Python's sysv_ipc doing what bench/c/sem_driver.c and shm_driver.c do, same line protocol:
   sem-uncontended KEY N   N times: acquire and release the semaphore of KEY (undo on, as
                           ipckit's Semaphore and the C driver); it holds 1, nothing waits
   shm-copy KEY MIB CHUNK  MIB MiB written into the segment of KEY, CHUNK bytes at a time at
                           successive offsets (wrapping at its end), then as many read back
                           (sysv_ipc's read returns new bytes: its only way to read)
(sysv_ipc opens objects by key only, so they are named by their key, not their id)
prints the elapsed nanoseconds of each command."""
import sys
import time

import sysv_ipc

MIB = 1 << 20


def main():
    sems = {}
    segments = {}
    for line in sys.stdin:
        parts = line.split()
        cmd, key = parts[0], int(parts[1])
        elapsed = 0
        if cmd == "sem-uncontended":
            n = int(parts[2])
            sem = sems.get(key)
            if sem is None:
                sem = sems[key] = sysv_ipc.Semaphore(key)
                sem.undo = True
            acquire, release = sem.acquire, sem.release
            t0 = time.perf_counter_ns()
            for _ in range(n):
                acquire()
                release()
            elapsed = time.perf_counter_ns() - t0
        elif cmd == "shm-copy":
            mib, chunk = int(parts[2]), int(parts[3])
            shm = segments.get(key) or segments.setdefault(key, sysv_ipc.SharedMemory(key))
            src = b"x" * chunk
            count = (mib * MIB) // chunk
            per = shm.size // chunk
            write, read = shm.write, shm.read
            got = b""
            t0 = time.perf_counter_ns()
            for i in range(count):
                write(src, (i % per) * chunk)
            for i in range(count):
                got = read(chunk, (i % per) * chunk)
            elapsed = time.perf_counter_ns() - t0
            if got[-1:] != b"x":
                print("copy check failed", file=sys.stderr)
                return 1
        else:
            print("unknown command " + cmd, file=sys.stderr)
            return 2
        print(elapsed, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
