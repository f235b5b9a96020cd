//! Where there is no `MAX_RW_COUNT` to rely on (macOS): never an area, buffers are sized with
//! `FIONREAD`.

/// Never made.
pub(super) enum Area {}

impl Area {
    pub(super) fn bytes(&mut self) -> &mut [u8] {
        match *self {}
    }
    pub(super) fn release(&mut self, _used: usize) {
        match *self {}
    }
}

pub(super) fn with<R>(f: impl FnOnce(Option<&mut Area>) -> R) -> R {
    f(None)
}
