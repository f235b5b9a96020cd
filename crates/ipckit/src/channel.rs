//! Message channels over a shared-memory ring: the layout and protocol of
//! `include/ipckit/channel.h` (the C header is the specification; this module implements it
//! for Rust, and is what the Node.js binding's copying path runs).
//!
//! A channel is one mapping ([`crate::mmap::Mapping`] of a memfd or a POSIX shared memory
//! object) holding one ring of messages (one-way) or two (duplex) and two *sides*: side 0
//! writes ring 0 (and reads ring 1), side 1 reads ring 0 (and writes ring 1). Each ring has a
//! single writer and a single reader, each of which keeps its own copy of the index it owns
//! (`tail`, `head`) and checks every index and length it reads from the shared memory, so a
//! broken or hostile peer makes calls fail with `EPROTO`, never read or write out of bounds.
//!
//! A writer publishes a message by storing the new `tail` after the whole record is written:
//! a writer killed half-way through a message never exposes a part of it. A side that has to
//! wait (a reader for data, a writer for room) announces it in the ring's `reader_waiting` /
//! `writer_waiting` word, re-checks, then sleeps on its side's eventfd or futex word; the other
//! side wakes it only when that word says it sleeps, so a busy reader costs the writer one
//! atomic load per message. Every store and load of the protocol is sequentially consistent,
//! which this store-then-load handshake needs (see the header).
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use std::os::fd::AsFd;
//! use std::sync::Arc;
//! use ipckit::channel::{self, Layout, Reader, Wake, Writer};
//! use ipckit::{memfd, mmap};
//!
//! let layout = Layout::new(1, 4096, Wake::Futex)?;
//! let fd = memfd::create("channel", Default::default())?;
//! mmap::truncate(fd.as_fd(), layout.size() as u64)?;
//! let map = Arc::new(mmap::Mapping::map(fd.as_fd(), layout.size(), false)?);
//! channel::init(&map, layout)?;
//! let mut writer = Writer::new(map.clone(), 0)?;
//! let mut reader = Reader::new(map.clone(), 0)?;
//! assert!(writer.try_send(b"hello", 0)?.is_some());
//! let mut out = Vec::new();
//! assert_eq!(reader.try_receive(&mut out)?.map(|r| r.flags), Some(0));
//! assert_eq!(out, b"hello");
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Errno, Error, Result};
use crate::mmap::Mapping;

/// `"IPCK"` in little-endian bytes: the first word of every channel.
pub const MAGIC: u32 = 0x4B43_5049;
/// The layout version of a single-writer channel.
pub const VERSION: u32 = 1;
/// The layout version of a channel with several writers (a one-way ring that up to
/// [`Layout::writers`] processes write into, serialized by a lock word; see the header).
pub const VERSION_WRITERS: u32 = 2;
/// The most writers a channel can take.
pub const MAX_WRITERS: u32 = 256;
/// Where ring 0's data starts; the header and the control words fit before it.
pub const DATA_OFFSET: usize = 4096;
/// The smallest ring capacity, in bytes.
pub const MIN_CAPACITY: u32 = 64;
/// The largest ring capacity, in bytes (1 GiB).
pub const MAX_CAPACITY: u32 = 1 << 30;
/// Record flag: the payload is a value serialized by `v8.serialize` (ipckit's `post()`).
pub const POSTED: u32 = 1;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 4;
const OFF_RINGS: usize = 8;
const OFF_CAPACITY: usize = 12;
const OFF_WAKE: usize = 16;
const OFF_DATA: usize = 20;
const OFF_WRITERS: usize = 24;
const OFF_WRITERS_DONE: usize = 28;
const OFF_WRITERS_DIED: usize = 32;
const OFF_SLOTS: usize = 1024;
/// A writer slot whose writer closed its end.
const SLOT_LEFT: u32 = u32::MAX;
/// A writer slot whose writer died without closing (the reader found its process gone).
const SLOT_DIED: u32 = u32::MAX - 1;
const SIDE_PID: usize = 0;
const SIDE_CLOSED: usize = 4;
const SIDE_WAKE_SEQ: usize = 8;
const RING_TAIL: usize = 0;
const RING_LOCK: usize = 4;
const RING_HEAD: usize = 64;
const RING_READER_WAITING: usize = 128;
const RING_WRITER_WAITING: usize = 132;
const RING_LOCK_WAITING: usize = 136;

/// Byte offset of side `side`'s words.
pub const fn side_offset(side: u32) -> usize {
    64 + 64 * side as usize
}

/// Byte offset of ring `ring`'s control words.
pub const fn ring_offset(ring: u32) -> usize {
    256 + 192 * ring as usize
}

/// Bytes a record of `length` payload bytes takes: an 8-byte header, the payload rounded up
/// to 8.
///
/// ```
/// assert_eq!(ipckit::channel::record_size(0), 8);
/// assert_eq!(ipckit::channel::record_size(64), 72);
/// assert_eq!(ipckit::channel::record_size(65), 80);
/// ```
pub const fn record_size(length: u32) -> u64 {
    8 + ((length as u64 + 7) & !7)
}

/// How a sleeping side is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Each side has an eventfd, which the other side writes 1 to; it is handed over with the
    /// channel's descriptor and waited for on an event loop.
    Eventfd,
    /// Each side has a futex word in the header: for channels opened by name, where no
    /// descriptor travels.
    Futex,
}

impl Wake {
    fn code(self) -> u32 {
        match self {
            Wake::Eventfd => 1,
            Wake::Futex => 2,
        }
    }
}

/// The shape of a channel: how many rings, their capacity, and how sides are woken.
///
/// ```
/// use ipckit::channel::{Layout, Wake};
/// let layout = Layout::new(2, 1 << 16, Wake::Eventfd)?;
/// assert_eq!(layout.size(), 4096 + 2 * 65536);
/// assert_eq!(Layout::new(1, 1000, Wake::Futex).unwrap_err().code(), "EINVAL"); // not a power of two
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// 1 (one-way) or 2 (duplex).
    pub rings: u32,
    /// Data bytes of each ring: a power of two from [`MIN_CAPACITY`] to [`MAX_CAPACITY`].
    pub capacity: u32,
    /// How sleeping sides are woken (with several writers: how the reader is; the writers
    /// always sleep on side 0's futex word).
    pub wake: Wake,
    /// How many writers the channel takes over its life: 1 (a single-writer channel, layout
    /// version 1), or 2 to [`MAX_WRITERS`] (version 2, one ring only).
    pub writers: u32,
}

impl Layout {
    /// Checks the values: `EINVAL` for a number of rings other than 1 or 2, or a capacity
    /// that is not a power of two in range.
    pub fn new(rings: u32, capacity: u32, wake: Wake) -> Result<Self> {
        let ok = (rings == 1 || rings == 2)
            && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
            && capacity.is_power_of_two();
        if !ok {
            return Err(Error::new(Errno::EINVAL, "channel"));
        }
        Ok(Self {
            rings,
            capacity,
            wake,
            writers: 1,
        })
    }

    /// The same shape taking `writers` writers: 1 is a single-writer channel; 2 to
    /// [`MAX_WRITERS`] needs one ring (`EINVAL` otherwise).
    ///
    /// ```
    /// use ipckit::channel::{Layout, Wake};
    /// let layout = Layout::new(1, 4096, Wake::Eventfd)?.with_writers(4)?;
    /// assert_eq!((layout.writers, layout.size()), (4, 4096 + 4096));
    /// assert_eq!(Layout::new(2, 4096, Wake::Eventfd)?.with_writers(4).unwrap_err().code(), "EINVAL");
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn with_writers(self, writers: u32) -> Result<Self> {
        if writers == 0 || writers > MAX_WRITERS || (writers > 1 && self.rings != 1) {
            return Err(Error::new(Errno::EINVAL, "channel"));
        }
        Ok(Self { writers, ..self })
    }

    /// The layout version of this shape: [`VERSION`] for one writer, [`VERSION_WRITERS`] for
    /// several.
    pub fn version(&self) -> u32 {
        if self.writers > 1 {
            VERSION_WRITERS
        } else {
            VERSION
        }
    }

    /// The size of the file: [`DATA_OFFSET`] plus every ring's data.
    pub fn size(&self) -> usize {
        DATA_OFFSET + self.rings as usize * self.capacity as usize
    }

    /// The largest payload one message can have: the capacity less a record header.
    pub fn max_message(&self) -> u32 {
        self.capacity - 8
    }
}

fn word(map: &Mapping, offset: usize) -> Result<&AtomicU32> {
    map.word(offset, "channel")
}

