"""Python's posix_ipc doing what bench/c/posix_bench.c's driver does, with the same line protocol:
   mq-rt REQ REP N SIZE     N round trips against the C echo child (send on REQ, reply on REP)
   mq-drain Q N SIZE CHUNK  N receives off a backlog queued CHUNK at a time (untimed)
   sem-uncontended S N      N times acquire() then release() on S (which holds 1)
   sem-pingpong A B N       N times: release A, then acquire B
prints the elapsed nanoseconds of the timed part of each command."""
import sys
import time

import posix_ipc


def main():
    for line in sys.stdin:
        parts = line.split()
        cmd = parts[0]
        elapsed = 0
        if cmd == "mq-rt":
            req, rep = posix_ipc.MessageQueue(parts[1]), posix_ipc.MessageQueue(parts[2])
            n, payload = int(parts[3]), b"x" * int(parts[4])
            send, receive = req.send, rep.receive
            t0 = time.perf_counter_ns()
            for _ in range(n):
                send(payload, None, 1)
                receive()
            elapsed = time.perf_counter_ns() - t0
            req.close()
            rep.close()
        elif cmd == "mq-drain":
            q = posix_ipc.MessageQueue(parts[1])
            n, payload, chunk = int(parts[2]), b"x" * int(parts[3]), int(parts[4])
            done = 0
            while done < n:
                k = min(chunk, n - done)
                for _ in range(k):
                    q.send(payload, None, 1)
                receive = q.receive
                t0 = time.perf_counter_ns()
                for _ in range(k):
                    receive()
                elapsed += time.perf_counter_ns() - t0
                done += k
            q.close()
        elif cmd == "sem-uncontended":
            s, n = posix_ipc.Semaphore(parts[1]), int(parts[2])
            acquire, release = s.acquire, s.release
            t0 = time.perf_counter_ns()
            for _ in range(n):
                acquire()
                release()
            elapsed = time.perf_counter_ns() - t0
            s.close()
        elif cmd == "sem-pingpong":
            a, b, n = posix_ipc.Semaphore(parts[1]), posix_ipc.Semaphore(parts[2]), int(parts[3])
            t0 = time.perf_counter_ns()
            for _ in range(n):
                a.release()
                b.acquire()
            elapsed = time.perf_counter_ns() - t0
            a.close()
            b.close()
        else:
            print("unknown command " + cmd, file=sys.stderr)
            return 2
        print(elapsed, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
