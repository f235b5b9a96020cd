//! Message channels for JavaScript: value conversion over [`ipckit::channel`].
//!
//! A channel's memory is the one mapping object of `shm.rs` ([`ShmMapping`], from a memfd or a
//! POSIX shared memory object). Where the runtime accepts external buffers the TypeScript layer
//! runs the ring protocol itself over a zero-copy view, and calls here only to set a channel
//! up, claim and close sides, wake a side and sleep; where it does not (Electron), every
//! message goes through a [`ChannelRing`] of the core, which copies.

use std::sync::Arc;

use ipckit::channel::{self, Layout, Reader, Shared, SharedWriter, Slept, Wake, Writer};
use ipckit::mmap::Mapping;
use ipckit::Errno;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::shm::ShmMapping;

fn mapping<'a>(env: &Env, m: &'a ShmMapping) -> Result<&'a Arc<Mapping>> {
    m.shared()
        .ok_or_else(|| crate::error::sys_error(env, ipckit::Error::new(Errno::EBADF, "channel")))
}

fn wake_of(futex: bool) -> Wake {
    if futex {
        Wake::Futex
    } else {
        Wake::Eventfd
    }
}

/// A channel's shape, as its header says.
#[napi(object)]
pub struct ChannelLayoutJs {
    pub rings: u32,
    pub capacity: u32,
    pub futex: bool,
    pub data_offset: u32,
    pub size: f64,
    /// 1, or how many writers a channel with several writers takes.
    pub writers: u32,
}

impl From<Layout> for ChannelLayoutJs {
    fn from(l: Layout) -> Self {
        Self {
            rings: l.rings,
            capacity: l.capacity,
            futex: l.wake == Wake::Futex,
            data_offset: channel::DATA_OFFSET as u32,
            size: l.size() as f64,
            writers: l.writers,
        }
    }
}

/// The size of a channel's file: `EINVAL` for a shape the layout does not allow.
#[napi]
pub fn channel_size(env: &Env, rings: u32, capacity: u32) -> Result<f64> {
    Layout::new(rings, capacity, Wake::Eventfd)
        .map(|l| l.size() as f64)
        .or_throw(env)
}

/// Writes the header of a new channel into a zeroed mapping of exactly its size.
#[napi]
pub fn channel_init(
    env: &Env,
    mapping: &ShmMapping,
    rings: u32,
    capacity: u32,
    futex: bool,
    writers: u32,
) -> Result<ChannelLayoutJs> {
    let layout = Layout::new(rings, capacity, wake_of(futex))
        .and_then(|l| l.with_writers(writers))
        .or_throw(env)?;
    channel::init(self::mapping(env, mapping)?, layout).or_throw(env)?;
    Ok(layout.into())
}

/// Checks a mapping's header: its layout, or `EPROTO`.
#[napi]
pub fn channel_check(env: &Env, mapping: &ShmMapping) -> Result<ChannelLayoutJs> {
    channel::check(self::mapping(env, mapping)?)
        .map(Into::into)
        .or_throw(env)
}

/// Claims side `side` for `pid` (`EBUSY` if taken).
#[napi]
pub fn channel_claim(env: &Env, mapping: &ShmMapping, side: u32, pid: u32) -> Result<()> {
    channel::claim(self::mapping(env, mapping)?, side, pid).or_throw(env)
}

/// Joins a channel with several writers as a writer: its slot (`EBUSY` when all are taken).
#[napi]
pub fn channel_join_writer(env: &Env, mapping: &ShmMapping, pid: u32) -> Result<u32> {
    channel::join_writer(self::mapping(env, mapping)?, pid).or_throw(env)
}

/// The writer of `slot` closes its end.
#[napi]
pub fn channel_leave_writer(env: &Env, mapping: &ShmMapping, slot: u32) -> Result<()> {
    channel::leave_writer(self::mapping(env, mapping)?, slot).or_throw(env)
}

/// The writers of a channel with several writers.
#[napi(object)]
pub struct ChannelWritersJs {
    pub slots: u32,
    pub joined: u32,
    pub done: u32,
    pub died: u32,
}

/// The writers' counts, after marking gone processes as died when `scan`.
#[napi]
pub fn channel_writers(env: &Env, mapping: &ShmMapping, scan: bool) -> Result<ChannelWritersJs> {
    let w = channel::writers(self::mapping(env, mapping)?, scan).or_throw(env)?;
    Ok(ChannelWritersJs {
        slots: w.slots,
        joined: w.joined,
        done: w.done,
        died: w.died,
    })
}