fn proto() -> Error {
    Error::new(Errno::EPROTO, "channel")
}

/// Sleeping, steps b and c of the header: stores 1 into the waiting flag at `offset` of
/// `ring`, then re-checks with `ready`; the flag is withdrawn when it is ready or the check
/// fails. Whether to sleep now.
fn announce(ring: &RingAt, offset: usize, ready: impl FnOnce() -> Result<bool>) -> Result<bool> {
    let flag = ring.word(offset)?;
    flag.store(1, SeqCst);
    match ready() {
        Ok(false) => Ok(true),
        other => {
            flag.store(0, SeqCst);
            other.map(|_| false)
        }
    }
}

/// Writes the header of a new channel into `map`, which must be zeroed and exactly
/// `layout.size()` bytes (`EINVAL` otherwise). The magic number goes last, so a peer that
/// checks the header never sees half of one.
pub fn init(map: &Mapping, layout: Layout) -> Result<()> {
    if map.len() != layout.size() || map.is_readonly() {
        return Err(Error::new(Errno::EINVAL, "channel"));
    }
    word(map, OFF_VERSION)?.store(layout.version(), SeqCst);
    if layout.writers > 1 {
        word(map, OFF_WRITERS)?.store(layout.writers, SeqCst);
    }
    word(map, OFF_RINGS)?.store(layout.rings, SeqCst);
    word(map, OFF_CAPACITY)?.store(layout.capacity, SeqCst);
    word(map, OFF_WAKE)?.store(layout.wake.code(), SeqCst);
    word(map, OFF_DATA)?.store(DATA_OFFSET as u32, SeqCst);
    word(map, OFF_MAGIC)?.store(MAGIC, SeqCst);
    Ok(())
}

/// Reads and checks the header of a mapping: its layout, or `EPROTO` if it is not a channel
/// of this version whose size matches the mapping (a file that is not a channel, or one a
/// peer broke).
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// # use std::os::fd::AsFd;
/// use ipckit::channel::{self, Layout, Wake};
/// # let layout = Layout::new(1, 64, Wake::Futex)?;
/// # let fd = ipckit::memfd::create("c", Default::default())?;
/// # ipckit::mmap::truncate(fd.as_fd(), layout.size() as u64)?;
/// # let map = ipckit::mmap::Mapping::map(fd.as_fd(), layout.size(), false)?;
/// assert_eq!(channel::check(&map).unwrap_err().code(), "EPROTO"); // zeros: no magic yet
/// channel::init(&map, layout)?;
/// assert_eq!(channel::check(&map)?, layout);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn check(map: &Mapping) -> Result<Layout> {
    if map.len() < DATA_OFFSET {
        return Err(proto());
    }
    let load = |offset| word(map, offset).map(|w| w.load(SeqCst));
    let version = load(OFF_VERSION)?;
    if load(OFF_MAGIC)? != MAGIC || (version != VERSION && version != VERSION_WRITERS) {
        return Err(proto());
    }
    let wake = match load(OFF_WAKE)? {
        1 => Wake::Eventfd,
        2 => Wake::Futex,
        _ => return Err(proto()),
    };
    let mut layout =
        Layout::new(load(OFF_RINGS)?, load(OFF_CAPACITY)?, wake).map_err(|_| proto())?;
    if version == VERSION_WRITERS {
        let writers = load(OFF_WRITERS)?;
        layout = layout.with_writers(writers).map_err(|_| proto())?;
        if writers < 2 {
            return Err(proto());
        }
    }
    if load(OFF_DATA)? as usize != DATA_OFFSET || layout.size() != map.len() {
        return Err(proto());
    }
    Ok(layout)
}

/// Claims side `side` (0 or 1) for the thread whose [`lock_id`] is `pid` (a single-threaded
/// process's pid; ipckit stores the claiming JavaScript thread's, so that a Worker's end is
/// seen to end with the Worker): `EBUSY` if it is held already (a side has one owner: rings
/// have one writer and one reader), `EINVAL` for a side other than 0 or 1 or an id of 0, and
/// for side 0 of a channel with several writers (they [`join_writer`] instead).
pub fn claim(map: &Mapping, side: u32, pid: u32) -> Result<()> {
    if side > 1 || pid == 0 || (side == 0 && check(map)?.writers > 1) {
        return Err(Error::new(Errno::EINVAL, "channel"));
    }
    word(map, side_offset(side) + SIDE_PID)?
        .compare_exchange(0, pid, SeqCst, SeqCst)
        .map(drop)
        .map_err(|_| Error::new(Errno::EBUSY, "channel"))
}

/// The id ([`lock_id`]) that claimed side `side`, 0 while unclaimed.
pub fn side_pid(map: &Mapping, side: u32) -> Result<u32> {
    Ok(word(map, side_offset(side & 1) + SIDE_PID)?.load(SeqCst))
}

/// Marks side `side` closed (it sends and takes nothing more); wake the other side after it.
pub fn close_side(map: &Mapping, side: u32) -> Result<()> {
    word(map, side_offset(side & 1) + SIDE_CLOSED)?.store(1, SeqCst);
    Ok(())
}

/// Whether side `side` has closed the channel.
pub fn is_closed(map: &Mapping, side: u32) -> Result<bool> {
    Ok(word(map, side_offset(side & 1) + SIDE_CLOSED)?.load(SeqCst) != 0)
}

/// Side `side`'s futex word now: load it before announcing a sleep ([`Wake::Futex`]), and
/// sleep only while it still holds this value.
pub fn wake_seq(map: &Mapping, side: u32) -> Result<u32> {
    Ok(word(map, side_offset(side & 1) + SIDE_WAKE_SEQ)?.load(SeqCst))
}

/// The byte offset in the mapping of side `side`'s futex word.
pub fn wake_seq_offset(side: u32) -> usize {
    side_offset(side & 1) + SIDE_WAKE_SEQ
}

/// Wakes side `side`: writes 1 to its eventfd `eventfd` ([`Wake::Eventfd`]), or bumps its
/// futex word and wakes every waiter on it ([`Wake::Futex`], `eventfd` unused).
pub fn wake_side(
    map: &Mapping,
    side: u32,
    wake: Wake,
    eventfd: Option<BorrowedFd<'_>>,
) -> Result<()> {
    match (wake, eventfd) {
        (Wake::Eventfd, Some(fd)) => crate::eventfd::write(fd, 1).map(drop),
        (Wake::Eventfd, None) => Err(Error::new(Errno::EBADF, "channel")),
        (Wake::Futex, _) => {
            let offset = wake_seq_offset(side);
            word(map, offset)?.fetch_add(1, SeqCst);
            map.wake(offset, u32::MAX).map(drop)
        }
    }
}

/// The slot count of a channel with several writers (`EINVAL` for a single-writer channel).
fn writer_slots(map: &Mapping) -> Result<u32> {
    match check(map)?.writers {
        1 => Err(Error::new(Errno::EINVAL, "channel")),
        n => Ok(n),
    }
}

fn slot_offset(slot: u32) -> usize {
    OFF_SLOTS + 4 * slot as usize
}

/// Joins a channel with several writers as a writer: stores `pid` (the joining thread's
/// [`lock_id`], as [`claim`]) into the first free slot (compare and swap) and returns the slot. `EBUSY` when every slot was taken (a slot is used
/// once: the channel takes [`Layout::writers`] writers over its life), `EINVAL` for a
/// single-writer channel or a pid of 0.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// # use std::os::fd::AsFd;
/// use ipckit::channel::{self, Layout, Wake};
/// # let layout = Layout::new(1, 64, Wake::Futex)?.with_writers(2)?;
/// # let fd = ipckit::memfd::create("c", Default::default())?;
/// # ipckit::mmap::truncate(fd.as_fd(), layout.size() as u64)?;
/// # let map = ipckit::mmap::Mapping::map(fd.as_fd(), layout.size(), false)?;
/// channel::init(&map, layout)?;
/// assert_eq!(channel::join_writer(&map, 10)?, 0);
/// assert_eq!(channel::join_writer(&map, 11)?, 1);
/// assert_eq!(channel::join_writer(&map, 12).unwrap_err().code(), "EBUSY");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn join_writer(map: &Mapping, pid: u32) -> Result<u32> {
    let slots = writer_slots(map)?;
    if pid == 0 || pid >= SLOT_DIED {
        return Err(Error::new(Errno::EINVAL, "channel"));
    }
    for slot in 0..slots {
        if word(map, slot_offset(slot))?
            .compare_exchange(0, pid, SeqCst, SeqCst)
            .is_ok()
        {
            return Ok(slot);
        }
    }
    Err(Error::new(Errno::EBUSY, "channel"))
}

