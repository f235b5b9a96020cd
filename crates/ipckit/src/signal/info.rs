//! A delivered signal: [`SignalInfo`], as a watch reports it, and the fixed-size record the
//! handler writes to a watch's pipe.

/// A delivered signal, as a [`Watch`](super::Watch) reports it.
///
/// ```
/// let info = ipckit::signal::SignalInfo { signo: 10, code: 0, pid: Some(1), uid: Some(0), value: None };
/// # #[cfg(any(target_os = "linux", target_os = "android"))] // the libc crate has no SI_USER for Apple
/// assert_eq!(info.code, libc::SI_USER);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal number.
    pub signo: i32,
    /// `si_code`: `SI_USER` (0, `kill`), `SI_QUEUE` (-1, `sigqueue`), `SI_TKILL` (-6,
    /// `tgkill`), `SI_KERNEL` (0x80), or a signal-specific code (`CLD_EXITED`, ...).
    pub code: i32,
    /// The sender's pid, when the kernel reports one (sent by a process, or `SIGCHLD`).
    pub pid: Option<i32>,
    /// The sender's real uid, when the kernel reports one.
    pub uid: Option<u32>,
    /// The `sigqueue` payload (`sival_int`), for `SI_QUEUE` signals, or the value a POSIX
    /// message queue notification carries (`SI_MESGQ`); `None` for others.
    pub value: Option<i32>,
}

/// The fixed-size record the handler writes to a watch's pipe (atomically: far below
/// `PIPE_BUF`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(super) struct Record {
    pub(super) signo: i32,
    pub(super) code: i32,
    pub(super) pid: i32,
    pub(super) uid: u32,
    pub(super) value: i32,
    /// Bit 0: `pid`/`uid` are meaningful; bit 1: `value` is.
    pub(super) flags: i32,
}

pub(super) const RECORD: usize = std::mem::size_of::<Record>();

pub(super) const HAS_SENDER: i32 = 1;

pub(super) const HAS_VALUE: i32 = 2;

impl Record {
    pub(super) fn info(&self) -> SignalInfo {
        let sender = self.flags & HAS_SENDER != 0;
        SignalInfo {
            signo: self.signo,
            code: self.code,
            pid: sender.then_some(self.pid),
            uid: sender.then_some(self.uid),
            value: (self.flags & HAS_VALUE != 0).then_some(self.value),
        }
    }
}

/// The size of one encoded [`SignalInfo`] (see [`SignalInfo::encode`]).
///
/// ```
/// assert_eq!(ipckit::signal::ENCODED_LEN, 24);
/// ```
pub const ENCODED_LEN: usize = RECORD;

impl SignalInfo {
    /// The info as 24 little-endian bytes, the layout the Node.js binding hands to
    /// JavaScript: `signo`, `code`, `pid`, `uid`, `value` (i32 each, 0 when absent), then
    /// flags (bit 0: pid and uid present, bit 1: value present).
    ///
    /// ```
    /// let info = ipckit::signal::SignalInfo { signo: 12, code: -1, pid: Some(5), uid: Some(0), value: Some(-3) };
    /// let bytes = info.encode();
    /// assert_eq!(&bytes[..4], &12i32.to_le_bytes());
    /// assert_eq!(&bytes[16..20], &(-3i32).to_le_bytes());
    /// ```
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let fields = [
            self.signo,
            self.code,
            self.pid.unwrap_or(0),
            self.uid.unwrap_or(0) as i32,
            self.value.unwrap_or(0),
            i32::from(self.pid.is_some()) * HAS_SENDER
                + i32::from(self.value.is_some()) * HAS_VALUE,
        ];
        let mut out = [0u8; ENCODED_LEN];
        for (chunk, field) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }
}
