/*
 * ipckit/channel.h: the shared-memory layout and protocol of ipckit's Channel, for peers
 * written in C (or anything that can map a file and do atomic 32-bit loads and stores).
 *
 * A channel is one piece of shared memory (a memfd handed over as a descriptor with the two
 * sides' eventfds, or, for unrelated processes, a POSIX shared memory object opened by name or
 * a System V segment attached by key or id: those are woken through futex words) holding one
 * ring of messages (a one-way channel) or two (a duplex channel), and two "sides", each with
 * its own wake-up.
 *
 *   side 0 writes ring 0 (and, duplex, reads ring 1)
 *   side 1 reads ring 0  (and, duplex, writes ring 1)
 *
 * Exactly one process (one thread) is each side: a ring has a single writer and a single
 * reader. A side is claimed by storing its owner's id into a free (0) side slot with a compare
 * and swap; a second claimer of the same side fails (ipckit: EBUSY). The id is the claiming
 * thread's (gettid), which for a single-threaded process, or a process's first thread, is its
 * pid: ipckit stores the id of the JavaScript thread that holds the end, so an end held by a
 * Worker ends with that Worker. (Version 2, SEVERAL WRITERS below, lets several processes
 * write one ring.)
 *
 * LAYOUT (every field a native-endian 32-bit word, at the byte offset given)
 *
 *   0    magic         IPCKIT_CHANNEL_MAGIC
 *   4    version       IPCKIT_CHANNEL_VERSION
 *   8    rings         1 (one-way) or 2 (duplex)
 *   12   capacity      data bytes of each ring: a power of two, IPCKIT_CHANNEL_MIN_CAPACITY
 *                      to IPCKIT_CHANNEL_MAX_CAPACITY
 *   16   wake          IPCKIT_CHANNEL_WAKE_EVENTFD or IPCKIT_CHANNEL_WAKE_FUTEX
 *   20   data_offset   IPCKIT_CHANNEL_DATA_OFFSET: where ring 0's data starts
 *   64 + 64*s          side s (s = 0, 1), on a cache line of its own:
 *        +0  pid       the claimer's id (its thread's: a single-threaded process's pid), 0
 *                      while unclaimed
 *        +4  closed    1 once the side closed the channel (it sends nothing more, and takes
 *                      nothing more)
 *        +8  wake_seq  futex word (wake = futex): bumped by whoever wakes this side
 *   256 + 192*r        ring r (r = 0, 1):
 *        +0   tail     bytes ever written, modulo 2^32 (only the writer stores it)
 *        +64  head     bytes ever taken, modulo 2^32 (only the reader stores it)
 *        +128 reader_waiting  1 while the reader sleeps (or is about to)
 *        +132 writer_waiting  1 while the writer sleeps waiting for room
 *   data_offset + capacity*r   ring r's data, `capacity` bytes
 *
 * The file is exactly data_offset + rings * capacity bytes. A new file is all zeros but for
 * the first six words, which its creator writes before handing it to anyone.
 *
 * MESSAGES
 *
 * A message is a record at data position (counter % capacity), always 8-aligned:
 *   +0 length   payload bytes, 0 .. capacity - 8
 *   +4 flags    IPCKIT_CHANNEL_POSTED for a value serialized by v8.serialize (ipckit's post());
 *               0 for plain bytes; other bits are reserved and must be 0
 *   +8 payload  `length` bytes, continuing at data position 0 if they reach the ring's end,
 *               then padding up to a multiple of 8
 * A record takes IPCKIT_CHANNEL_RECORD(length) = 8 + length rounded up to 8 bytes. Since
 * positions are 8-aligned and capacity is a multiple of 8, a record's 8-byte header never
 * straddles the end; only its payload may wrap. The largest message is capacity - 8 bytes.
 *
 * PROTOCOL AND MEMORY ORDER
 *
 * Writing (the writer keeps its own copy of tail; it never trusts the shared one):
 *   1. used = tail - load(head) (mod 2^32); if used > capacity or head is not 8-aligned the
 *      peer is broken. free = capacity - used. No room for the record: wait for room (below).
 *   2. Write the header and payload with plain stores.
 *   3. Publish: store(tail, tail + record), SEQ_CST. Only now does the reader see the message:
 *      a writer killed before this store never exposes a part of a message.
 *   4. If load(reader_waiting) != 0 (SEQ_CST) and exchange(reader_waiting, 0) != 0, wake the
 *      reader's side (below). A busy reader costs the writer one load, nothing else.
 * Reading (the reader keeps its own copy of head):
 *   1. t = load(tail), SEQ_CST (at least acquire); used = t - head; 0 means empty.
 *   2. Validate everything read from shared memory, every time: used <= capacity, t 8-aligned,
 *      length <= capacity - 8, record <= used, flags known. Anything else: the peer is broken
 *      (ipckit: EPROTO), never a read out of bounds.
 *   3. Copy the payload out (or use it in place), then store(head, head + record), SEQ_CST.
 *   4. If load(writer_waiting) != 0 and exchange(writer_waiting, 0) != 0, wake the writer's
 *      side.
 * Sleeping (the reader for data, the writer for room: both the same way):
 *   a. (futex) seq = load(wake_seq of my side)
 *   b. store(my flag, 1), SEQ_CST   -- reader_waiting, or writer_waiting
 *   c. re-check the ring (tail for data, head for room), SEQ_CST; if it is ready, store(flag, 0)
 *      and go on without sleeping
 *   d. sleep: eventfd: poll the side's eventfd, then read it (which resets it) BEFORE step b of
 *      the next round; futex: FUTEX_WAIT(wake_seq, seq)
 * Waking side s: eventfd: write 1 to side s's eventfd; futex: fetch_add(wake_seq, 1), then
 * FUTEX_WAKE(wake_seq, all).
 *
 * Why it never loses a wake-up: the sleeper stores its flag then loads the ring index; the
 * waker stores the ring index then loads the flag. Both pairs are sequentially consistent
 * (or separated by a full fence), so at least one of them sees the other's store: either
 * the sleeper sees the new message (step c) or the waker sees the flag (step 4). Release /
 * acquire alone is not enough for this store-then-load pattern. A wake-up that is not needed
 * (the sleeper found the message itself in step c) leaves a stale eventfd count or futex bump:
 * harmless, the next sleep returns at once and re-checks.
 *
 * Closing: store(closed of my side, 1), SEQ_CST, then wake the other side. A reader whose
 * writer closed takes what is in the ring, then sees the end; a writer whose reader closed
 * fails its sends (ipckit: EPIPE). A side whose peer died without closing sees it through a
 * pidfd of the peer's id (ipckit: ECONNRESET after the ring is drained): pidfd_open(id, 0)
 * when it is a process's first thread; for another thread (a Worker's), where that fails
 * (ENOENT; EINVAL before Linux 6.9), pidfd_open(id, PIDFD_THREAD) (Linux 6.9 and later),
 * readable once that thread ended while its process lives on; before 6.9, kill(id, 0) failing
 * with ESRCH now and then (ipckit: every 50 ms while it waits).
 *
 * Every access to the words above is a 32-bit atomic (this header uses the GCC/Clang
 * __atomic builtins); payload bytes are plain memory.
 *
 * SEVERAL WRITERS (version IPCKIT_CHANNEL_VERSION_WRITERS)
 *
 * A channel created for several writers (ipckit: Channel.create({ writers: N })) has version
 * 2, so a peer that knows version 1 only refuses it (ipckit_channel_check fails) instead of
 * writing into it as if it were alone. Everything above holds, with these differences:
 *
 *   24   writers       N, 2 .. IPCKIT_CHANNEL_MAX_WRITERS: how many writers it takes, over its
 *                      life (version 1: 0 here, read as one)
 *   28   writers_done  writers that closed or died (fetch_add by whoever ends a slot)
 *   32   writers_died  of those, writers that died without closing
 *   ring 0 +4  lock    the thread id (gettid) of the writer writing now, 0 when free: a
 *                      single-threaded writer's pid
 *   ring 0 +136 lock_waiting  1 while a writer sleeps waiting for the lock
 *   1024 + 4*k         writer slot k (k < N): 0 free, its writer's id (as a side's) while
 *                      it is in, IPCKIT_CHANNEL_SLOT_LEFT once it closed,
 *                      IPCKIT_CHANNEL_SLOT_DIED once the reader found it gone
 *
 * It is one-way (rings = 1). Side 1 is its one reader, claimed as above. Side 0's pid and
 * closed words stay 0: a writer joins by storing its id into the first free slot with a
 * compare and swap (no free slot: ipckit EBUSY; a slot is used once) and leaves by moving its
 * slot from its id to LEFT with a compare and swap, then fetch_add(writers_done, 1), then
 * waking the reader. The reader's input ends once writers_done = N and the ring is drained
 * (ipckit: EPIPE when no writer died, ECONNRESET when one did). While it waits, the reader
 * looks at each slot's thread (as step 6 below looks at a lock's owner) and moves the slot of
 * a gone one from its id to DIED the same way (and writers_died). A named channel's name stays until every slot and
 * side 1 are taken (or its creator closes).
 *
 * Writers take turns through the lock word; the reader never touches it:
 *   1. compare_exchange(lock, 0, tid), SEQ_CST (tid: the writing thread's id, gettid(); a
 *      single-threaded process's pid). It failed: another writer writes (go to 6).
 *   2. tail = load(tail) (the shared one: the last writer's), head = load(head); check them
 *      as the reader checks (used <= capacity, both 8-aligned) or the ring is broken.
 *   3. Room: write the record at tail and store(tail, tail + record), SEQ_CST, as a single
 *      writer does. No room: write nothing.
 *   4. store(lock, 0), SEQ_CST; then if load(lock_waiting) != 0 and exchange(lock_waiting, 0)
 *      != 0, wake side 0 (the writers: below).
 *   5. If a record was published: the reader's wake, as writing step 4.
 *   6. Not written: sleep as a writer does (steps a to d), for one of two things. While the
 *      lock is held (load(lock) != 0), for the lock: the flag is lock_waiting and the re-check
 *      of step c is load(lock) == 0. A lock held by the same tid as at the previous re-check
 *      (one sleep ago) is looked at: if that thread is gone (not a thread of this process,
 *      tgkill(getpid(), tid, 0); and pidfd_open(tid) fails with ESRCH or its pidfd is readable,
 *      or for another process's thread that is not its first, kill(tid, 0) fails with ESRCH),
 *      compare_exchange(lock, tid, 0) frees it (ready). A thread id, not a pid, so that a lock
 *      left by a thread that ended in a process that lives on (ipckit: a Worker terminated in
 *      the middle of a send) is freed too. Otherwise, for
 *      room: the flag is writer_waiting and the re-check is that the record fits between the
 *      shared tail and head, as for a single writer (the reader's step 4 answers it); since
 *      other writers move the tail between the two loads, a pair that looks impossible counts
 *      as ready here (only the locked send in step 2 calls the ring broken). Two
 *      flags, so that writers waiting for room are not woken by every other writer's message.
 * Writers sleep on side 0's wake_seq futex word whatever `wake` says (an eventfd wakes one
 * poller reliably, not several): FUTEX_WAIT(wake_seq of side 0, seq) with a timeout (ipckit:
 * 50 ms) so that a lock whose owner died is looked at again. Waking side 0 is always
 * fetch_add(wake_seq, 1) then FUTEX_WAKE(all); the reader wakes side 0 that way too when
 * writer_waiting asks for it. Side 1 (the reader) is woken as `wake` says.
 *
 * Why no wake-up is lost: each flag (lock_waiting, writer_waiting) is one for every writer
 * waiting for that thing, and each wake of side 0 wakes them all. A sleeper for the lock stores
 * lock_waiting, then loads the lock; a freeing writer stores the lock, then loads lock_waiting.
 * A sleeper for room stores writer_waiting, then loads the head; the reader stores the head,
 * then loads writer_waiting. As with one writer, one of each pair sees the other's store. A
 * sleeper that stores its flag after a waker exchanged it to 0 loads the lock (or head) after
 * that waker's store, so it sees the free lock (or the room) itself. Each sleeper read
 * wake_seq before storing its flag, so the waker's fetch_add ends every sleep announced before
 * its exchange. (Room taken again by another writer, or a lock taken again, only means one
 * more round.)
 *
 * Crash rules: a writer killed at any point before step 3's store of tail publishes nothing:
 * its record lies past tail, and the next lock holder starts from the shared tail and writes
 * over it. Killed after that store and before step 4: its message is whole and published; the
 * lock stays held until a waiting writer finds its thread gone (step 6) and frees it. Only
 * the lock holder stores tail, and only between steps 1 and 4. A recycled thread id can make a
 * dead owner look alive; pid_max turning over within one held lock is not considered.
 */
