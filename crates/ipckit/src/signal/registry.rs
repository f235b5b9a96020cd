//! The bookkeeping of watches outside the handler (never touched by it): which slots are
//! used, how many watches and ordered watches follow each signal, and which real-time
//! signals are confined; one lock for every change of a signal's action.

use std::sync::{Mutex, MutexGuard};

#[cfg(any(target_os = "linux", target_os = "android"))]
use super::confine;
use super::handler::MAX_WATCHES;
use super::table::MAX_SIGNAL;
use crate::error::Result;

/// Bookkeeping outside the handler (never touched by it).
pub(super) struct Registry {
    pub(super) used: [bool; MAX_WATCHES],
    /// Watches per signal.
    pub(super) watches: [usize; MAX_SIGNAL + 1],
    /// Ordered watches per real-time signal.
    pub(super) ordered: [usize; MAX_SIGNAL + 1],
    /// Per real-time signal: `Some(the threads that existed when it was confined)` while it is
    /// confined to the poller thread (see `confine`).
    pub(super) confined: [Option<Vec<i32>>; MAX_SIGNAL + 1],
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    used: [false; MAX_WATCHES],
    watches: [0; MAX_SIGNAL + 1],
    ordered: [0; MAX_SIGNAL + 1],
    confined: [const { None }; MAX_SIGNAL + 1],
});

impl Registry {
    /// Counts an ordered watch of real-time signal `signo`, confining it if it is not yet;
    /// whether it is confined now.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn order(&mut self, signo: i32) -> Result<bool> {
        let s = signo as usize;
        if self.confined[s].is_none() {
            self.confined[s] = confine::confine(signo)?;
        }
        self.ordered[s] += 1;
        Ok(self.confined[s].is_some())
    }

    /// No real-time signals there.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn order(&mut self, signo: i32) -> Result<bool> {
        self.ordered[signo as usize] += 1;
        Ok(false)
    }

    /// Uncounts an ordered watch of `signo`; the last one releases the confinement.
    pub(super) fn unorder(&mut self, signo: i32) {
        let s = signo as usize;
        self.ordered[s] -= 1;
        if self.ordered[s] == 0 {
            if let Some(_before) = self.confined[s].take() {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                confine::release(signo, &_before);
            }
        }
    }
}

/// Deliveries of `signo` handled on another thread than the receiver while it was confined
/// (none where nothing is confined).
pub(super) fn escapes(signo: i32) -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        confine::escapes(signo)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = signo;
        0
    }
}

pub(super) fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}
