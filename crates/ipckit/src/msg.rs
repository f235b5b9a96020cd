//! System V message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.
//!
//! A [`MessageQueue`] is a handle on a kernel queue identified by its id; the queue lives until
//! [`MessageQueue::remove`] (IPC_RMID), whatever happens to the processes using it.
//!
//! ```
//! use ipckit::msg::{MessageQueue, OpenOptions, ReceiveFlags, HEADER};
//!
//! let q = MessageQueue::open(ipckit::IPC_PRIVATE, OpenOptions::default()).unwrap();
//! q.send(2, b"hello", false).unwrap();
//! let mut buf = vec![0u8; HEADER + 64];
//! let got = q.receive(&mut buf, 0, ReceiveFlags::default()).unwrap();
//! assert_eq!((got.mtype, &buf[HEADER..HEADER + got.len]), (2, &b"hello"[..]));
//! q.remove().unwrap();
//! ```

use std::cell::RefCell;
use std::mem::{size_of, MaybeUninit};
use std::time::Instant;

use crate::error::{check, Errno, Error, Result};
use crate::key::Key;
use crate::perm::Perm;
use crate::sys::libc;
use crate::wait::{Lines, Operation, Served, Ticket};

/// Size of the `long mtype` that precedes the payload in a `struct msgbuf`.
pub const HEADER: usize = size_of::<libc::c_long>();

/// How [`MessageQueue::open`] finds or creates the queue.
///
/// ```
/// let opts = ipckit::msg::OpenOptions { create: true, ..Default::default() };
/// assert_eq!(opts.mode, 0o600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the queue if the key has none (`IPC_CREAT`).
    pub create: bool,
    /// Fail with `EEXIST` if the key already has a queue (`IPC_CREAT | IPC_EXCL`).
    pub exclusive: bool,
    /// Permission bits of a created queue.
    pub mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: false,
            exclusive: false,
            mode: 0o600,
        }
    }
}

impl OpenOptions {
    fn flags(&self) -> libc::c_int {
        let mut flags = (self.mode & 0o777) as libc::c_int;
        if self.create || self.exclusive {
            flags |= libc::IPC_CREAT;
        }
        if self.exclusive {
            flags |= libc::IPC_EXCL;
        }
        flags
    }
}

/// Options of [`MessageQueue::receive`].
///
/// ```
/// let f = ipckit::msg::ReceiveFlags { nowait: true, ..Default::default() };
/// assert!(!f.truncate);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiveFlags {
    /// Fail with `ENOMSG` instead of waiting (`IPC_NOWAIT`).
    pub nowait: bool,
    /// With a positive type, take the first message of any *other* type (`MSG_EXCEPT`, Linux).
    /// Elsewhere (macOS) a receive with it fails with `EINVAL` (syscall `msgrcv`).
    pub except: bool,
    /// Cut a message longer than the buffer instead of failing with `E2BIG` (`MSG_NOERROR`).
    pub truncate: bool,
}

impl ReceiveFlags {
    fn bits(&self) -> Result<libc::c_int> {
        let mut flags = 0;
        if self.nowait {
            flags |= libc::IPC_NOWAIT;
        }
        if self.truncate {
            flags |= libc::MSG_NOERROR;
        }
        if self.except {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                flags |= libc::MSG_EXCEPT;
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            return Err(Error::new(Errno::EINVAL, "msgrcv"));
        }
        Ok(flags)
    }
}

/// What [`MessageQueue::receive`] took: the message type and the payload length written
/// after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The message's type (`mtype`), always >= 1.
    pub mtype: i64,
    /// Payload bytes written at `buf[HEADER..HEADER + len]`.
    pub len: usize,
}