/// Ends slot `slot`'s writer: `died` false when it closed its end (it calls this itself), true
/// when the reader found its process gone. Counts it done once (the slot goes from a pid to
/// left or died by compare and swap): whether this call did it.
fn end_writer(map: &Mapping, slot: u32, died: bool) -> Result<bool> {
    let w = word(map, slot_offset(slot))?;
    let pid = w.load(SeqCst);
    if pid == 0 || pid >= SLOT_DIED {
        return Ok(false);
    }
    let to = if died { SLOT_DIED } else { SLOT_LEFT };
    if w.compare_exchange(pid, to, SeqCst, SeqCst).is_err() {
        return Ok(false);
    }
    if died {
        word(map, OFF_WRITERS_DIED)?.fetch_add(1, SeqCst);
    }
    word(map, OFF_WRITERS_DONE)?.fetch_add(1, SeqCst);
    Ok(true)
}

/// The writer of slot `slot` closes its end (it sends nothing more); wake the reader after it.
pub fn leave_writer(map: &Mapping, slot: u32) -> Result<()> {
    if slot >= writer_slots(map)? {
        return Err(Error::new(Errno::EINVAL, "channel"));
    }
    end_writer(map, slot, false).map(drop)
}

/// Where the writers of a channel with several writers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writers {
    /// Slots: how many writers the channel takes.
    pub slots: u32,
    /// Slots taken so far (by a writer that is in, or was).
    pub joined: u32,
    /// Writers that closed or died: the reader's input ends when this reaches `slots` (and the
    /// ring is drained).
    pub done: u32,
    /// Of those, writers that died without closing.
    pub died: u32,
}

/// The writers' counts; with `scan`, first looks at every joined writer's thread
/// ([`thread_alive`]) and marks the ones that are gone as died (the reader does this while it
/// waits: nobody else notices a writer's death). `EINVAL` for a single-writer channel.
pub fn writers(map: &Mapping, scan: bool) -> Result<Writers> {
    let slots = writer_slots(map)?;
    let mut joined = 0;
    for slot in 0..slots {
        let pid = word(map, slot_offset(slot))?.load(SeqCst);
        if pid != 0 {
            joined += 1;
        }
        if scan && pid != 0 && pid < SLOT_DIED && !thread_alive(pid) {
            end_writer(map, slot, true)?;
        }
    }
    Ok(Writers {
        slots,
        joined,
        done: word(map, OFF_WRITERS_DONE)?.load(SeqCst).min(slots),
        died: word(map, OFF_WRITERS_DIED)?.load(SeqCst).min(slots),
    })
}

/// Whether process `pid` still runs (a zombie has exited): through a pidfd, which a reused pid
/// cannot fool once it is open; `kill(pid, 0)` if no pidfd can be had (`EMFILE`, old kernels).
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match crate::pidfd::open(pid) {
        Ok(fd) => !crate::pidfd::has_exited(std::os::fd::AsFd::as_fd(&fd)).unwrap_or(false),
        Err(e) if e.errno() == Errno::ESRCH => false,
        Err(_) => {
            // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
            let rc = unsafe { libc::kill(pid, 0) };
            rc == 0 || Error::last("kill").errno() != Errno::ESRCH
        }
    }
}

/// What a writer of several stores in the ring's lock word while it writes: its thread's id
/// (`gettid`; a single-threaded process's is its pid), so that a lock left by a thread that
/// ended while its process lives on (a Worker terminated in the middle of a send, whose
/// `finally` never runs) is taken over like one left by a process that died.
///
/// ```
/// let id = ipckit::channel::lock_id();
/// assert!(id > 0);
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn lock_id() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// What a writer of several stores in the ring's lock word while it writes: this process's id
/// (no thread ids a peer could look up here).
///
/// ```
/// let id = ipckit::channel::lock_id();
/// assert!(id > 0);
/// ```
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn lock_id() -> u32 {
    std::process::id()
}

/// Whether the thread whose [`lock_id`] is `id` still runs: a thread of this process by
/// `tgkill(pid, id, 0)`; otherwise as [`process_alive`] (a pidfd for a process's first thread,
/// `kill(id, 0)` for another thread, which finds it by its id until it ends).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn thread_alive(id: u32) -> bool {
    let (Ok(tid), Ok(pid)) = (i32::try_from(id), i32::try_from(std::process::id())) else {
        return false;
    };
    // SAFETY: tgkill with signal 0 sends nothing; it only checks that thread `tid` of this
    // process exists.
    if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) } == 0 {
        return true;
    }
    id != std::process::id() && process_alive(id)
}

/// Whether the writer whose [`lock_id`] is `id` still runs ([`process_alive`] here).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn thread_alive(id: u32) -> bool {
    process_alive(id)
}

/// What [`peer_watch`] found to watch for the end of a peer.
#[derive(Debug)]
pub struct PeerWatch {
    /// A pidfd that becomes readable when the peer ends; `None` when none could be had: look
    /// at [`thread_alive`] now and then instead.
    pub fd: Option<std::os::fd::OwnedFd>,
    /// Whether the peer is a thread that does not lead its process (a Worker's), rather than
    /// a process (its first thread).
    pub thread: bool,
}

/// What to watch for the end of the peer whose id (a [`lock_id`]: its thread's) a side or a
/// writer's slot holds. A process's first thread gets a pidfd of its process
/// ([`pidfd::open`](crate::pidfd::open)); another thread (a Worker's) a pidfd of that thread
/// alone ([`pidfd::open_thread`](crate::pidfd::open_thread), Linux 6.9 and later, when
/// `thread_pidfd`), which ends with it even while its process lives on; otherwise no fd.
/// `ESRCH` when it is gone already (or `id` cannot be a thread id).
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// let me = ipckit::channel::peer_watch(std::process::id(), true)?;
/// assert!(me.fd.is_some() && !me.thread);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn peer_watch(id: u32, thread_pidfd: bool) -> Result<PeerWatch> {
    let gone = || Error::new(Errno::ESRCH, "pidfd_open");
    let tid = match i32::try_from(id) {
        Ok(tid) if tid > 0 => tid,
        _ => return Err(gone()),
    };
    let thread = match crate::pidfd::open(tid) {
        Ok(fd) => {
            return Ok(PeerWatch {
                fd: Some(fd),
                thread: false,
            })
        }
        Err(e) if e.errno() == Errno::ESRCH => return Err(e),
        // Not a process's first thread (ENOENT since Linux 6.9, EINVAL before); EMFILE and
        // the like tell nothing.
        Err(e) => matches!(e.errno(), Errno::ENOENT | Errno::EINVAL),
    };
    if thread_pidfd {
        match crate::pidfd::open_thread(tid) {
            Ok(fd) => {
                return Ok(PeerWatch {
                    fd: Some(fd),
                    thread: true,
                })
            }
            Err(e) if e.errno() == Errno::ESRCH => return Err(e),
            Err(_) => {}
        }
    }
    if thread_alive(id) {
        Ok(PeerWatch { fd: None, thread })
    } else {
        Err(gone())
    }
}

/// The ring's lock word of a channel with several writers: the [`lock_id`] of the writer that
/// holds it, 0 when free.
pub fn lock_owner(map: &Mapping) -> Result<u32> {
    writer_slots(map)?;
    Ok(word(map, ring_offset(0) + RING_LOCK)?.load(SeqCst))
}

/// Frees the ring's lock if `owner` (a [`lock_id`]) still holds it and its thread is gone (a
/// writer killed while writing, or its Worker terminated: its unpublished record is dropped,
/// the next writer writes over it). Whether the lock was freed (or had changed hands already):
/// try again.
pub fn take_over_lock(map: &Mapping, owner: u32) -> Result<bool> {
    writer_slots(map)?;
    let lock = word(map, ring_offset(0) + RING_LOCK)?;
    let now = lock.load(SeqCst);
    if now != owner || owner == 0 {
        return Ok(true);
    }
    if thread_alive(owner) {
        return Ok(false);
    }
    let _ = lock.compare_exchange(owner, 0, SeqCst, SeqCst);
    Ok(true)
}

/// Where a ring is and how large: the parts both of its ends need.
#[derive(Debug)]
struct RingAt {
    map: Arc<Mapping>,
    ctl: usize,
    data: usize,
    capacity: u32,
}