#ifndef IPCKIT_CHANNEL_H
#define IPCKIT_CHANNEL_H

#include <stdint.h>
#include <string.h>

#define IPCKIT_CHANNEL_MAGIC 0x4B435049u /* "IPCK" in little-endian bytes */
#define IPCKIT_CHANNEL_VERSION 1u
#define IPCKIT_CHANNEL_WAKE_EVENTFD 1u
#define IPCKIT_CHANNEL_WAKE_FUTEX 2u
#define IPCKIT_CHANNEL_DATA_OFFSET 4096u
#define IPCKIT_CHANNEL_MIN_CAPACITY 64u
#define IPCKIT_CHANNEL_MAX_CAPACITY (1u << 30)
#define IPCKIT_CHANNEL_POSTED 1u
#define IPCKIT_CHANNEL_VERSION_WRITERS 2u
#define IPCKIT_CHANNEL_MAX_WRITERS 256u
#define IPCKIT_CHANNEL_SLOT_LEFT 0xFFFFFFFFu
#define IPCKIT_CHANNEL_SLOT_DIED 0xFFFFFFFEu

/* Byte offsets of the words. */
#define IPCKIT_CHANNEL_OFF_MAGIC 0u
#define IPCKIT_CHANNEL_OFF_VERSION 4u
#define IPCKIT_CHANNEL_OFF_RINGS 8u
#define IPCKIT_CHANNEL_OFF_CAPACITY 12u
#define IPCKIT_CHANNEL_OFF_WAKE 16u
#define IPCKIT_CHANNEL_OFF_DATA 20u
#define IPCKIT_CHANNEL_OFF_SIDE(s) (64u + 64u * (s))
#define IPCKIT_CHANNEL_SIDE_PID 0u
#define IPCKIT_CHANNEL_SIDE_CLOSED 4u
#define IPCKIT_CHANNEL_SIDE_WAKE_SEQ 8u
#define IPCKIT_CHANNEL_OFF_RING(r) (256u + 192u * (r))
#define IPCKIT_CHANNEL_RING_TAIL 0u
#define IPCKIT_CHANNEL_RING_HEAD 64u
#define IPCKIT_CHANNEL_RING_READER_WAITING 128u
#define IPCKIT_CHANNEL_RING_WRITER_WAITING 132u
/* Version 2 (several writers) only. */
#define IPCKIT_CHANNEL_OFF_WRITERS 24u
#define IPCKIT_CHANNEL_OFF_WRITERS_DONE 28u
#define IPCKIT_CHANNEL_OFF_WRITERS_DIED 32u
#define IPCKIT_CHANNEL_OFF_SLOT(k) (1024u + 4u * (k))
#define IPCKIT_CHANNEL_RING_LOCK 4u
#define IPCKIT_CHANNEL_RING_LOCK_WAITING 136u