/// A queue's state, from `msgctl(IPC_STAT)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgStat {
    /// The key, owner, creator and permission bits (`struct ipc_perm`).
    pub perm: Perm,
    /// Messages in the queue (`msg_qnum`).
    pub messages: u64,
    /// Payload bytes in the queue (`__msg_cbytes`).
    pub bytes: u64,
    /// Capacity of the queue in payload bytes (`msg_qbytes`).
    pub max_bytes: u64,
    /// Process id of the last `msgsnd` (`msg_lspid`), 0 if none.
    pub last_send_pid: i32,
    /// Id of the last `msgrcv` (`msg_lrpid`), 0 if none: the receiving process's id, except
    /// when the message went straight to a receiver already blocked in `msgrcv` (a "pipelined"
    /// send): Linux then records that receiver's *thread* id. A receive that waits on a
    /// thread other than the main one (a wait thread, see [`crate::wait`]) thus shows here
    /// as a thread id, listed under `/proc/<pid>/task/`.
    pub last_receive_pid: i32,
    /// Seconds since the epoch of the last `msgsnd`, 0 if none.
    pub last_send_time: i64,
    /// Seconds since the epoch of the last `msgrcv`, 0 if none.
    pub last_receive_time: i64,
    /// Seconds since the epoch of the last change (creation or IPC_SET).
    pub change_time: i64,
}

/// Changes for [`MessageQueue::update`] (`msgctl(IPC_SET)`); `None` keeps the current value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgUpdate {
    /// New capacity in bytes (raising it above `msgmnb` needs CAP_SYS_RESOURCE).
    pub max_bytes: Option<u64>,
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner user id.
    pub uid: Option<u32>,
    /// New owner group id.
    pub gid: Option<u32>,
}

/// Builds a `struct msgbuf` (type header, then payload) for [`MessageQueue::send_encoded`].
///
/// ```
/// let buf = ipckit::msg::encode(3, b"ab");
/// assert_eq!(buf.len(), ipckit::msg::HEADER + 2);
/// ```
pub fn encode(mtype: i64, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER + data.len());
    buf.extend_from_slice(&(mtype as libc::c_long).to_ne_bytes());
    buf.extend_from_slice(data);
    buf
}

/// A handle on a System V message queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageQueue {
    id: i32,
}

impl MessageQueue {
    /// Finds or creates the queue of `key` (`msgget`). [`IPC_PRIVATE`](crate::IPC_PRIVATE)
    /// always creates a new queue.
    ///
    /// Errors: `ENOENT` (no queue and no `create`), `EEXIST` (`exclusive` and one exists),
    /// `EACCES`, `ENOSPC` (too many queues).
    ///
    /// For more information, see [`msgget(2)`](https://man7.org/linux/man-pages/man2/msgget.2.html).
    #[doc(alias = "msgget")]
    pub fn open(key: Key, options: OpenOptions) -> Result<Self> {
        // SAFETY: msgget takes no pointers.
        let id = check(unsafe { libc::msgget(key, options.flags()) }, "msgget")?;
        Ok(Self { id })
    }

    /// A handle on the queue with identifier `id`, as `ipcs` shows it. No system call is made;
    /// use [`stat`](Self::stat) to check that it exists.
    pub const fn from_id(id: i32) -> Self {
        Self { id }
    }

    /// The queue identifier.
    pub const fn id(&self) -> i32 {
        self.id
    }