impl RingAt {
    fn new(map: Arc<Mapping>, ring: u32) -> Result<Self> {
        let layout = check(&map)?;
        if ring >= layout.rings {
            return Err(Error::new(Errno::EINVAL, "channel"));
        }
        Ok(Self {
            ctl: ring_offset(ring),
            data: DATA_OFFSET + ring as usize * layout.capacity as usize,
            capacity: layout.capacity,
            map,
        })
    }

    /// Ring `ring` of a checked channel and the position in its word at `offset` (the head or
    /// the tail), which must be at a record's start (`EPROTO` otherwise).
    fn with_position(map: Arc<Mapping>, ring: u32, offset: usize) -> Result<(Self, u32)> {
        let ring = Self::new(map, ring)?;
        let position = ring.word(offset)?.load(SeqCst);
        if position % 8 != 0 {
            return Err(proto());
        }
        Ok((ring, position))
    }

    fn word(&self, offset: usize) -> Result<&AtomicU32> {
        word(&self.map, self.ctl + offset)
    }

    /// The length of a message this ring can carry with `flags`: `EMSGSIZE` for a payload
    /// larger than the capacity less a header, `EINVAL` for unknown flags.
    fn message_length(&self, payload: &[u8], flags: u32) -> Result<u32> {
        let length = match u32::try_from(payload.len()) {
            Ok(n) if n <= self.capacity - 8 => n,
            _ => return Err(Error::new(Errno::EMSGSIZE, "channel")),
        };
        if flags & !POSTED != 0 {
            return Err(Error::new(Errno::EINVAL, "channel"));
        }
        Ok(length)
    }

    /// Writes a record (its header, then the payload) at position `index` (a tail), unpublished.
    fn put_record(&self, index: u32, payload: &[u8], length: u32, flags: u32) -> Result<()> {
        let pos = index & (self.capacity - 1);
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&length.to_ne_bytes());
        header[4..].copy_from_slice(&flags.to_ne_bytes());
        self.put(pos, &header)?;
        self.put((pos + 8) & (self.capacity - 1), payload)
    }

    /// Copies `src` into the data at ring position `pos`, wrapping at the end.
    fn put(&self, pos: u32, src: &[u8]) -> Result<()> {
        let first = src.len().min((self.capacity - pos) as usize);
        self.map.write(self.data + pos as usize, &src[..first])?;
        self.map.write(self.data, &src[first..])
    }

    /// Copies `dst.len()` bytes from ring position `pos` into `dst`, wrapping at the end.
    fn get(&self, pos: u32, dst: &mut [u8]) -> Result<()> {
        let first = dst.len().min((self.capacity - pos) as usize);
        let (a, b) = dst.split_at_mut(first);
        self.map.read(self.data + pos as usize, a)?;
        self.map.read(self.data, b)
    }
}

/// A message written by [`Writer::try_send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The reader was asleep: wake its side now.
    pub wake: bool,
}

/// The writing end of one ring (its single writer).
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// # use std::os::fd::AsFd;
/// # use std::sync::Arc;
/// use ipckit::channel::{self, Layout, Wake, Writer};
/// # let layout = Layout::new(1, 64, Wake::Futex)?;
/// # let fd = ipckit::memfd::create("c", Default::default())?;
/// # ipckit::mmap::truncate(fd.as_fd(), layout.size() as u64)?;
/// # let map = Arc::new(ipckit::mmap::Mapping::map(fd.as_fd(), layout.size(), false)?);
/// # channel::init(&map, layout)?;
/// let mut writer = Writer::new(map, 0)?;
/// assert!(writer.try_send(&[7; 48], 0)?.is_some());   // 56 of 64 bytes
/// assert!(writer.try_send(&[7; 8], 0)?.is_none());    // full: no room for 16 more
/// assert_eq!(writer.try_send(&[0; 57], 0).unwrap_err().code(), "EMSGSIZE");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Debug)]
pub struct Writer {
    ring: RingAt,
    tail: u32,
}

impl Writer {
    /// The writer of ring `ring` of a checked channel (`EPROTO` if `map` is not one, `EINVAL`
    /// for a ring it lacks). Its tail starts where the shared one is.
    /// A channel with several writers has no single writer: `EINVAL` (see [`SharedWriter`]).
    pub fn new(map: Arc<Mapping>, ring: u32) -> Result<Self> {
        if check(&map)?.writers > 1 {
            return Err(Error::new(Errno::EINVAL, "channel"));
        }
        let (ring, tail) = RingAt::with_position(map, ring, RING_TAIL)?;
        Ok(Self { ring, tail })
    }

    /// The largest payload a message can have.
    pub fn max_message(&self) -> u32 {
        self.ring.capacity - 8
    }

    /// Free bytes now, after checking the reader's head (`EPROTO` if it is impossible).
    fn free(&self) -> Result<u32> {
        let head = self.ring.word(RING_HEAD)?.load(SeqCst);
        let used = self.tail.wrapping_sub(head);
        if used > self.ring.capacity || head % 8 != 0 {
            return Err(proto());
        }
        Ok(self.ring.capacity - used)
    }

    /// Writes one message without waiting: `Some` once it is published (see [`Sent::wake`]),
    /// `None` if there is no room for it yet (nothing written). `EMSGSIZE` for a payload
    /// larger than [`max_message`](Self::max_message), `EINVAL` for unknown `flags`, `EPROTO`
    /// if the reader broke the ring; nothing is written then.
    pub fn try_send(&mut self, payload: &[u8], flags: u32) -> Result<Option<Sent>> {
        let length = self.ring.message_length(payload, flags)?;
        let record = record_size(length) as u32;
        if self.free()? < record {
            return Ok(None);
        }
        self.ring.put_record(self.tail, payload, length, flags)?;
        self.tail = self.tail.wrapping_add(record);
        // Publishing: the reader sees the message only from here on, whole.
        self.ring.word(RING_TAIL)?.store(self.tail, SeqCst);
        let waiting = self.ring.word(RING_READER_WAITING)?;
        let wake = waiting.load(SeqCst) != 0 && waiting.swap(0, SeqCst) != 0;
        Ok(Some(Sent { wake }))
    }

    /// Announces that the writer is about to sleep until a record of `length` payload bytes
    /// fits, then re-checks: `true` if it must sleep now, `false` if there is room already
    /// (the announcement is withdrawn). `EPROTO` if the reader broke the ring.
    pub fn prepare_sleep(&self, length: u32) -> Result<bool> {
        announce(&self.ring, RING_WRITER_WAITING, || {
            Ok(u64::from(self.free()?) >= record_size(length))
        })
    }
}

/// What [`SharedWriter::try_send`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// Another writer holds the ring's lock (this pid): nothing written.
    Locked(u32),
    /// No room for the record yet: nothing written.
    Full,
    /// Published.
    Sent,
}

/// What one [`SharedWriter::try_send`] did, and whom to wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedSent {
    /// Written, or why not.
    pub result: Shared,
    /// The reader was asleep: wake side 1 now.
    pub wake_reader: bool,
    /// Writers wait (for the lock or for room) and the lock was just freed: wake side 0.
    pub wake_writers: bool,
}

/// One of the writers of a channel with several writers (layout version 2): each message is
/// written under the ring's lock word, which holds the writer's pid, from the shared tail.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// # use std::os::fd::AsFd;
/// # use std::sync::Arc;
/// use ipckit::channel::{self, Layout, Reader, Shared, SharedWriter, Wake};
/// # let layout = Layout::new(1, 64, Wake::Futex)?.with_writers(2)?;
/// # let fd = ipckit::memfd::create("c", Default::default())?;
/// # ipckit::mmap::truncate(fd.as_fd(), layout.size() as u64)?;
/// # let map = Arc::new(ipckit::mmap::Mapping::map(fd.as_fd(), layout.size(), false)?);
/// # channel::init(&map, layout)?;
/// let mut a = SharedWriter::new(map.clone(), 100)?;
/// let mut b = SharedWriter::new(map.clone(), 200)?;
/// assert_eq!(a.try_send(b"a", 0)?.result, Shared::Sent);
/// assert_eq!(b.try_send(b"b", 0)?.result, Shared::Sent);
/// let mut reader = Reader::new(map, 0)?;
/// let mut out = Vec::new();
/// reader.try_receive(&mut out)?;
/// assert_eq!(out, b"a");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedWriter {
    ring: RingAt,
    pid: u32,
    /// The lock's owner seen at the last `prepare_sleep`: its process is looked at only when
    /// it still holds the lock one sleep later.
    owner: u32,
}

