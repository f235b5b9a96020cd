//! The overflow area: where the part of a message that does not fit in the caller's buffer
//! lands, so that a receive never has to ask a message's size first (an `FIONREAD` costs a
//! system call, and on a seqpacket socket walks every queued message).
//!
//! It is a per-thread mapping of `MAX_MESSAGE` bytes of address space that reserves no
//! memory (`MAP_NORESERVE`, not in core dumps): every `recvmsg` gets it as its last buffer,
//! and since no `sendmsg` can carry more than `MAX_MESSAGE` bytes, no message is ever cut.
//! Only the pages a large message was written to become memory; past `OVERFLOW_KEEP` bytes
//! they are given back once the message was copied out.
//!
//! The kernel only checks the area's address range; an emulator that checks a buffer page by
//! page (qemu-user before 8.1) pays ~2 ms per receive for it, correct but slow.

use std::cell::RefCell;

/// The most bytes one `sendmsg` or `recvmsg` moves on Linux (`MAX_RW_COUNT`, see
/// `read(2)` and `write(2)`): the kernel caps a call's total buffer length there.
pub(super) const MAX_MESSAGE: usize = 0x7fff_f000;

/// Bytes of the area that stay memory after a large message (beyond, pages go back).
const OVERFLOW_KEEP: usize = 1 << 20;

/// One thread's overflow area.
pub(super) struct Area {
    ptr: *mut u8,
}

impl Area {
    /// Maps the area, or `None` where the system would charge the whole mapping as
    /// committed memory (`vm.overcommit_memory = 2`), where the process has an
    /// address-space limit (`RLIMIT_AS`: the area would take 2 GiB of it from later
    /// allocations), or where the mapping fails (32-bit): the caller then sizes its
    /// buffer with `FIONREAD` instead.
    fn map() -> Option<Area> {
        if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "2")
        {
            return None;
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit to the pointer, which points at `limit`.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
        if rc != 0 || limit.rlim_cur != libc::RLIM_INFINITY {
            return None;
        }
        // SAFETY: an anonymous private mapping at an address the kernel picks touches no
        // existing memory; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAX_MESSAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: `ptr` is the mapping just made, `MAX_MESSAGE` bytes long. Keeping it
        // out of core dumps is advice; its failure changes nothing.
        unsafe { libc::madvise(ptr, MAX_MESSAGE, libc::MADV_DONTDUMP) };
        Some(Area { ptr: ptr.cast() })
    }

    /// The whole area, writable.
    pub(super) fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live read-write mapping of `MAX_MESSAGE` bytes that only
        // this thread's `Area` (borrowed mutably here) hands out.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, MAX_MESSAGE) }
    }

    /// After a message wrote `used` bytes into the area: gives back its pages past
    /// `OVERFLOW_KEEP` (they read as zeros when touched again).
    pub(super) fn release(&mut self, used: usize) {
        if used > OVERFLOW_KEEP {
            // SAFETY: the range lies inside the mapping (`OVERFLOW_KEEP` is page-aligned
            // and `used <= MAX_MESSAGE`), and nothing borrows it now.
            unsafe {
                libc::madvise(
                    self.ptr.add(OVERFLOW_KEEP).cast(),
                    used - OVERFLOW_KEEP,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the mapping `map` made, of that length, unmapped only here.
        unsafe { libc::munmap(self.ptr.cast(), MAX_MESSAGE) };
    }
}

/// A thread's area: not made yet, made, or not available (`FIONREAD` sizing instead).
pub(super) enum State {
    NotYet,
    Mapped(Area),
    Unavailable,
}

thread_local! {
    pub(super) static AREA: RefCell<State> = const { RefCell::new(State::NotYet) };
}

/// Runs `f` with this thread's area, mapping it on first use; `None` when unavailable.
pub(super) fn with<R>(f: impl FnOnce(Option<&mut Area>) -> R) -> R {
    AREA.with(|state| {
        let mut state = state.borrow_mut();
        if matches!(*state, State::NotYet) {
            *state = Area::map().map_or(State::Unavailable, State::Mapped);
        }
        match &mut *state {
            State::Mapped(area) => f(Some(area)),
            _ => f(None),
        }
    })
}

/// Makes this thread size its buffers with `FIONREAD`, as where the area cannot be mapped.
#[cfg(test)]
pub(super) fn disable() {
    AREA.with(|state| *state.borrow_mut() = State::Unavailable);
}