    /// Sends a message of type `mtype` (>= 1) (`msgsnd`). With `nowait`, a full queue fails
    /// with `EAGAIN` instead of blocking; a blocking send is retried after `EINTR`.
    ///
    /// For more information, see [`msgsnd(2)`](https://man7.org/linux/man-pages/man2/msgsnd.2.html).
    #[doc(alias = "msgsnd")]
    pub fn send(&self, mtype: i64, data: &[u8], nowait: bool) -> Result<()> {
        thread_local! {
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            buf.clear();
            buf.extend_from_slice(&(mtype as libc::c_long).to_ne_bytes());
            buf.extend_from_slice(data);
            self.send_encoded(&buf, nowait)
        })
    }

    /// Sends a message built by [`encode`] (`msgsnd`). With `nowait`, a full queue fails with
    /// `EAGAIN`; a blocking send is retried after `EINTR` (through
    /// [`retry_eintr`](crate::interrupt::retry_eintr), so a stopping host still ends it).
    pub fn send_encoded(&self, msgbuf: &[u8], nowait: bool) -> Result<()> {
        if nowait {
            self.send_encoded_once(msgbuf, true)
        } else {
            crate::interrupt::retry_eintr(|| self.send_encoded_once(msgbuf, false))
        }
    }

    /// One `msgsnd` of a message built by [`encode`]: `EINTR` is returned, not retried, so
    /// that a cancellable waiter can look at its flag.
    fn send_encoded_once(&self, msgbuf: &[u8], nowait: bool) -> Result<()> {
        if msgbuf.len() < HEADER {
            return Err(Error::new(Errno::EINVAL, "msgsnd"));
        }
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        // SAFETY: `msgbuf` holds a c_long type followed by `len - HEADER` payload bytes, and
        // msgsnd reads exactly that many bytes from it.
        let rc = unsafe {
            libc::msgsnd(
                self.id,
                msgbuf.as_ptr().cast(),
                msgbuf.len() - HEADER,
                flags,
            )
        };
        check(rc, "msgsnd").map(drop)
    }

    /// Takes one message (`msgrcv`) into `buf`, which holds the type header and then up to
    /// `buf.len() - HEADER` payload bytes.
    ///
    /// `mtype`: 0 takes the first message; > 0 the first of that type (or, with
    /// `flags.except`, of any other type); < 0 the first of the lowest type <= `|mtype|`.
    /// A message longer than the buffer stays in the queue and fails with `E2BIG`, unless
    /// `flags.truncate`. An empty queue fails with `ENOMSG` under `flags.nowait`, blocks
    /// otherwise (retried after `EINTR`, through
    /// [`retry_eintr`](crate::interrupt::retry_eintr)); a removed queue fails with `EIDRM`.
    ///
    /// For more information, see [`msgrcv(2)`](https://man7.org/linux/man-pages/man2/msgrcv.2.html).
    #[doc(alias = "msgrcv")]
    pub fn receive(&self, buf: &mut [u8], mtype: i64, flags: ReceiveFlags) -> Result<Received> {
        if flags.nowait {
            self.receive_once(buf, mtype, flags)
        } else {
            crate::interrupt::retry_eintr(|| self.receive_once(buf, mtype, flags))
        }
    }

    /// One `msgrcv` (see [`receive`](Self::receive)): `EINTR` is returned, not retried, so
    /// that a cancellable waiter can look at its flag.
    #[allow(clippy::unnecessary_cast)] // c_long is i64 on 64-bit targets only
    fn receive_once(&self, buf: &mut [u8], mtype: i64, flags: ReceiveFlags) -> Result<Received> {
        if buf.len() < HEADER {
            return Err(Error::new(Errno::EINVAL, "msgrcv"));
        }
        let bits = flags.bits()?;
        // SAFETY: `buf` is writable for `buf.len()` bytes; msgrcv writes the c_long type and
        // at most `buf.len() - HEADER` payload bytes after it.
        let n = unsafe {
            libc::msgrcv(
                self.id,
                buf.as_mut_ptr().cast(),
                buf.len() - HEADER,
                mtype as libc::c_long,
                bits,
            )
        };
        let len = check(n, "msgrcv")? as usize;
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&buf[..HEADER]);
        Ok(Received {
            mtype: libc::c_long::from_ne_bytes(header) as i64,
            len,
        })
    }

    /// Waits for a message on one of this crate's threads and hands it to `deliver`, as
    /// `(type, payload)`: the asynchronous receive. Waits of this process for the same queue
    /// and options stand in one [`Line`](crate::wait::Line) and are served in order by one
    /// thread (see [`crate::wait`]); the returned [`Ticket`] cancels this one (a cancelled
    /// wait takes nothing). Fails at once with `EAGAIN` when a thread is needed and the system
    /// refuses one.
    ///
    /// `max_size` bounds the payload; `None` means the system's `msgmax`, read when the line
    /// starts and read again if a larger message shows up (an administrator raised it), so
    /// that a message is never cut or refused for want of room. The receive buffer is sized
    /// by what arrives, not by `max_size`: it starts at the smaller of `max_size` and `msgmax`
    /// and grows (a message too large for it stays in the queue meanwhile) up to `max_size`;
    /// memory the system refuses is `ENOMEM`, never an abort.
    ///
    /// ```
    /// use ipckit::msg::{MessageQueue, OpenOptions, ReceiveFlags};
    /// let q = MessageQueue::open(ipckit::IPC_PRIVATE, OpenOptions::default())?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// q.receive_later(0, ReceiveFlags::default(), None, move |r| tx.send(r).unwrap())?;
    /// q.send(3, b"hi", false)?;
    /// assert_eq!(rx.recv().unwrap()?, (3, b"hi".to_vec()));
    /// q.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn receive_later(
        &self,
        mtype: i64,
        flags: ReceiveFlags,
        max_size: Option<usize>,
        deliver: impl FnOnce(Result<(i64, Vec<u8>)>) + Send + 'static,
    ) -> Result<Ticket> {
        static LINES: Lines<(i32, i64, bool, bool, Option<usize>), LineReceive> = Lines::new();
        let flags = ReceiveFlags {
            nowait: false,
            ..flags
        };
        let queue = *self;
        LINES.submit(
            (self.id, mtype, flags.except, flags.truncate, max_size),
            move || LineReceive {
                queue,
                mtype,
                flags,
                max_size,
                buf: Vec::new(),
            },
            "msgrcv",
            (),
            None,
            deliver,
        )
    }

    /// Sends the message `msgbuf` (an [`encode`]d type and payload) on one of this crate's
    /// threads, waiting while the queue is full, and tells `deliver`: the asynchronous send
    /// of a full queue. Sends of this process to one queue stand in one line, so they reach
    /// the queue in the order they were made. Cancelling with the [`Ticket`] sends nothing
    /// (unless the send completed first). `EAGAIN` at once when no thread can be had.
    ///
    /// ```
    /// use ipckit::msg::{encode, MessageQueue, OpenOptions};
    /// let q = MessageQueue::open(ipckit::IPC_PRIVATE, OpenOptions::default())?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// q.send_later(encode(1, b"x"), move |r| tx.send(r).unwrap())?;
    /// rx.recv().unwrap()?;
    /// assert_eq!(q.stat()?.messages, 1);
    /// q.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn send_later(
        &self,
        msgbuf: Vec<u8>,
        deliver: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<Ticket> {
        static LINES: Lines<i32, LineSend> = Lines::new();
        let queue = *self;
        LINES.submit(
            self.id,
            move || LineSend { queue },
            "msgsnd",
            msgbuf,
            None,
            deliver,
        )
    }

    /// The queue's state (`msgctl(IPC_STAT)`).
    ///
    /// For more information, see [`msgctl(2)`](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    #[doc(alias = "msgctl")]
    // The field types of msqid_ds differ between C libraries; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(&self) -> Result<MsgStat> {
        let ds = self.raw_stat()?;
        Ok(MsgStat {
            perm: Perm::of(&ds.msg_perm),
            messages: ds.msg_qnum as u64,
            bytes: message_bytes(&ds),
            max_bytes: ds.msg_qbytes as u64,
            last_send_pid: ds.msg_lspid,
            last_receive_pid: ds.msg_lrpid,
            last_send_time: ds.msg_stime as i64,
            last_receive_time: ds.msg_rtime as i64,
            change_time: ds.msg_ctime as i64,
        })
    }

    fn raw_stat(&self) -> Result<libc::msqid_ds> {
        let mut ds = MaybeUninit::<libc::msqid_ds>::uninit();
        // SAFETY: IPC_STAT fills the whole msqid_ds that `ds` points to.
        let rc = unsafe { libc::msgctl(self.id, libc::IPC_STAT, ds.as_mut_ptr()) };
        check(rc, "msgctl")?;
        // SAFETY: msgctl succeeded, so the kernel initialised `ds`.
        Ok(unsafe { ds.assume_init() })
    }

    /// Changes owner, mode or capacity (`msgctl(IPC_SET)`), keeping what `update` leaves out.
    pub fn update(&self, update: MsgUpdate) -> Result<()> {
        let mut ds = self.raw_stat()?;
        if let Some(max_bytes) = update.max_bytes {
            ds.msg_qbytes = max_bytes as _;
        }
        crate::perm::set_owner(&mut ds.msg_perm, update.mode, update.uid, update.gid);
        // SAFETY: `ds` is a valid msqid_ds; IPC_SET reads it.
        let rc = unsafe { libc::msgctl(self.id, libc::IPC_SET, &mut ds) };
        check(rc, "msgctl").map(drop)
    }

    /// Removes the queue (`msgctl(IPC_RMID)`): waiting senders and receivers fail with
    /// `EIDRM`, and the messages in it are gone.
    pub fn remove(&self) -> Result<()> {
        // SAFETY: IPC_RMID ignores the buffer argument.
        let rc = unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        check(rc, "msgctl").map(drop)
    }
}