impl SharedWriter {
    /// A writer of a channel with several writers (`EINVAL` for a single-writer one), locking
    /// with `pid`: [`lock_id`] of the thread that writes (the lock's owner is judged alive by
    /// it).
    pub fn new(map: Arc<Mapping>, pid: u32) -> Result<Self> {
        writer_slots(&map)?;
        if pid == 0 {
            return Err(Error::new(Errno::EINVAL, "channel"));
        }
        Ok(Self {
            ring: RingAt::new(map, 0)?,
            pid,
            owner: 0,
        })
    }

    /// Free bytes now from the shared tail and head (`EPROTO` if they are impossible).
    fn free(&self) -> Result<(u32, u32)> {
        let tail = self.ring.word(RING_TAIL)?.load(SeqCst);
        let head = self.ring.word(RING_HEAD)?.load(SeqCst);
        let used = tail.wrapping_sub(head);
        if used > self.ring.capacity || head % 8 != 0 || tail % 8 != 0 {
            return Err(proto());
        }
        Ok((tail, self.ring.capacity - used))
    }

    /// Takes the lock, writes one message at the shared tail if it fits, publishes it, frees
    /// the lock. `EMSGSIZE`, `EINVAL` (flags), `EPROTO` as [`Writer::try_send`].
    pub fn try_send(&mut self, payload: &[u8], flags: u32) -> Result<SharedSent> {
        let length = self.ring.message_length(payload, flags)?;
        let lock = self.ring.word(RING_LOCK)?;
        if let Err(owner) = lock.compare_exchange(0, self.pid, SeqCst, SeqCst) {
            return Ok(SharedSent {
                result: Shared::Locked(owner),
                wake_reader: false,
                wake_writers: false,
            });
        }
        let written = self.write_locked(payload, length, flags);
        // Freeing the lock, then the flag of the writers waiting for it: the same handshake as
        // a reader's with writers waiting for room.
        lock.store(0, SeqCst);
        let waiting = self.ring.word(RING_LOCK_WAITING)?;
        let wake_writers = waiting.load(SeqCst) != 0 && waiting.swap(0, SeqCst) != 0;
        let result = if written? { Shared::Sent } else { Shared::Full };
        let reader = self.ring.word(RING_READER_WAITING)?;
        let wake_reader =
            result == Shared::Sent && reader.load(SeqCst) != 0 && reader.swap(0, SeqCst) != 0;
        Ok(SharedSent {
            result,
            wake_reader,
            wake_writers,
        })
    }

    fn write_locked(&self, payload: &[u8], length: u32, flags: u32) -> Result<bool> {
        let record = record_size(length) as u32;
        let (tail, free) = self.free()?;
        if free < record {
            return Ok(false);
        }
        self.ring.put_record(tail, payload, length, flags)?;
        // Publishing: the reader sees the message only from here on, whole.
        self.ring
            .word(RING_TAIL)?
            .store(tail.wrapping_add(record), SeqCst);
        Ok(true)
    }

    /// Announces that this writer is about to sleep, then re-checks: `true` if it must sleep
    /// now. While another writer holds the lock, the sleep is for the lock (`lock_waiting`; a
    /// lock still held by the owner seen at the previous call is freed if that owner's process
    /// is gone); otherwise it is for room for a record of `length` payload bytes
    /// (`writer_waiting`, as a single writer's).
    pub fn prepare_sleep(&mut self, length: u32) -> Result<bool> {
        if self.ring.word(RING_LOCK)?.load(SeqCst) != 0 {
            let seen = self.owner;
            let mut owner = 0;
            let sleep = announce(&self.ring, RING_LOCK_WAITING, || {
                owner = self.ring.word(RING_LOCK)?.load(SeqCst);
                if owner == 0 {
                    Ok(true)
                } else if owner == seen && owner != self.pid {
                    take_over_lock(&self.ring.map, owner)
                } else {
                    Ok(false)
                }
            })?;
            self.owner = owner;
            return Ok(sleep);
        }
        self.owner = 0;
        announce(&self.ring, RING_WRITER_WAITING, || {
            // Without the lock, other writers move the tail between the two loads: a pair that
            // looks impossible only means "try again" (the locked send checks the indices).
            let tail = self.ring.word(RING_TAIL)?.load(SeqCst);
            let used = tail.wrapping_sub(self.ring.word(RING_HEAD)?.load(SeqCst));
            let cap = self.ring.capacity;
            Ok(used > cap || u64::from(cap - used) >= record_size(length))
        })
    }

    /// Whether the last `prepare_sleep` found the lock held (the sleep after it should end
    /// after a while, to look at the owner again).
    pub fn waits_for_lock(&self) -> bool {
        self.owner != 0
    }
}

/// A message taken by [`Reader::try_receive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The record's flags ([`POSTED`] or 0).
    pub flags: u32,
    /// The writer was waiting for room: wake its side now.
    pub wake: bool,
}

/// The reading end of one ring (its single reader).
#[derive(Debug)]
pub struct Reader {
    ring: RingAt,
    head: u32,
}

impl Reader {
    /// The reader of ring `ring` of a checked channel (`EPROTO` if `map` is not one, `EINVAL`
    /// for a ring it lacks). Its head starts where the shared one is.
    pub fn new(map: Arc<Mapping>, ring: u32) -> Result<Self> {
        let (ring, head) = RingAt::with_position(map, ring, RING_HEAD)?;
        Ok(Self { ring, head })
    }

    /// The next record, checked: its payload length and flags, or `None` if the ring is empty.
    fn peek(&self) -> Result<Option<(u32, u32)>> {
        let tail = self.ring.word(RING_TAIL)?.load(SeqCst);
        let used = tail.wrapping_sub(self.head);
        if used == 0 {
            return Ok(None);
        }
        if used > self.ring.capacity || tail % 8 != 0 {
            return Err(proto());
        }
        let mut header = [0u8; 8];
        self.ring
            .get(self.head & (self.ring.capacity - 1), &mut header)?;
        let length = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let flags = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
        if length > self.ring.capacity - 8
            || record_size(length) > u64::from(used)
            || flags & !POSTED != 0
        {
            return Err(proto());
        }
        Ok(Some((length, flags)))
    }

    /// Takes one message into `out` (replacing its contents) without waiting: `None` if the
    /// ring is empty. `EPROTO` if the writer broke the ring (nothing is taken then, and it
    /// stays broken); `ENOMEM` if `out` cannot grow to the message.
    pub fn try_receive(&mut self, out: &mut Vec<u8>) -> Result<Option<Received>> {
        let Some((length, flags)) = self.peek()? else {
            return Ok(None);
        };
        out.clear();
        out.try_reserve_exact(length as usize)
            .map_err(|_| Error::new(Errno::ENOMEM, "channel"))?;
        out.resize(length as usize, 0);
        let cap = self.ring.capacity;
        self.ring.get((self.head + 8) & (cap - 1), out)?;
        self.head = self.head.wrapping_add(record_size(length) as u32);
        self.ring.word(RING_HEAD)?.store(self.head, SeqCst);
        let waiting = self.ring.word(RING_WRITER_WAITING)?;
        let wake = waiting.load(SeqCst) != 0 && waiting.swap(0, SeqCst) != 0;
        Ok(Some(Received { flags, wake }))
    }

    /// Announces that the reader is about to sleep until a message comes, then re-checks:
    /// `true` if it must sleep now, `false` if one is there already (the announcement is
    /// withdrawn).
    pub fn prepare_sleep(&self) -> Result<bool> {
        announce(&self.ring, RING_READER_WAITING, || {
            Ok(self.ring.word(RING_TAIL)?.load(SeqCst) != self.head)
        })
    }
}

/// How [`sleep`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slept {
    /// Woken (or spuriously: re-check the ring).
    Woken,
    /// The peer's process exited (its pidfd is readable).
    PeerExited,
    /// The timeout passed.
    TimedOut,
}

