"""Python's sysv_ipc doing what bench/c/msg_driver.c does, with the same line protocol:
   rt KEY N SIZE           N round trips against the C echo child (type 1 out, type 2 back)
   drain KEY N SIZE CHUNK  N receives off a backlog queued CHUNK at a time (untimed)
(sysv_ipc opens queues by key only, so the queue is named by its key, not its id)
prints the elapsed nanoseconds of the timed part of each command."""
import sys
import time

import sysv_ipc


def main():
    queues = {}
    for line in sys.stdin:
        parts = line.split()
        cmd, key, n, size = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
        chunk = int(parts[4]) if len(parts) > 4 else n
        q = queues.get(key) or queues.setdefault(key, sysv_ipc.MessageQueue(key))
        payload = b"x" * size
        elapsed = 0
        if cmd == "rt":
            send, receive = q.send, q.receive
            t0 = time.perf_counter_ns()
            for _ in range(n):
                send(payload, True, 1)
                receive(True, 2)
            elapsed = time.perf_counter_ns() - t0
        elif cmd == "drain":
            done = 0
            while done < n:
                k = min(chunk, n - done)
                for _ in range(k):
                    q.send(payload, True, 1)
                receive = q.receive
                t0 = time.perf_counter_ns()
                for _ in range(k):
                    receive()
                elapsed += time.perf_counter_ns() - t0
                done += k
        else:
            print("unknown command " + cmd, file=sys.stderr)
            return 2
        print(elapsed, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