/* Bytes a record of `length` payload bytes takes in the ring. */
#define IPCKIT_CHANNEL_RECORD(length) (8u + (((uint32_t)(length) + 7u) & ~7u))

/* One side's view of one ring: where it is, and the index this side owns. */
struct ipckit_ring {
  unsigned char *base; /* the whole mapping */
  uint32_t ctl;        /* IPCKIT_CHANNEL_OFF_RING(r) */
  unsigned char *data; /* base + data_offset + capacity * r */
  uint32_t capacity;
  uint32_t index; /* the writer's tail, or the reader's head */
};

static inline uint32_t *ipckit_word(unsigned char *base, uint32_t offset) {
  return (uint32_t *)(void *)(base + offset);
}

static inline uint32_t ipckit_load(unsigned char *base, uint32_t offset) {
  return __atomic_load_n(ipckit_word(base, offset), __ATOMIC_SEQ_CST);
}

static inline void ipckit_store(unsigned char *base, uint32_t offset, uint32_t value) {
  __atomic_store_n(ipckit_word(base, offset), value, __ATOMIC_SEQ_CST);
}

static inline uint32_t ipckit_exchange(unsigned char *base, uint32_t offset, uint32_t value) {
  return __atomic_exchange_n(ipckit_word(base, offset), value, __ATOMIC_SEQ_CST);
}