#[cfg(target_os = "linux")]
#[allow(clippy::unnecessary_cast)] // u64 on glibc, c_ulong on musl
fn message_bytes(ds: &libc::msqid_ds) -> u64 {
    ds.__msg_cbytes as u64
}

#[cfg(target_vendor = "apple")]
#[allow(clippy::unnecessary_cast)] // c_ulong is u64 on 64-bit targets only
fn message_bytes(ds: &libc::msqid_ds) -> u64 {
    ds.msg_cbytes as u64
}

/// The receives of one queue with one set of options, served in order (see
/// [`MessageQueue::receive_later`]). Its buffer is kept between waits and let go when the
/// line's thread leaves.
struct LineReceive {
    queue: MessageQueue,
    mtype: i64,
    flags: ReceiveFlags,
    max_size: Option<usize>,
    buf: Vec<u8>,
}

impl LineReceive {
    /// Makes the payload room `capacity` (plus the header), without aborting on refusal.
    fn room(&mut self, capacity: usize) -> Result<()> {
        let want = HEADER
            .checked_add(capacity)
            .ok_or(Error::new(Errno::ENOMEM, "msgrcv"))?;
        if self.buf.len() < want {
            self.buf
                .try_reserve_exact(want - self.buf.len())
                .map_err(|_| Error::new(Errno::ENOMEM, "msgrcv"))?;
            self.buf.resize(want, 0);
        }
        Ok(())
    }
}