/// Blocks the calling thread until side `side` is woken, its peer's process exits, or
/// `timeout` passes. With [`Wake::Eventfd`], `eventfd` is the side's eventfd (polled, then
/// read, which resets it); with [`Wake::Futex`], the side's futex word is waited on while it
/// holds `seq` (read it with [`wake_seq`] *before* announcing the sleep). `peer` is a pidfd
/// of the other side's process, if known. Call it after `prepare_sleep` said `true`.
pub fn sleep(
    map: &Mapping,
    side: u32,
    wake: Wake,
    eventfd: Option<BorrowedFd<'_>>,
    seq: u32,
    peer: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> Result<Slept> {
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    let left = || -> Option<Duration> {
        match deadline {
            Some(Some(d)) => Some(d.saturating_duration_since(Instant::now())),
            _ => None,
        }
    };
    match wake {
        Wake::Eventfd => {
            let fd = eventfd.ok_or(Error::new(Errno::EBADF, "channel"))?;
            let mut fds = vec![fd];
            fds.extend(peer);
            let ready = poll_in(&fds, left)?;
            if ready.get(1) == Some(&true) {
                return Ok(Slept::PeerExited);
            }
            if ready[0] {
                crate::eventfd::read(fd)?;
                return Ok(Slept::Woken);
            }
            Ok(Slept::TimedOut)
        }
        Wake::Futex => {
            // A futex has no descriptor to poll beside the pidfd: wait in slices, looking at
            // the peer between them.
            const SLICE: Duration = Duration::from_millis(50);
            let offset = wake_seq_offset(side);
            loop {
                if let Some(pidfd) = peer {
                    if crate::pidfd::has_exited(pidfd)? {
                        return Ok(Slept::PeerExited);
                    }
                }
                let slice = left().map_or(SLICE, |l| l.min(SLICE));
                match map.wait(offset, seq, Some(slice), None)? {
                    crate::mmap::WaitResult::TimedOut => {
                        if left().is_some_and(|l| l.is_zero()) {
                            return Ok(Slept::TimedOut);
                        }
                    }
                    _ => return Ok(Slept::Woken),
                }
            }
        }
    }
}

/// `poll` for `POLLIN` on `fds` until one is ready or the time `left()` runs out (re-armed
/// from what is left after `EINTR`); which ones are ready.
fn poll_in(fds: &[BorrowedFd<'_>], left: impl Fn() -> Option<Duration>) -> Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let ms = left().map_or(-1, |l| {
            libc::c_int::try_from(
                l.as_millis()
                    .saturating_add(u128::from(l.subsec_nanos() % 1_000_000 != 0)),
            )
            .unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: `pfds` is a valid array of as many pollfd as the count passed.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let e = Error::last("poll");
            if e.errno() == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if pfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
            return Err(Error::new(Errno::EBADF, "poll"));
        }
        return Ok(pfds.iter().map(|p| p.revents != 0).collect());
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

    /// A test's eventfd number as a borrowed descriptor.
    fn borrowed(fd: Option<RawFd>) -> Option<BorrowedFd<'static>> {
        // SAFETY: the numbers come from `eventfds`, whose `OwnedFd`s each test keeps until
        // its sides are done with them.
        fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    fn channel(rings: u32, capacity: u32, wake: Wake) -> (OwnedFd, Arc<Mapping>) {
        let layout = Layout::new(rings, capacity, wake).unwrap();
        let fd = crate::memfd::create("channel-test", Default::default()).unwrap();
        crate::mmap::truncate(fd.as_fd(), layout.size() as u64).unwrap();
        let map = Arc::new(Mapping::map(fd.as_fd(), layout.size(), false).unwrap());
        init(&map, layout).unwrap();
        (fd, map)
    }

    fn put_word(map: &Mapping, offset: usize, value: u32) {
        map.word(offset, "test").unwrap().store(value, SeqCst);
    }

    #[test]
    fn messages_wrap_and_keep_order() {
        let (_fd, map) = channel(1, 64, Wake::Futex);
        let mut w = Writer::new(map.clone(), 0).unwrap();
        let mut r = Reader::new(map.clone(), 0).unwrap();
        let mut out = Vec::new();
        // Records of 24 bytes in a 64-byte ring: payloads cross the end again and again.
        for i in 0u32..1000 {
            let msg: Vec<u8> = (0..13)
                .map(|k| (i as u8).wrapping_mul(7).wrapping_add(k))
                .collect();
            assert!(w.try_send(&msg, i & 1).unwrap().is_some());
            let got = r.try_receive(&mut out).unwrap().unwrap();
            assert_eq!((out.as_slice(), got.flags), (msg.as_slice(), i & 1));
        }
        assert_eq!(r.try_receive(&mut out).unwrap(), None);
    }

    #[test]
    fn full_ring_and_sizes() {
        let (_fd, map) = channel(1, 64, Wake::Futex);
        let mut w = Writer::new(map.clone(), 0).unwrap();
        let mut r = Reader::new(map.clone(), 0).unwrap();
        assert_eq!(w.try_send(&[1; 57], 0).unwrap_err().code(), "EMSGSIZE");
        assert_eq!(w.try_send(&[1; 1], 2).unwrap_err().code(), "EINVAL");
        assert!(w.try_send(&[1; 56], 0).unwrap().is_some()); // the largest: the whole ring
        assert!(w.try_send(&[], 0).unwrap().is_none());
        assert!(w.prepare_sleep(0).unwrap());
        let mut out = Vec::new();
        // The writer said it sleeps: taking the message asks for its wake, once.
        assert!(r.try_receive(&mut out).unwrap().unwrap().wake);
        assert_eq!(out, vec![1; 56]);
        assert!(!w.prepare_sleep(56).unwrap()); // room now: no sleep
        assert!(w.try_send(&[], 0).unwrap().is_some());
        assert!(!r.try_receive(&mut out).unwrap().unwrap().wake);
        assert!(out.is_empty());
    }

    #[test]
    fn a_broken_header_is_eproto_never_out_of_bounds() {
        let (_fd, map) = channel(1, 64, Wake::Futex);
        let mut w = Writer::new(map.clone(), 0).unwrap();
        let mut r = Reader::new(map.clone(), 0).unwrap();
        let mut out = Vec::new();
        let ctl = ring_offset(0);
        // A tail beyond the capacity, a misaligned tail, a length past the ring, unknown flags.
        for (tail, len, flags) in [
            (72, 0, 0),
            (12, 0, 0),
            (16, 60, 0),
            (16, 0x7fff_ffff, 0),
            (16, 4, 8),
        ] {
            put_word(&map, DATA_OFFSET, len);
            put_word(&map, DATA_OFFSET + 4, flags);
            put_word(&map, ctl + RING_TAIL, tail);
            assert_eq!(
                r.try_receive(&mut out).unwrap_err().code(),
                "EPROTO",
                "{tail} {len} {flags}"
            );
        }
        put_word(&map, ctl + RING_TAIL, 0);
        put_word(&map, ctl + RING_HEAD, 0xffff_ff00); // 256 bytes "used" in a 64-byte ring
        assert_eq!(w.try_send(b"x", 0).unwrap_err().code(), "EPROTO");
        put_word(&map, ctl + RING_HEAD, 3);
        assert_eq!(w.prepare_sleep(1).unwrap_err().code(), "EPROTO");
        put_word(&map, OFF_CAPACITY, 4096);
        assert_eq!(check(&map).unwrap_err().code(), "EPROTO"); // the size no longer matches
    }

    #[test]
    fn sides_are_claimed_once() {
        let (_fd, map) = channel(2, 64, Wake::Eventfd);
        claim(&map, 0, 10).unwrap();
        assert_eq!(claim(&map, 0, 11).unwrap_err().code(), "EBUSY");
        claim(&map, 1, 11).unwrap();
        assert_eq!(
            (side_pid(&map, 0).unwrap(), side_pid(&map, 1).unwrap()),
            (10, 11)
        );
        assert!(!is_closed(&map, 1).unwrap());
        close_side(&map, 1).unwrap();
        assert!(is_closed(&map, 1).unwrap());
        assert_eq!(Writer::new(map.clone(), 2).unwrap_err().code(), "EINVAL");
    }

    /// Messages whose content says their number, so a reader can check each one whole.
    fn message(i: u32) -> Vec<u8> {
        let len = (i.wrapping_mul(2_654_435_761) >> 22) as usize % 300;
        let mut m = i.to_ne_bytes().to_vec();
        m.extend((0..len).map(|k| (i as usize + k) as u8));
        m
    }

    /// One side of a test channel: blocking send and receive through the protocol, sleeping
    /// whenever it must (with no timeout), counting its sleeps.
    struct Side {
        map: Arc<Mapping>,
        side: u32,
        wake: Wake,
        efds: [Option<RawFd>; 2],
        writer: Writer,
        reader: Reader,
        sleeps: u32,
    }

    impl Side {
        fn new(
            map: &Arc<Mapping>,
            side: u32,
            wake: Wake,
            efds: [Option<RawFd>; 2],
            rings: u32,
        ) -> Self {
            let (w, r) = if rings == 1 { (0, 0) } else { (side, 1 - side) };
            Self {
                map: map.clone(),
                side,
                wake,
                efds,
                writer: Writer::new(map.clone(), w).unwrap(),
                reader: Reader::new(map.clone(), r).unwrap(),
                sleeps: 0,
            }
        }

        fn peer(&self) -> u32 {
            1 - self.side
        }

        fn wake_peer(&self) {
            let peer = self.peer();
            wake_side(
                &self.map,
                peer,
                self.wake,
                borrowed(self.efds[peer as usize]),
            )
            .unwrap();
        }

        fn sleep(&mut self, seq: u32) {
            self.sleeps += 1;
            let fd = self.efds[self.side as usize];
            sleep(
                &self.map,
                self.side,
                self.wake,
                borrowed(fd),
                seq,
                None,
                None,
            )
            .unwrap();
        }

        fn send(&mut self, m: &[u8]) {
            loop {
                if let Some(sent) = self.writer.try_send(m, 0).unwrap() {
                    if sent.wake {
                        self.wake_peer();
                    }
                    return;
                }
                let seq = wake_seq(&self.map, self.side).unwrap();
                if self.writer.prepare_sleep(m.len() as u32).unwrap() {
                    self.sleep(seq);
                }
            }
        }

        fn receive(&mut self, out: &mut Vec<u8>) {
            loop {
                if let Some(got) = self.reader.try_receive(out).unwrap() {
                    if got.wake {
                        self.wake_peer();
                    }
                    return;
                }
                let seq = wake_seq(&self.map, self.side).unwrap();
                if self.reader.prepare_sleep().unwrap() {
                    self.sleep(seq);
                }
            }
        }
    }

    fn eventfds(wake: Wake) -> (Vec<OwnedFd>, [Option<RawFd>; 2]) {
        let owned: Vec<OwnedFd> = (0..2)
            .map(|_| crate::eventfd::eventfd(0, Default::default()).unwrap())
            .collect();
        let fds = match wake {
            Wake::Eventfd => [Some(owned[0].as_raw_fd()), Some(owned[1].as_raw_fd())],
            Wake::Futex => [None, None],
        };
        (owned, fds)
    }

    /// A writer thread and a reader thread through a small ring, each sleeping whenever it
    /// must (the reader for data, the writer for room), with no timeout: a lost wake-up hangs
    /// the test (the harness's timeout fails it), a torn or reordered message fails the check.
    fn stream(wake: Wake) {
        const N: u32 = 200_000;
        let (_fd, map) = channel(1, 1024, wake);
        let (_owned, efds) = eventfds(wake);
        let mut writer = Side::new(&map, 0, wake, efds, 1);
        let mut reader = Side::new(&map, 1, wake, efds, 1);
        let thread = std::thread::spawn(move || {
            for i in 0..N {
                writer.send(&message(i));
            }
            writer.sleeps
        });
        let mut out = Vec::new();
        for i in 0..N {
            reader.receive(&mut out);
            assert_eq!(out, message(i), "message {i}");
        }
        let writer_sleeps = thread.join().unwrap();
        // Both sides slept many times: the handshake was exercised, not skipped.
        assert!(
            reader.sleeps > 100 && writer_sleeps > 100,
            "{} {writer_sleeps}",
            reader.sleeps
        );
    }

    /// Two threads in ping-pong over a duplex channel: every message is followed by its
    /// sender's sleep, so each one is a chance to lose a wake-up, and one lost hangs the test.
    fn ping_pong(wake: Wake) {
        const N: u32 = 50_000;
        let (_fd, map) = channel(2, 512, wake);
        let (_owned, efds) = eventfds(wake);
        let mut a = Side::new(&map, 0, wake, efds, 2);
        let mut b = Side::new(&map, 1, wake, efds, 2);
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            for _ in 0..N {
                b.receive(&mut out);
                out.reverse();
                b.send(&out);
            }
        });
        let mut out = Vec::new();
        for i in 0..N {
            let mut m = message(i);
            a.send(&m);
            a.receive(&mut out);
            m.reverse();
            assert_eq!(out, m, "reply {i}");
        }
        thread.join().unwrap();
        assert!(a.sleeps > 100, "{}", a.sleeps);
    }

    /// Runs `f` on a thread of its own and fails if it has not finished within a minute (it
    /// takes ~1 s): a lost wake-up leaves both sides asleep for ever.
    fn within_a_minute(f: impl FnOnce() + Send + 'static) {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung: a wake-up was lost"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the stress test failed")
            }
            Ok(()) => {}
        }
    }

    #[test]
    fn stress_eventfd_wakes_are_never_lost() {
        within_a_minute(|| {
            stream(Wake::Eventfd);
            ping_pong(Wake::Eventfd);
        });
    }

    #[test]
    fn stress_futex_wakes_are_never_lost() {
        within_a_minute(|| {
            stream(Wake::Futex);
            ping_pong(Wake::Futex);
        });
    }

    fn many_writers(writers: u32, capacity: u32, wake: Wake) -> (OwnedFd, Arc<Mapping>) {
        let layout = Layout::new(1, capacity, wake)
            .unwrap()
            .with_writers(writers)
            .unwrap();
        let fd = crate::memfd::create("channel-test", Default::default()).unwrap();
        crate::mmap::truncate(fd.as_fd(), layout.size() as u64).unwrap();
        let map = Arc::new(Mapping::map(fd.as_fd(), layout.size(), false).unwrap());
        init(&map, layout).unwrap();
        (fd, map)
    }

    #[test]
    fn several_writers_layout_is_version_2_and_refuses_single_writer_use() {
        let (_fd, map) = many_writers(3, 256, Wake::Futex);
        assert_eq!(map.word(OFF_VERSION, "t").unwrap().load(SeqCst), 2);
        assert_eq!(check(&map).unwrap().writers, 3);
        assert_eq!(Writer::new(map.clone(), 0).unwrap_err().code(), "EINVAL");
        assert_eq!(claim(&map, 0, 5).unwrap_err().code(), "EINVAL");
        claim(&map, 1, 5).unwrap();
        assert_eq!(
            (0..4)
                .map(|p| join_writer(&map, 10 + p).map_err(|e| e.code()))
                .collect::<Vec<_>>(),
            vec![Ok(0), Ok(1), Ok(2), Err("EBUSY".to_string())]
        );
        leave_writer(&map, 1).unwrap();
        leave_writer(&map, 1).unwrap(); // counted once
        let w = writers(&map, false).unwrap();
        assert_eq!((w.slots, w.joined, w.done, w.died), (3, 3, 1, 0));
        // Pids 10 and 12 are no processes of ours: a scan finds them gone (ESRCH, or another
        // process may hold such a low pid only as a kernel thread that never exits).
        let w = writers(&map, true).unwrap();
        let gone = [10, 12].iter().filter(|&&p| !process_alive(p)).count() as u32;
        assert_eq!((w.done, w.died), (1 + gone, gone));
        let (_fd1, v1) = channel(1, 256, Wake::Futex);
        assert_eq!(join_writer(&v1, 5).unwrap_err().code(), "EINVAL");
        assert_eq!(SharedWriter::new(v1, 5).unwrap_err().code(), "EINVAL");
        // A version-2 header with a writer count out of range is no channel.
        map.word(OFF_WRITERS, "t").unwrap().store(1, SeqCst);
        assert_eq!(check(&map).unwrap_err().code(), "EPROTO");
        map.word(OFF_WRITERS, "t")
            .unwrap()
            .store(MAX_WRITERS + 1, SeqCst);
        assert_eq!(check(&map).unwrap_err().code(), "EPROTO");
    }

    #[test]
    fn a_lock_held_by_a_dead_writer_is_taken_over_and_its_record_never_seen() {
        let (_fd, map) = many_writers(2, 256, Wake::Futex);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // The dead writer took the lock and wrote half a record at the tail, unpublished.
        put_word(&map, ring_offset(0) + RING_LOCK, dead);
        put_word(&map, DATA_OFFSET, 100);
        put_word(&map, DATA_OFFSET + 4, 0);
        let mut w = SharedWriter::new(map.clone(), std::process::id()).unwrap();
        assert_eq!(w.try_send(b"x", 0).unwrap().result, Shared::Locked(dead));
        assert!(w.prepare_sleep(1).unwrap()); // first sight of the owner: sleep
        assert!(w.waits_for_lock());
        assert!(!w.prepare_sleep(1).unwrap()); // held one sleep later by a gone process: freed
        assert_eq!(lock_owner(&map).unwrap(), 0);
        assert_eq!(w.try_send(b"whole", 0).unwrap().result, Shared::Sent);
        let mut r = Reader::new(map.clone(), 0).unwrap();
        let mut out = Vec::new();
        r.try_receive(&mut out).unwrap().unwrap();
        assert_eq!(out, b"whole");
        assert_eq!(r.try_receive(&mut out).unwrap(), None);
        // A live owner (this process) is never taken over.
        put_word(&map, ring_offset(0) + RING_LOCK, std::process::id());
        assert!(!take_over_lock(&map, std::process::id()).unwrap());
    }

    /// A thread of this process (a Worker, in Node) that waits until told to end: its
    /// [`lock_id`], the sender that tells it, and its handle.
    fn parked_thread() -> (
        u32,
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<()>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tx.send(lock_id()).unwrap();
            go_rx.recv().unwrap();
        });
        (rx.recv().unwrap(), go_tx, thread)
    }

    #[test]
    fn a_lock_left_by_a_thread_that_ended_in_a_living_process_is_taken_over() {
        let (_fd, map) = many_writers(2, 256, Wake::Futex);
        // A thread of this process (a Worker, in Node) takes the lock and ends holding it.
        let (tid, go_tx, thread) = parked_thread();
        assert_ne!(tid, std::process::id());
        put_word(&map, ring_offset(0) + RING_LOCK, tid);
        // Still running: never taken over.
        assert!(thread_alive(tid));
        assert!(!take_over_lock(&map, tid).unwrap());
        assert_eq!(lock_owner(&map).unwrap(), tid);
        go_tx.send(()).unwrap();
        thread.join().unwrap();
        // Gone while the process lives on: freed (by its pid it would look alive forever).
        assert!(!thread_alive(tid));
        assert!(take_over_lock(&map, tid).unwrap());
        assert_eq!(lock_owner(&map).unwrap(), 0);
        let mut w = SharedWriter::new(map.clone(), lock_id()).unwrap();
        assert_eq!(w.try_send(b"after", 0).unwrap().result, Shared::Sent);
        // This thread and the process's first thread are alive.
        assert!(thread_alive(lock_id()));
        assert!(thread_alive(std::process::id()));
    }

    #[test]
    fn a_thread_peer_is_watched_by_its_own_pidfd_or_looked_at_and_its_slot_dies_with_it() {
        let (_fd, map) = many_writers(2, 256, Wake::Futex);
        let (tid, go_tx, thread) = parked_thread();
        // A Worker joins as a writer with its thread's id.
        assert_eq!(join_writer(&map, tid).unwrap(), 0);
        assert_eq!(writers(&map, true).unwrap().died, 0);
        // This process's first thread: a pidfd of the process.
        let me = peer_watch(std::process::id(), true).unwrap();
        assert!(me.fd.is_some() && !me.thread);
        // Another thread: a pidfd of that thread alone (Linux 6.9 and later), or none (then the
        // caller looks at it now and then); either way known to be a thread.
        let watched = peer_watch(tid, true).unwrap();
        assert!(watched.thread);
        let looked = peer_watch(tid, false).unwrap();
        assert!(looked.fd.is_none() && looked.thread);
        if let Some(fd) = &watched.fd {
            assert!(!poll_in(&[fd.as_fd()], || Some(Duration::ZERO)).unwrap()[0]);
        }
        go_tx.send(()).unwrap();
        thread.join().unwrap();
        // Its pidfd is readable once it ended, while the process lives on.
        if let Some(fd) = &watched.fd {
            let ready = poll_in(&[fd.as_fd()], || Some(Duration::from_secs(10))).unwrap();
            assert!(ready[0]);
        }
        // Its id goes once the kernel has released the thread, a moment after join() returned
        // (the joiner is woken while the thread is still on its way out).
        let gone = (0..1000).any(|_| {
            let r = peer_watch(tid, true);
            let gone = matches!(&r, Err(e) if e.code() == "ESRCH");
            if !gone {
                std::thread::sleep(Duration::from_millis(10));
            }
            gone
        });
        assert!(gone, "thread {tid} still there 10 s after it ended");
        assert_eq!(peer_watch(0, true).unwrap_err().code(), "ESRCH");
        assert_eq!(peer_watch(u32::MAX, true).unwrap_err().code(), "ESRCH");
        // The reader's scan marks its slot died (by the pid it would look alive for ever).
        let w = writers(&map, true).unwrap();
        assert_eq!((w.joined, w.done, w.died), (1, 1, 1));
    }

    /// Writer threads, each with its own lock pid, through a small ring into one reader; each
    /// sleeps whenever it must (for the lock or for room), the reader for data. Every message
    /// arrives once, each writer's in its order; a lost wake-up hangs (the harness fails it).
    fn fan_in(wake: Wake) {
        const WRITERS: u32 = 4;
        const N: u32 = 30_000;
        let (_fd, map) = many_writers(WRITERS, 512, wake);
        let (_owned, efds) = eventfds(wake);
        let mut threads = Vec::new();
        for w in 0..WRITERS {
            let map = map.clone();
            threads.push(std::thread::spawn(move || {
                // Threads of one process lock with its pid: an owner that is this process is
                // alive, never taken over.
                let me = std::process::id();
                let mut writer = SharedWriter::new(map.clone(), me).unwrap();
                let mut sleeps = 0u32;
                for i in 0..N {
                    let mut m = w.to_ne_bytes().to_vec();
                    m.extend(message(i));
                    loop {
                        let sent = writer.try_send(&m, 0).unwrap();
                        if sent.wake_writers {
                            wake_side(&map, 0, Wake::Futex, None).unwrap();
                        }
                        if sent.wake_reader {
                            wake_side(&map, 1, wake, borrowed(efds[1])).unwrap();
                        }
                        if sent.result == Shared::Sent {
                            break;
                        }
                        let seq = wake_seq(&map, 0).unwrap();
                        if writer.prepare_sleep(m.len() as u32).unwrap() {
                            sleeps += 1;
                            let slice = Some(Duration::from_millis(50));
                            sleep(&map, 0, Wake::Futex, None, seq, None, slice).unwrap();
                        }
                    }
                }
                sleeps
            }));
        }
        let mut reader = Reader::new(map.clone(), 0).unwrap();
        let mut next = [0u32; WRITERS as usize];
        let mut out = Vec::new();
        for _ in 0..WRITERS * N {
            loop {
                if let Some(got) = reader.try_receive(&mut out).unwrap() {
                    if got.wake {
                        wake_side(&map, 0, Wake::Futex, None).unwrap();
                    }
                    break;
                }
                let seq = wake_seq(&map, 1).unwrap();
                if reader.prepare_sleep().unwrap() {
                    let fd = borrowed(efds[1]);
                    sleep(&map, 1, wake, fd, seq, None, None).unwrap();
                }
            }
            let w = u32::from_ne_bytes([out[0], out[1], out[2], out[3]]) as usize;
            assert_eq!(&out[4..], message(next[w]).as_slice(), "writer {w}");
            next[w] += 1;
        }
        let sleeps: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(next, [N; WRITERS as usize]);
        assert_eq!(reader.try_receive(&mut out).unwrap(), None);
        assert!(sleeps > 100, "{sleeps}");
    }

    #[test]
    fn stress_several_writers_eventfd_reader() {
        within_a_minute(|| fan_in(Wake::Eventfd));
    }

    #[test]
    fn stress_several_writers_futex_reader() {
        within_a_minute(|| fan_in(Wake::Futex));
    }

    #[test]
    fn sleep_ends_when_the_peer_exits_or_times_out() {
        let (_fd, map) = channel(1, 64, Wake::Eventfd);
        let efd = crate::eventfd::eventfd(0, Default::default()).unwrap();
        let t0 = Instant::now();
        let slept = sleep(
            &map,
            1,
            Wake::Eventfd,
            Some(efd.as_fd()),
            0,
            None,
            Some(Duration::from_millis(30)),
        );
        assert_eq!(slept.unwrap(), Slept::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pidfd = crate::pidfd::open(child.id() as i32).unwrap();
        let slept = sleep(
            &map,
            1,
            Wake::Eventfd,
            Some(efd.as_fd()),
            0,
            Some(pidfd.as_fd()),
            None,
        );
        assert_eq!(slept.unwrap(), Slept::PeerExited);
        let fmap = channel(1, 64, Wake::Futex).1;
        let slept = sleep(&fmap, 1, Wake::Futex, None, 0, Some(pidfd.as_fd()), None);
        assert_eq!(slept.unwrap(), Slept::PeerExited);
        child.wait().unwrap();
        crate::eventfd::write(efd.as_fd(), 1).unwrap();
        let slept = sleep(&map, 1, Wake::Eventfd, Some(efd.as_fd()), 0, None, None);
        assert_eq!(slept.unwrap(), Slept::Woken);
        assert_eq!(crate::eventfd::read(efd.as_fd()).unwrap(), None); // the wake was taken
    }
}