/// The calling thread's lock id (`gettid`): what it stores in the lock word of a ring with
/// several writers.
#[napi]
pub fn channel_lock_id() -> u32 {
    channel::lock_id()
}

/// Frees the ring's lock if `owner` holds it and is gone: whether to try again.
#[napi]
pub fn channel_take_over_lock(env: &Env, mapping: &ShmMapping, owner: u32) -> Result<bool> {
    channel::take_over_lock(self::mapping(env, mapping)?, owner).or_throw(env)
}

/// What to watch for the end of a peer.
#[napi(object)]
pub struct ChannelPeerWatch {
    /// A pidfd the caller owns, -1 when none can be had (look at [`channel_thread_alive`] now
    /// and then instead).
    pub fd: i32,
    /// Whether the peer is a thread that does not lead its process (a Worker's).
    pub thread: bool,
}

/// What to watch for the end of the peer whose id a side or slot holds; throws `ESRCH` when
/// it is gone. `thread_pidfd: false` leaves out the pidfds of Linux 6.9's `PIDFD_THREAD` (to
/// test the path of older kernels).
#[napi]
pub fn channel_peer_watch(env: &Env, id: u32, thread_pidfd: bool) -> Result<ChannelPeerWatch> {
    let w = channel::peer_watch(id, thread_pidfd).or_throw(env)?;
    Ok(ChannelPeerWatch {
        fd: w.fd.map_or(-1, std::os::fd::IntoRawFd::into_raw_fd),
        thread: w.thread,
    })
}

/// Whether the thread whose lock id is `id` still runs.
#[napi]
pub fn channel_thread_alive(id: u32) -> bool {
    channel::thread_alive(id)
}

/// The id (a thread's lock id) that claimed `side`, 0 while unclaimed.
#[napi]
pub fn channel_side_pid(env: &Env, mapping: &ShmMapping, side: u32) -> Result<u32> {
    channel::side_pid(self::mapping(env, mapping)?, side).or_throw(env)
}

/// Marks `side` closed.
#[napi]
pub fn channel_close_side(env: &Env, mapping: &ShmMapping, side: u32) -> Result<()> {
    channel::close_side(self::mapping(env, mapping)?, side).or_throw(env)
}

/// Whether `side` closed the channel.
#[napi]
pub fn channel_is_closed(env: &Env, mapping: &ShmMapping, side: u32) -> Result<bool> {
    channel::is_closed(self::mapping(env, mapping)?, side).or_throw(env)
}

/// `side`'s futex word now (to load before announcing a sleep).
#[napi]
pub fn channel_wake_seq(env: &Env, mapping: &ShmMapping, side: u32) -> Result<u32> {
    channel::wake_seq(self::mapping(env, mapping)?, side).or_throw(env)
}

/// The byte offset of `side`'s futex word (for futex waits through the mapping).
#[napi]
pub fn channel_wake_seq_offset(side: u32) -> u32 {
    channel::wake_seq_offset(side) as u32
}

/// Wakes `side`: 1 into its eventfd, or a bump and `FUTEX_WAKE` of its futex word.
#[napi]
pub fn channel_wake(
    env: &Env,
    mapping: &ShmMapping,
    side: u32,
    futex: bool,
    eventfd: Option<i32>,
) -> Result<()> {
    let map = self::mapping(env, mapping)?;
    with_optional_fd(eventfd, |efd| {
        channel::wake_side(map, side, wake_of(futex), efd)
    })
    .or_throw(env)
}

/// [`crate::uv::with_fd`] for a descriptor number JavaScript may leave out.
fn with_optional_fd<T>(
    fd: Option<i32>,
    f: impl FnOnce(Option<std::os::fd::BorrowedFd<'_>>) -> ipckit::Result<T>,
) -> ipckit::Result<T> {
    match fd {
        Some(fd) => crate::uv::with_fd(fd, |fd| f(Some(fd))),
        None => f(None),
    }
}

/// Blocks this thread until `side` is woken (0), the peer's process exits (1) or
/// `timeout_ms` passes (2); for the `...Sync` forms.
#[allow(clippy::too_many_arguments)]
#[napi]
pub fn channel_sleep_sync(
    env: &Env,
    mapping: &ShmMapping,
    side: u32,
    futex: bool,
    eventfd: Option<i32>,
    seq: u32,
    peer: Option<i32>,
    timeout_ms: Option<f64>,
) -> Result<u32> {
    let timeout =
        timeout_ms.and_then(|ms| std::time::Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).ok());
    let map = self::mapping(env, mapping)?;
    let slept = with_optional_fd(eventfd, |efd| {
        with_optional_fd(peer, |peer| {
            channel::sleep(map, side, wake_of(futex), efd, seq, peer, timeout)
        })
    })
    .or_throw(env)?;
    Ok(match slept {
        Slept::Woken => 0,
        Slept::PeerExited => 1,
        Slept::TimedOut => 2,
    })
}