/*
 * Checks the header of a mapping of `size` bytes: 0 if it is a channel this header describes,
 * -1 if not. Check it once after mapping; rings' indices are checked on every use.
 */
static inline int ipckit_channel_check_version(unsigned char *base, uint64_t size, uint32_t version) {
  if (size < IPCKIT_CHANNEL_DATA_OFFSET) return -1;
  uint32_t rings = ipckit_load(base, IPCKIT_CHANNEL_OFF_RINGS);
  uint32_t cap = ipckit_load(base, IPCKIT_CHANNEL_OFF_CAPACITY);
  uint32_t wake = ipckit_load(base, IPCKIT_CHANNEL_OFF_WAKE);
  if (ipckit_load(base, IPCKIT_CHANNEL_OFF_MAGIC) != IPCKIT_CHANNEL_MAGIC) return -1;
  if (ipckit_load(base, IPCKIT_CHANNEL_OFF_VERSION) != version) return -1;
  if (rings != 1 && rings != 2) return -1;
  if (cap < IPCKIT_CHANNEL_MIN_CAPACITY || cap > IPCKIT_CHANNEL_MAX_CAPACITY || (cap & (cap - 1)) != 0) return -1;
  if (wake != IPCKIT_CHANNEL_WAKE_EVENTFD && wake != IPCKIT_CHANNEL_WAKE_FUTEX) return -1;
  if (ipckit_load(base, IPCKIT_CHANNEL_OFF_DATA) != IPCKIT_CHANNEL_DATA_OFFSET) return -1;
  if (size != (uint64_t)IPCKIT_CHANNEL_DATA_OFFSET + (uint64_t)rings * cap) return -1;
  return 0;
}