impl Operation for LineReceive {
    type Input = ();
    type Output = (i64, Vec<u8>);

    fn run(&mut self, _: &(), _: Option<Instant>) -> Result<Served<(i64, Vec<u8>)>> {
        let limit = self.max_size;
        if self.buf.len() < HEADER {
            let first = match limit {
                Some(max) => max.min(crate::limits::msgmax()),
                None => crate::limits::msgmax(),
            };
            self.room(first)?;
        }
        loop {
            let capacity = self.buf.len() - HEADER;
            // Below the caller's limit, a message too large for the buffer must stay queued
            // (E2BIG) so that the buffer can grow: truncation only once at the limit.
            let at_limit = limit.is_some_and(|max| capacity >= max);
            let flags = ReceiveFlags {
                truncate: self.flags.truncate && at_limit,
                ..self.flags
            };
            match self.queue.receive_once(&mut self.buf, self.mtype, flags) {
                Ok(got) => {
                    let payload = &self.buf[HEADER..HEADER + got.len];
                    let mut data = Vec::new();
                    data.try_reserve_exact(payload.len())
                        .map_err(|_| Error::new(Errno::ENOMEM, "msgrcv"))?;
                    data.extend_from_slice(payload);
                    return Ok(Served::One((got.mtype, data)));
                }
                Err(e) if e.errno() == Errno::E2BIG => {
                    let next = match limit {
                        Some(max) if capacity < max => {
                            max.min(capacity.saturating_mul(2).max(4096))
                        }
                        Some(_) => return Err(e),
                        None => {
                            // The default size is msgmax: larger only if msgmax grew.
                            let now = crate::limits::msgmax();
                            if now <= capacity {
                                return Err(e);
                            }
                            now
                        }
                    };
                    self.room(next)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn timed_out(&self) -> Result<(i64, Vec<u8>)> {
        Err(Error::new(Errno::ETIMEDOUT, "msgrcv"))
    }

    fn idle(&mut self) {
        self.buf = Vec::new();
    }
}

/// The sends of one queue that had to wait, in the order they were made (see
/// [`MessageQueue::send_later`]).
struct LineSend {
    queue: MessageQueue,
}

impl Operation for LineSend {
    type Input = Vec<u8>;
    type Output = ();

    fn run(&mut self, msgbuf: &Vec<u8>, _: Option<Instant>) -> Result<Served<()>> {
        self.queue.send_encoded_once(msgbuf, false).map(Served::One)
    }

    fn timed_out(&self) -> Result<()> {
        Err(Error::new(Errno::ETIMEDOUT, "msgsnd"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::IPC_PRIVATE;

    struct Temp(MessageQueue);
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }
    fn private() -> Temp {
        Temp(MessageQueue::open(IPC_PRIVATE, OpenOptions::default()).unwrap())
    }
    fn recv(q: &MessageQueue, mtype: i64, flags: ReceiveFlags) -> Result<(i64, Vec<u8>)> {
        let mut buf = vec![0u8; HEADER + 64];
        let r = q.receive(&mut buf, mtype, flags)?;
        Ok((r.mtype, buf[HEADER..HEADER + r.len].to_vec()))
    }
    const NOWAIT: ReceiveFlags = ReceiveFlags {
        nowait: true,
        except: false,
        truncate: false,
    };

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "MSG_EXCEPT (except) is Linux-only: EINVAL elsewhere"
    )]
    fn type_selection() {
        let q = private();
        for (t, d) in [(5, "five"), (2, "two"), (9, "nine"), (2, "two again")] {
            q.0.send(t, d.as_bytes(), false).unwrap();
        }
        assert_eq!(recv(&q.0, -6, NOWAIT).unwrap(), (2, b"two".to_vec()));
        assert_eq!(recv(&q.0, 9, NOWAIT).unwrap(), (9, b"nine".to_vec()));
        let except = ReceiveFlags {
            except: true,
            ..NOWAIT
        };
        assert_eq!(recv(&q.0, 2, except).unwrap(), (5, b"five".to_vec()));
        assert_eq!(recv(&q.0, 0, NOWAIT).unwrap(), (2, b"two again".to_vec()));
        assert_eq!(recv(&q.0, 0, NOWAIT).unwrap_err().errno(), Errno::ENOMSG);
    }

    #[test]
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn except_is_einval_without_msg_except() {
        let q = private();
        q.0.send(5, b"five", false).unwrap();
        let except = ReceiveFlags {
            except: true,
            ..NOWAIT
        };
        let e = recv(&q.0, 2, except).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EINVAL, "msgrcv"));
        assert_eq!(recv(&q.0, 0, NOWAIT).unwrap(), (5, b"five".to_vec()));
    }

    #[test]
    fn too_big_stays_unless_truncated() {
        let q = private();
        q.0.send(1, &[7u8; 100], false).unwrap();
        let mut small = vec![0u8; HEADER + 10];
        let e = q.0.receive(&mut small, 0, NOWAIT).unwrap_err();
        assert_eq!(e.errno(), Errno::E2BIG);
        assert_eq!(q.0.stat().unwrap().messages, 1);
        let r =
            q.0.receive(
                &mut small,
                0,
                ReceiveFlags {
                    truncate: true,
                    ..NOWAIT
                },
            )
            .unwrap();
        assert_eq!(r.len, 10);
        assert_eq!(q.0.stat().unwrap().messages, 0);
    }

    #[test]
    fn stat_and_update() {
        let q = private();
        q.0.send(1, b"abc", false).unwrap();
        let st = q.0.stat().unwrap();
        assert_eq!(
            (st.messages, st.bytes, st.perm.mode, st.perm.key),
            (1, 3, 0o600, 0)
        );
        // SAFETY: getpid has no preconditions.
        assert_eq!(st.last_send_pid, unsafe { libc::getpid() });
        q.0.update(MsgUpdate {
            max_bytes: Some(4096),
            mode: Some(0o640),
            ..Default::default()
        })
        .unwrap();
        let st = q.0.stat().unwrap();
        assert_eq!((st.max_bytes, st.perm.mode), (4096, 0o640));
    }

    #[test]
    fn full_queue_nowait_is_eagain() {
        let q = private();
        q.0.update(MsgUpdate {
            max_bytes: Some(16),
            ..Default::default()
        })
        .unwrap();
        q.0.send(1, &[0u8; 16], true).unwrap();
        assert_eq!(q.0.send(1, b"x", true).unwrap_err().errno(), Errno::EAGAIN);
    }

    #[test]
    fn exclusive_and_missing() {
        let key = 0x1bc0_0000 | (std::process::id() as i32 & 0xffff);
        let _ = MessageQueue::open(key, OpenOptions::default()).map(|q| q.remove());
        let missing = MessageQueue::open(key, OpenOptions::default()).unwrap_err();
        assert_eq!(missing.errno(), Errno::ENOENT);
        let q = Temp(
            MessageQueue::open(
                key,
                OpenOptions {
                    exclusive: true,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let again = MessageQueue::open(
            key,
            OpenOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(again.errno(), Errno::EEXIST);
        assert_eq!(q.0.stat().unwrap().perm.key, key);
    }

    #[test]
    fn cancelled_receive_takes_nothing() {
        use crate::wait::{interruptible, spawn, Canceller};
        let _serial = crate::wait::POOL_TESTS.lock();
        let q = private();
        let queue = q.0;
        let canceller = Canceller::new();
        let c = canceller.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(move || {
            let mut buf = vec![0u8; HEADER + 16];
            let r = interruptible(&c, "msgrcv", || {
                queue.receive_once(&mut buf, 0, ReceiveFlags::default())
            });
            tx.send(r).unwrap();
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        canceller.cancel();
        let r = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(r.unwrap_err().is_cancelled());
        q.0.send(1, b"later", false).unwrap();
        assert_eq!(recv(&q.0, 0, NOWAIT).unwrap(), (1, b"later".to_vec()));
    }

    #[test]
    fn removal_wakes_receiver_with_eidrm() {
        let q = MessageQueue::open(IPC_PRIVATE, OpenOptions::default()).unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            tid_tx.send(crate::testing::gettid()).unwrap();
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            tid_tx.send(0).unwrap();
            recv(&q, 0, ReceiveFlags::default())
        });
        let _tid = tid_rx.recv().unwrap();
        // Removed once the receiver sleeps in msgrcv (before, its msgrcv would find no queue:
        // EINVAL).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        crate::testing::wait_until_in_syscall(_tid, libc::SYS_msgrcv);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.remove().unwrap();
        assert_eq!(waiter.join().unwrap().unwrap_err().errno(), Errno::EIDRM);
    }
}