/// A message the copying path took: its bytes, flags, and whether to wake the writer.
#[napi(object)]
pub struct ChannelReceived {
    pub data: Buffer,
    pub flags: u32,
    pub wake: bool,
}

/// One end of one ring, through the core's copies: the path of runtimes that refuse external
/// buffers (Electron).
#[napi]
pub struct ChannelRing {
    writer: Option<Writer>,
    shared: Option<SharedWriter>,
    reader: Option<Reader>,
    map: Arc<Mapping>,
    scratch: Vec<u8>,
}

#[napi]
impl ChannelRing {
    /// The writing (`writer`) or reading end of ring `ring`; of a channel with several
    /// writers, a writer locking with `pid`.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        mapping: &ShmMapping,
        ring: u32,
        writer: bool,
        pid: Option<u32>,
    ) -> Result<Self> {
        let map = self::mapping(&env, mapping)?.clone();
        let mut this = Self {
            writer: None,
            shared: None,
            reader: None,
            map: map.clone(),
            scratch: Vec::new(),
        };
        match (writer, pid) {
            (true, Some(pid)) => this.shared = Some(SharedWriter::new(map, pid).or_throw(&env)?),
            (true, None) => this.writer = Some(Writer::new(map, ring).or_throw(&env)?),
            (false, _) => this.reader = Some(Reader::new(map, ring).or_throw(&env)?),
        }
        Ok(this)
    }

    fn writer(&mut self, env: &Env) -> Result<&mut Writer> {
        self.writer.as_mut().ok_or_else(|| {
            crate::error::sys_error(env, ipckit::Error::new(Errno::EBADF, "channel"))
        })
    }

    fn reader(&mut self, env: &Env) -> Result<&mut Reader> {
        self.reader.as_mut().ok_or_else(|| {
            crate::error::sys_error(env, ipckit::Error::new(Errno::EBADF, "channel"))
        })
    }

    /// Writes one message: -1 no room yet (or, several writers, another one writes), 0
    /// written, 1 written and the reader must be woken. Wakes waiting writers itself.
    #[napi]
    pub fn try_send(&mut self, env: Env, data: &[u8], flags: u32) -> Result<i32> {
        if let Some(w) = self.shared.as_mut() {
            let sent = w.try_send(data, flags).or_throw(&env)?;
            if sent.wake_writers {
                channel::wake_side(&self.map, 0, Wake::Futex, None).or_throw(&env)?;
            }
            return Ok(match sent.result {
                Shared::Sent => i32::from(sent.wake_reader),
                Shared::Full | Shared::Locked(_) => -1,
            });
        }
        Ok(
            match self.writer(&env)?.try_send(data, flags).or_throw(&env)? {
                None => -1,
                Some(s) => i32::from(s.wake),
            },
        )
    }

    /// Takes one message, or null if the ring is empty.
    #[napi]
    pub fn try_receive(&mut self, env: Env) -> Result<Option<ChannelReceived>> {
        let mut out = std::mem::take(&mut self.scratch);
        let got = self.reader(&env)?.try_receive(&mut out).or_throw(&env);
        let result = match got {
            Ok(Some(r)) => Ok(Some(ChannelReceived {
                data: Buffer::from(out.clone()),
                flags: r.flags,
                wake: r.wake,
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.scratch = out;
        result
    }

    /// Announces a sleep (for room for `length` bytes, or for data) and re-checks: whether to
    /// sleep now.
    #[napi]
    pub fn prepare_sleep(&mut self, env: Env, length: u32) -> Result<bool> {
        if let Some(w) = self.shared.as_mut() {
            return w.prepare_sleep(length).or_throw(&env);
        }
        if let Some(w) = self.writer.as_ref() {
            return w.prepare_sleep(length).or_throw(&env);
        }
        self.reader(&env)?.prepare_sleep().or_throw(&env)
    }

    /// Whether the last `prepare_sleep` of a writer of several found the ring's lock held.
    #[napi(getter)]
    pub fn waits_for_lock(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(SharedWriter::waits_for_lock)
    }
}
