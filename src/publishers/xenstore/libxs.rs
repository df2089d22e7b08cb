//! The real [`Backend`]: a libxenstore connection.
//!
//! `xs_open(0)` finds xenstore the way every Xen tool does: the xenbus
//! device in a guest (`/dev/xen/xenbus`, FreeBSD `/dev/xen/xenstore`), the
//! xenstored socket in dom0, or whatever `XENSTORED_PATH` names (tests).
//!
//! No watches on this connection: once a watch is registered, the shared
//! libxenstore starts a reader thread of its own for the life of the
//! connection, and the static one cannot take watch events between
//! requests at all. The publisher's watches have their own connection on
//! the event loop ([`super::watches`]). Every call here blocks its caller
//! until xenstored answers.

use std::ffi::{c_uint, CStr, CString};
use std::io;
use std::ptr;

use super::backend::{Backend, Tx};
use super::libxenstore::{Lib, XsHandle};

/// A connection to xenstore through libxenstore.
pub struct Libxs {
    lib: Lib,
    handle: *mut XsHandle,
}

// SAFETY: libxenstore handles may be used from any thread (the library
// serialises requests with its own mutexes); `Libxs` is used from one
// thread at a time anyway.
unsafe impl Send for Libxs {}

impl Libxs {
    /// Wrap a loaded library; nothing is opened yet.
    pub fn new(lib: Lib) -> Self {
        Libxs {
            lib,
            handle: ptr::null_mut(),
        }
    }

    fn handle(&self) -> io::Result<*mut XsHandle> {
        if self.handle.is_null() {
            Err(io::Error::from_raw_os_error(libc::ENOTCONN))
        } else {
            Ok(self.handle)
        }
    }
}

impl Drop for Libxs {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// A path as C wants it; a NUL byte inside is refused before it is sent.
fn c_path(path: &str) -> io::Result<CString> {
    CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a xenstore path"))
}

/// `errno` after a failed call, never "success" (libxenstore may fail
/// without setting it: that is then a broken connection).
fn last_error() -> io::Error {
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(0) | None => io::Error::from_raw_os_error(libc::EIO),
        _ => e,
    }
}

impl Backend for Libxs {
    fn connect(&mut self) -> io::Result<()> {
        self.disconnect();
        // SAFETY: plain call; NULL on failure with errno set.
        let h = unsafe { (self.lib.xs_open)(0) };
        if h.is_null() {
            return Err(last_error());
        }
        self.handle = h;
        Ok(())
    }

    fn disconnect(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: a handle from xs_open, closed once.
            unsafe { (self.lib.xs_close)(self.handle) };
            self.handle = ptr::null_mut();
        }
    }

    fn begin(&mut self) -> io::Result<Tx> {
        let h = self.handle()?;
        // SAFETY: valid handle.
        let tx = unsafe { (self.lib.xs_transaction_start)(h) };
        if tx == 0 {
            return Err(last_error());
        }
        Ok(tx)
    }

    fn commit(&mut self, tx: Tx) -> io::Result<()> {
        let h = self.handle()?;
        // SAFETY: valid handle and transaction.
        if unsafe { (self.lib.xs_transaction_end)(h, tx, false) } {
            Ok(())
        } else {
            Err(last_error())
        }
    }

    fn abort(&mut self, tx: Tx) {
        if let Ok(h) = self.handle() {
            // SAFETY: valid handle and transaction.
            unsafe { (self.lib.xs_transaction_end)(h, tx, true) };
        }
    }

    fn read(&mut self, tx: Tx, path: &str) -> io::Result<Option<String>> {
        let h = self.handle()?;
        let p = c_path(path)?;
        let mut len: c_uint = 0;
        // SAFETY: valid handle, NUL-terminated path, `len` outlives the call.
        let buf = unsafe { (self.lib.xs_read)(h, tx, p.as_ptr(), &mut len) };
        if buf.is_null() {
            let e = last_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: libxenstore returns `len` bytes (plus a NUL) in a malloc'd
        // buffer that we own and free once.
        let value = unsafe {
            let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len as usize);
            let v = String::from_utf8_lossy(bytes).into_owned();
            libc::free(buf);
            v
        };
        Ok(Some(value))
    }

    fn directory(&mut self, tx: Tx, path: &str) -> io::Result<Vec<String>> {
        let h = self.handle()?;
        let p = c_path(path)?;
        let mut num: c_uint = 0;
        // SAFETY: as for xs_read.
        let list = unsafe { (self.lib.xs_directory)(h, tx, p.as_ptr(), &mut num) };
        if list.is_null() {
            let e = last_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(Vec::new()),
                _ => Err(e),
            };
        }
        // SAFETY: `num` NUL-terminated strings in one malloc'd block, freed
        // once after copying.
        let names = unsafe {
            let entries = std::slice::from_raw_parts(list, num as usize);
            let v = entries
                .iter()
                .map(|&s| CStr::from_ptr(s).to_string_lossy().into_owned())
                .collect();
            libc::free(list.cast());
            v
        };
        Ok(names)
    }

    fn write(&mut self, tx: Tx, path: &str, value: &str) -> io::Result<()> {
        let h = self.handle()?;
        let p = c_path(path)?;
        let len =
            c_uint::try_from(value.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
        // SAFETY: valid handle and path; `value` holds `len` bytes.
        if unsafe { (self.lib.xs_write)(h, tx, p.as_ptr(), value.as_ptr().cast(), len) } {
            Ok(())
        } else {
            Err(last_error())
        }
    }

    fn remove(&mut self, tx: Tx, path: &str) -> io::Result<()> {
        let h = self.handle()?;
        let p = c_path(path)?;
        // SAFETY: valid handle and path.
        if unsafe { (self.lib.xs_rm)(h, tx, p.as_ptr()) } {
            return Ok(());
        }
        let e = last_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            _ => Err(e),
        }
    }
}