/* Version 1 (one writer) only: a channel with several writers is refused. */
static inline int ipckit_channel_check(unsigned char *base, uint64_t size) {
  return ipckit_channel_check_version(base, size, IPCKIT_CHANNEL_VERSION);
}

/* Writes the header of a new, zeroed mapping (the creator does this before sharing it). */
static inline void ipckit_channel_init(unsigned char *base, uint32_t rings, uint32_t capacity, uint32_t wake) {
  ipckit_store(base, IPCKIT_CHANNEL_OFF_VERSION, IPCKIT_CHANNEL_VERSION);
  ipckit_store(base, IPCKIT_CHANNEL_OFF_RINGS, rings);
  ipckit_store(base, IPCKIT_CHANNEL_OFF_CAPACITY, capacity);
  ipckit_store(base, IPCKIT_CHANNEL_OFF_WAKE, wake);
  ipckit_store(base, IPCKIT_CHANNEL_OFF_DATA, IPCKIT_CHANNEL_DATA_OFFSET);
  ipckit_store(base, IPCKIT_CHANNEL_OFF_MAGIC, IPCKIT_CHANNEL_MAGIC);
}

/* Claims side `side` for `pid`: 0, or -1 if another process holds it. */
static inline int ipckit_channel_claim(unsigned char *base, uint32_t side, uint32_t pid) {
  uint32_t expected = 0;
  return __atomic_compare_exchange_n(ipckit_word(base, IPCKIT_CHANNEL_OFF_SIDE(side) + IPCKIT_CHANNEL_SIDE_PID),
                                     &expected, pid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
             ? 0
             : -1;
}

/* The ring `r` of a checked mapping, as its writer (`writer` 1) or reader sees it. */
static inline struct ipckit_ring ipckit_ring_open(unsigned char *base, uint32_t r, int writer) {
  struct ipckit_ring ring;
  ring.base = base;
  ring.ctl = IPCKIT_CHANNEL_OFF_RING(r);
  ring.capacity = ipckit_load(base, IPCKIT_CHANNEL_OFF_CAPACITY);
  ring.data = base + IPCKIT_CHANNEL_DATA_OFFSET + (uint64_t)ring.capacity * r;
  ring.index = ipckit_load(base, ring.ctl + (writer ? IPCKIT_CHANNEL_RING_TAIL : IPCKIT_CHANNEL_RING_HEAD));
  return ring;
}

/*
 * Writes one message (writing steps 1 to 3). Returns 1 if it was written and the reader must
 * be woken (step 4 found it asleep), 0 if it was written, -1 (nothing written) if there is
 * no room yet, -2 if it can never fit (length > capacity - 8), -3 if the peer broke the ring.
 */
static inline int ipckit_ring_send(struct ipckit_ring *ring, const void *payload, uint32_t length, uint32_t flags) {
  uint32_t cap = ring->capacity;
  if (length > cap - 8) return -2;
  uint32_t record = IPCKIT_CHANNEL_RECORD(length);
  uint32_t head = ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_HEAD);
  uint32_t used = ring->index - head;
  if (used > cap || (head & 7u) != 0) return -3;
  if (cap - used < record) return -1;
  uint32_t pos = ring->index & (cap - 1);
  uint32_t header[2] = {length, flags};
  memcpy(ring->data + pos, header, 8);
  uint32_t at = (pos + 8) & (cap - 1);
  uint32_t first = cap - at < length ? cap - at : length;
  memcpy(ring->data + at, payload, first);
  memcpy(ring->data, (const unsigned char *)payload + first, length - first);
  ring->index += record;
  ipckit_store(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_TAIL, ring->index);
  if (ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_READER_WAITING) != 0 &&
      ipckit_exchange(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_READER_WAITING, 0) != 0)
    return 1;
  return 0;
}

