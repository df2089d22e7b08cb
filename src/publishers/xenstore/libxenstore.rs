//! The part of libxenstore's C API the agent uses, as a table of function
//! pointers.
//!
//! By default the library is loaded at run time (`dlopen`), so that one
//! binary runs on every distribution whatever the soname of its
//! libxenstore, and so that a missing library gives one clear message
//! instead of a loader error. With the `static` feature, `build.rs` runs
//! bindgen on `xenstore.h` and links `libxenstore.a`: the table is then
//! filled from the linked symbols and the binary needs no libxenstore at
//! run time. Either way the rest of the code sees the same [`Lib`].

use std::ffi::{c_char, c_uint, c_ulong, c_void};
use std::io;

/// libxenstore's connection handle (opaque).
#[cfg(not(feature = "static"))]
#[repr(C)]
pub struct XsHandle {
    _opaque: [u8; 0],
}

#[cfg(feature = "static")]
#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/xenstore.rs"));
}

/// libxenstore's connection handle (opaque).
#[cfg(feature = "static")]
pub type XsHandle = bindings::xs_handle;

/// A transaction id (`xs_transaction_t`); 0 (`XBT_NULL`) means none.
pub type XsTransaction = u32;

/// The functions of libxenstore the agent calls. Each returns its error in
/// `errno`, as documented in `xenstore.h`; buffers they return are
/// `malloc`ed and released with `libc::free`.
///
/// No watch functions (`xs_watch`, `xs_fileno`, `xs_check_watch`): a watch
/// starts the shared library's reader thread, and the static library,
/// built without threads, cannot take watch events between requests. The
/// publisher's watches have a connection of their own
/// ([`super::watches`]).
pub struct Lib {
    pub xs_open: unsafe extern "C" fn(c_ulong) -> *mut XsHandle,
    pub xs_close: unsafe extern "C" fn(*mut XsHandle),
    pub xs_read: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *mut c_uint,
    ) -> *mut c_void,
    pub xs_write: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *const c_void,
        c_uint,
    ) -> bool,
    pub xs_rm: unsafe extern "C" fn(*mut XsHandle, XsTransaction, *const c_char) -> bool,
    pub xs_directory: unsafe extern "C" fn(
        *mut XsHandle,
        XsTransaction,
        *const c_char,
        *mut c_uint,
    ) -> *mut *mut c_char,
    pub xs_transaction_start: unsafe extern "C" fn(*mut XsHandle) -> XsTransaction,
    pub xs_transaction_end: unsafe extern "C" fn(*mut XsHandle, XsTransaction, bool) -> bool,
    /// Keeps the loaded library mapped for as long as the pointers live.
    #[cfg(not(feature = "static"))]
    _library: libloading::Library,
}

/// Sonames tried in order: the current ABI first, then the older one
/// (Debian's `libxenstore3.0`, older RHEL/SUSE).
#[cfg(not(feature = "static"))]
pub const SONAMES: &[&str] = &["libxenstore.so.4", "libxenstore.so.3.0", "libxenstore.so.3"];

impl Lib {
    /// Load libxenstore. The error names the files tried and the package
    /// that provides the library on common systems: it is shown to the
    /// user as is.
    #[cfg(not(feature = "static"))]
    pub fn load() -> io::Result<Lib> {
        let mut errors = Vec::new();
        for name in SONAMES {
            // SAFETY: loading libxenstore runs no initialisation code with
            // preconditions (it has no constructors that could misbehave).
            match unsafe { libloading::Library::new(name) } {
                Ok(library) => return Self::from_library(library, name),
                Err(e) => errors.push(e.to_string()),
            }
        }
        log::debug!("loading libxenstore: {}", errors.join("; "));
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "cannot load libxenstore (tried {}): install it (Debian/Ubuntu: libxenstore4, \
                 older releases libxenstore3.0; Fedora/RHEL/CentOS/SUSE: xen-libs; FreeBSD: \
                 xen-tools), or use --publisher stdout",
                SONAMES.join(", ")
            ),
        ))
    }

    #[cfg(not(feature = "static"))]
    fn from_library(library: libloading::Library, name: &str) -> io::Result<Lib> {
        /// Look up one symbol as a function pointer of the field's type.
        macro_rules! sym {
            ($name:ident) => {{
                // SAFETY: the field's type is the C prototype from
                // xenstore.h, identical in ABI 3.0 and 4.
                match unsafe { library.get(concat!(stringify!($name), "\0").as_bytes()) } {
                    Ok(s) => *s,
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{name} has no {}: {e}", stringify!($name)),
                        ))
                    }
                }
            }};
        }
        Ok(Lib {
            xs_open: sym!(xs_open),
            xs_close: sym!(xs_close),
            xs_read: sym!(xs_read),
            xs_write: sym!(xs_write),
            xs_rm: sym!(xs_rm),
            xs_directory: sym!(xs_directory),
            xs_transaction_start: sym!(xs_transaction_start),
            xs_transaction_end: sym!(xs_transaction_end),
            _library: library,
        })
    }

    /// The statically linked libxenstore.
    #[cfg(feature = "static")]
    pub fn load() -> io::Result<Lib> {
        Ok(Lib {
            xs_open: bindings::xs_open,
            xs_close: bindings::xs_close,
            xs_read: bindings::xs_read,
            xs_write: bindings::xs_write,
            xs_rm: bindings::xs_rm,
            xs_directory: bindings::xs_directory,
            xs_transaction_start: bindings::xs_transaction_start,
            xs_transaction_end: bindings::xs_transaction_end,
        })
    }
}