/*
 * Takes one message into `out` (room for `room` bytes; the payload length goes to *length,
 * its flags to *flags). Returns 1 if a message was taken and the writer must be woken, 0 if
 * one was taken, -1 if the ring is empty, -2 if the message is larger than `room` (nothing
 * taken; *length says how large), -3 if the peer broke the ring.
 */
static inline int ipckit_ring_receive(struct ipckit_ring *ring, void *out, uint32_t room, uint32_t *length, uint32_t *flags) {
  uint32_t cap = ring->capacity;
  uint32_t tail = ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_TAIL);
  uint32_t used = tail - ring->index;
  if (used == 0) return -1;
  if (used > cap || (tail & 7u) != 0) return -3;
  uint32_t pos = ring->index & (cap - 1);
  uint32_t header[2];
  memcpy(header, ring->data + pos, 8);
  if (header[0] > cap - 8 || IPCKIT_CHANNEL_RECORD(header[0]) > used || (header[1] & ~IPCKIT_CHANNEL_POSTED) != 0) return -3;
  *length = header[0];
  *flags = header[1];
  if (header[0] > room) return -2;
  uint32_t at = (pos + 8) & (cap - 1);
  uint32_t first = cap - at < header[0] ? cap - at : header[0];
  memcpy(out, ring->data + at, first);
  memcpy((unsigned char *)out + first, ring->data, header[0] - first);
  ring->index += IPCKIT_CHANNEL_RECORD(header[0]);
  ipckit_store(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_HEAD, ring->index);
  if (ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_WRITER_WAITING) != 0 &&
      ipckit_exchange(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_WRITER_WAITING, 0) != 0)
    return 1;
  return 0;
}

/*
 * Sleeping, steps b and c: announces that this side is about to sleep, for data (`writer` 0)
 * or room for a record of `record` bytes (`writer` 1), and re-checks. Returns 1 if the caller
 * must sleep now, 0 if the ring became ready (the flag is cleared again).
 */
static inline int ipckit_ring_prepare_sleep(struct ipckit_ring *ring, int writer, uint32_t record) {
  uint32_t flag = ring->ctl + (writer ? IPCKIT_CHANNEL_RING_WRITER_WAITING : IPCKIT_CHANNEL_RING_READER_WAITING);
  ipckit_store(ring->base, flag, 1);
  int ready;
  if (writer) {
    uint32_t used = ring->index - ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_HEAD);
    ready = used > ring->capacity || ring->capacity - used >= record;
  } else {
    ready = ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_TAIL) != ring->index;
  }
  if (ready) ipckit_store(ring->base, flag, 0);
  return !ready;
}

/* ---- several writers (version 2) ---------------------------------------------------- */

/*
 * Checks the header of a mapping of `size` bytes holding a channel with several writers: its
 * number of writer slots, or -1 if it is not one (ipckit_channel_check says -1 for these).
 */
static inline int ipckit_channel_check_writers(unsigned char *base, uint64_t size) {
  if (ipckit_channel_check_version(base, size, IPCKIT_CHANNEL_VERSION_WRITERS) != 0) return -1;
  uint32_t n = ipckit_load(base, IPCKIT_CHANNEL_OFF_WRITERS);
  if (n < 2 || n > IPCKIT_CHANNEL_MAX_WRITERS || ipckit_load(base, IPCKIT_CHANNEL_OFF_RINGS) != 1) return -1;
  return (int)n;
}

/* Joins as a writer: the slot taken for `pid`, or -1 if every slot was taken. */
static inline int ipckit_channel_join_writer(unsigned char *base, uint32_t pid) {
  uint32_t n = ipckit_load(base, IPCKIT_CHANNEL_OFF_WRITERS);
  for (uint32_t k = 0; k < n && k < IPCKIT_CHANNEL_MAX_WRITERS; k++) {
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(ipckit_word(base, IPCKIT_CHANNEL_OFF_SLOT(k)), &expected, pid, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      return (int)k;
  }
  return -1;
}

/* Leaves slot `slot` (this writer's, holding `pid`); wake the reader after it. */
static inline void ipckit_channel_leave_writer(unsigned char *base, uint32_t slot, uint32_t pid) {
  uint32_t expected = pid;
  if (__atomic_compare_exchange_n(ipckit_word(base, IPCKIT_CHANNEL_OFF_SLOT(slot)), &expected,
                                  IPCKIT_CHANNEL_SLOT_LEFT, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    __atomic_fetch_add(ipckit_word(base, IPCKIT_CHANNEL_OFF_WRITERS_DONE), 1, __ATOMIC_SEQ_CST);
}

/*
 * One writer's send (steps 1 to 5), locking with `tid` (gettid() of the writing thread; a
 * single-threaded writer's pid). Returns 1 if it was written and the reader must be woken,
 * 0 if it was written, -1 (nothing written) if there is no room yet, -2 if it can never fit,
 * -3 if the ring is broken, -4 if another writer holds the lock (its tid into *owner). Sets
 * *wake_writers to 1 when side 0 must be woken (after any return but -2 and -4).
 */
static inline int ipckit_ring_send_shared(struct ipckit_ring *ring, const void *payload, uint32_t length,
                                          uint32_t flags, uint32_t tid, uint32_t *owner, int *wake_writers) {
  uint32_t cap = ring->capacity;
  *wake_writers = 0;
  if (length > cap - 8) return -2;
  uint32_t *lock = ipckit_word(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_LOCK);
  uint32_t expected = 0;
  if (!__atomic_compare_exchange_n(lock, &expected, tid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    *owner = expected;
    return -4;
  }
  ring->index = ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_TAIL);
  int r;
  if ((ring->index & 7u) != 0)
    r = -3;
  else
    r = ipckit_ring_send(ring, payload, length, flags); /* steps 2, 3 and the reader's wake (5) */
  ipckit_store(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_LOCK, 0);
  if (ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_LOCK_WAITING) != 0 &&
      ipckit_exchange(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_LOCK_WAITING, 0) != 0)
    *wake_writers = 1;
  return r;
}

/*
 * A writer's announcement and re-check before sleeping (step 6): 1 if it must sleep, 0 if it
 * is ready (the flag is cleared again): for the lock while one is held, else for room for a
 * record of `record` bytes. *owner gets the lock's holder (0 if free): if it is the same as
 * one sleep ago and its thread is gone, free the lock with ipckit_ring_take_over.
 */
static inline int ipckit_ring_prepare_sleep_shared(struct ipckit_ring *ring, uint32_t record, uint32_t *owner) {
  uint32_t lock = ring->ctl + IPCKIT_CHANNEL_RING_LOCK;
  int held = ipckit_load(ring->base, lock) != 0;
  uint32_t flag = ring->ctl + (held ? IPCKIT_CHANNEL_RING_LOCK_WAITING : IPCKIT_CHANNEL_RING_WRITER_WAITING);
  ipckit_store(ring->base, flag, 1);
  int ready;
  if (held) {
    *owner = ipckit_load(ring->base, lock);
    ready = *owner == 0;
  } else {
    *owner = 0;
    uint32_t tail = ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_TAIL);
    uint32_t used = tail - ipckit_load(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_HEAD);
    ready = used > ring->capacity || ring->capacity - used >= record;
  }
  if (ready) ipckit_store(ring->base, flag, 0);
  return !ready;
}

/* Frees the lock if `owner` (whose thread is gone) still holds it. */
static inline void ipckit_ring_take_over(struct ipckit_ring *ring, uint32_t owner) {
  uint32_t expected = owner;
  __atomic_compare_exchange_n(ipckit_word(ring->base, ring->ctl + IPCKIT_CHANNEL_RING_LOCK), &expected, 0, 0,
                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

#endif /* IPCKIT_CHANNEL_H */
