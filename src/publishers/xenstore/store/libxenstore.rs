//! The libxenstore backend: requests through the C library, on a thread of
//! its own ("xenstore", started once for the life of the agent), because
//! every libxenstore call blocks until xenstored answers.
//!
//! The library is loaded at run time (`dlopen`: one binary for every
//! distribution, whatever its libxenstore soname, and a clear message when
//! it is missing), or linked statically with the `static` feature
//! (`build.rs` runs bindgen on `xenstore.h`). `xs_open(0)` finds xenstore
//! as every Xen tool does. No watches here: a watch starts the shared
//! library's reader thread, and the static library cannot take watch events
//! between requests; the native client watches instead.

use std::ffi::{c_char, c_uint, c_ulong, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::super::native::{Answer, Errno, Lost, Reply, Request, TxId};
use crate::error::Error;

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

/// The functions of libxenstore the agent calls (`xenstore.h`). Each
/// returns its error in `errno`; buffers they return are `malloc`ed and
/// released with `libc::free`.
struct Lib {
    xs_open: unsafe extern "C" fn(c_ulong) -> *mut XsHandle,
    xs_close: unsafe extern "C" fn(*mut XsHandle),
    xs_read: unsafe extern "C" fn(*mut XsHandle, TxId, *const c_char, *mut c_uint) -> *mut c_void,
    xs_write:
        unsafe extern "C" fn(*mut XsHandle, TxId, *const c_char, *const c_void, c_uint) -> bool,
    xs_rm: unsafe extern "C" fn(*mut XsHandle, TxId, *const c_char) -> bool,
    xs_directory:
        unsafe extern "C" fn(*mut XsHandle, TxId, *const c_char, *mut c_uint) -> *mut *mut c_char,
    xs_transaction_start: unsafe extern "C" fn(*mut XsHandle) -> TxId,
    xs_transaction_end: unsafe extern "C" fn(*mut XsHandle, TxId, bool) -> bool,
    /// Keeps the loaded library mapped for as long as the pointers live.
    #[cfg(not(feature = "static"))]
    _library: libloading::Library,
}

/// Sonames tried in order: the current ABI first, then the older one
/// (Debian's `libxenstore3.0`, older RHEL/SUSE).
#[cfg(not(feature = "static"))]
const SONAMES: &[&str] = &["libxenstore.so.4", "libxenstore.so.3.0", "libxenstore.so.3"];

impl Lib {
    #[cfg(not(feature = "static"))]
    fn load() -> Result<(Lib, &'static str), Error> {
        let mut errors = Vec::new();
        for name in SONAMES {
            // SAFETY: libxenstore runs no initialisation code with
            // preconditions.
            match unsafe { libloading::Library::new(name) } {
                Ok(library) => return Self::from_library(library, name).map(|l| (l, *name)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        log::debug!("loading libxenstore: {}", errors.join("; "));
        Err(Error::new(format!(
            "cannot load libxenstore (tried {})",
            SONAMES.join(", ")
        ))
        .hint(
            "install it (Debian/Ubuntu: libxenstore4, older releases libxenstore3.0; \
             Fedora/RHEL/CentOS/SUSE: xen-libs; FreeBSD: xen-tools), or use \
             --xenstore-backend native, which needs no library",
        ))
    }

    #[cfg(not(feature = "static"))]
    fn from_library(library: libloading::Library, name: &str) -> Result<Lib, Error> {
        /// One symbol as a function pointer of the field's type.
        macro_rules! sym {
            ($name:ident) => {{
                // SAFETY: the field's type is the C prototype from
                // xenstore.h, identical in ABI 3.0 and 4.
                match unsafe { library.get(concat!(stringify!($name), "\0").as_bytes()) } {
                    Ok(s) => *s,
                    Err(e) => {
                        return Err(Error::new(format!(
                            "{name} has no {}: {e}",
                            stringify!($name)
                        )))
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

    #[cfg(feature = "static")]
    fn load() -> Result<(Lib, &'static str), Error> {
        let lib = Lib {
            xs_open: bindings::xs_open,
            xs_close: bindings::xs_close,
            xs_read: bindings::xs_read,
            xs_write: bindings::xs_write,
            xs_rm: bindings::xs_rm,
            xs_directory: bindings::xs_directory,
            xs_transaction_start: bindings::xs_transaction_start,
            xs_transaction_end: bindings::xs_transaction_end,
        };
        Ok((lib, "libxenstore linked in"))
    }
}

/// A request, owned, for the thread.
enum Job {
    Read(TxId, CString),
    Directory(TxId, CString),
    Write(TxId, CString, String),
    Remove(TxId, CString),
    Start,
    End(TxId, bool),
    /// Not made through libxenstore: answered `ENOSYS`.
    Unsupported,
}

impl Job {
    /// `None`: a NUL byte in a path, refused without a call.
    fn of(request: &Request<'_>) -> Option<Job> {
        let c = |p: &str| CString::new(p).ok();
        Some(match *request {
            Request::Read { tx, path } => Job::Read(tx, c(path)?),
            Request::Directory { tx, path } => Job::Directory(tx, c(path)?),
            Request::Write { tx, path, value } => Job::Write(tx, c(path)?, value.to_owned()),
            Request::Remove { tx, path } => Job::Remove(tx, c(path)?),
            Request::TransactionStart => Job::Start,
            Request::TransactionEnd { tx, commit } => Job::End(tx, commit),
            _ => Job::Unsupported,
        })
    }
}

/// What the loop asks of the thread.
enum Order {
    Connect,
    Batch(Vec<Option<Job>>),
}

/// What the thread answers an order: the answers, or why the connection
/// is gone.
type Done = Result<Vec<Answer>, String>;

/// The thread's inbox.
type Orders = mpsc::Sender<(Order, tokio::sync::oneshot::Sender<Done>)>;

/// The thread, as the event loop sees it. Clones share it.
#[derive(Clone)]
pub struct Handle {
    /// The current thread's inbox: a thread stuck in a call is replaced.
    orders: Arc<std::sync::Mutex<Orders>>,
    /// Which library it loaded.
    what: &'static str,
    /// One order at a time (the thread makes one call at a time anyway).
    busy: Arc<tokio::sync::Mutex<()>>,
    /// Threads alive, the current one and those left stuck in a call.
    live: Arc<AtomicUsize>,
}

/// Threads left stuck in a call, at most: beyond, orders go to the current
/// (stuck) thread, which skips those given up once it is free.
const MAX_STUCK: usize = 3;

impl Handle {
    /// Load libxenstore and start its thread (nothing is opened yet).
    pub fn start() -> Result<Handle, Error> {
        let live = Arc::new(AtomicUsize::new(0));
        let (orders, what) = spawn(&live)?;
        Ok(Handle {
            orders: Arc::new(std::sync::Mutex::new(orders)),
            what,
            busy: Arc::new(tokio::sync::Mutex::new(())),
            live,
        })
    }

    /// Which library is used, for the log.
    pub fn describe(&self) -> &'static str {
        self.what
    }

    /// (Re)open the connection.
    pub async fn connect(&self, timeout: Duration) -> Result<(), Lost> {
        self.order(Order::Connect, timeout).await.map(drop)
    }

    /// Make the requests one after the other (libxenstore cannot pipeline).
    pub async fn batch(
        &self,
        requests: &[Request<'_>],
        timeout: Duration,
    ) -> Result<Vec<Answer>, Lost> {
        let order = Order::Batch(requests.iter().map(Job::of).collect());
        self.order(order, timeout).await
    }

    /// A libxenstore call cannot be given up: one that has not returned
    /// within `timeout` (a xenstored that never answers) keeps its thread,
    /// which ends once xenstored answers or closes that connection, and a
    /// new thread with a new connection takes the next orders.
    async fn order(&self, order: Order, timeout: Duration) -> Result<Vec<Answer>, Lost> {
        let _one = self.busy.lock().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let orders = self.orders.lock().map_err(|_| gone())?.clone();
        orders.send((order, tx)).map_err(|_| gone())?;
        drop(orders);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result.map_err(Lost::new),
            Ok(Err(_)) => Err(gone()),
            Err(_) => {
                if self.live.load(Ordering::Relaxed) <= MAX_STUCK {
                    let fresh = spawn(&self.live).map_err(|e| Lost::new(e.to_string()))?.0;
                    *self.orders.lock().map_err(|_| gone())? = fresh;
                }
                Err(Lost::new(format!(
                    "libxenstore did not answer within {} s (--xenstore-timeout); that call \
                     is left to its thread, a new connection follows",
                    timeout.as_secs_f32()
                )))
            }
        }
    }
}

/// The thread is gone (it panicked, or could not be started again).
fn gone() -> Lost {
    Lost::new("the xenstore thread is gone")
}

/// Load the library and start a thread that makes its calls; `live`
/// counts the threads that have not ended.
fn spawn(live: &Arc<AtomicUsize>) -> Result<(Orders, &'static str), Error> {
    let (lib, what) = Lib::load()?;
    live.fetch_add(1, Ordering::Relaxed);
    let alive = Arc::clone(live);
    let (orders, inbox) = mpsc::channel::<(Order, tokio::sync::oneshot::Sender<Done>)>();
    let mut conn = Conn {
        lib,
        handle: std::ptr::null_mut(),
    };
    let spawned = std::thread::Builder::new()
        .name("xenstore".into())
        .spawn(move || {
            while let Ok((order, reply)) = inbox.recv() {
                let done = conn.run(order, &reply);
                let _ = reply.send(done);
            }
            alive.fetch_sub(1, Ordering::Relaxed);
        })
        .map_err(|e| Error::io("cannot start the xenstore thread", e));
    if spawned.is_err() {
        live.fetch_sub(1, Ordering::Relaxed);
    }
    spawned.map(|_| (orders, what))
}

/// The connection, on the thread.
struct Conn {
    lib: Lib,
    handle: *mut XsHandle,
}

// SAFETY: the handle is used by the one thread that owns `Conn`.
unsafe impl Send for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        self.close();
    }
}

/// A node every domain has and the guest may read: asked when an error
/// does not tell whether the connection still works.
const PROBE: &CStr = c"domid";

impl Conn {
    /// Carry out `order`, unless (and as soon as) the loop gave it up:
    /// the rest of a batch given up must never reach xenstore (a commit
    /// after the agent moved on), so the connection is closed instead.
    fn run(&mut self, order: Order, reply: &tokio::sync::oneshot::Sender<Done>) -> Done {
        if reply.is_closed() {
            self.close();
            return Err("given up".into());
        }
        match order {
            Order::Connect => {
                self.close();
                // SAFETY: plain call; NULL on failure with errno set.
                let h = unsafe { (self.lib.xs_open)(0) };
                if h.is_null() {
                    return Err(format!("libxenstore cannot connect: {}", last_errno()));
                }
                self.handle = h;
                Ok(Vec::new())
            }
            Order::Batch(jobs) => {
                if self.handle.is_null() {
                    return Err("libxenstore: not connected".into());
                }
                let mut answers = Vec::with_capacity(jobs.len());
                for job in jobs {
                    if reply.is_closed() {
                        self.close();
                        return Err("given up".into());
                    }
                    let answer = match job {
                        Some(job) => self.call(&job),
                        None => Err(Errno::EINVAL),
                    };
                    if let Err(e) = answer {
                        if self.dead(e) {
                            self.close();
                            return Err(format!("libxenstore: the connection failed ({e})"));
                        }
                    }
                    answers.push(answer);
                }
                Ok(answers)
            }
        }
    }

    /// Whether an error means the connection is gone. libxenstore reports
    /// a closed socket as `EINVAL` or `EIO`, which xenstored also answers
    /// to bad requests: a harmless read settles it.
    fn dead(&mut self, e: Errno) -> bool {
        match e.0 {
            libc::EPIPE
            | libc::ECONNRESET
            | libc::ECONNREFUSED
            | libc::ENOTCONN
            | libc::EBADF
            | libc::ESHUTDOWN
            | libc::ENXIO
            | libc::ENODEV => true,
            libc::EINVAL | libc::EIO => {
                let mut len: c_uint = 0;
                // SAFETY: valid handle, NUL-terminated path.
                let buf = unsafe { (self.lib.xs_read)(self.handle, 0, PROBE.as_ptr(), &mut len) };
                if buf.is_null() {
                    return true;
                }
                // SAFETY: malloc'd by libxenstore, freed once.
                unsafe { libc::free(buf) };
                false
            }
            _ => false,
        }
    }

    fn close(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: a handle from xs_open, closed once.
            unsafe { (self.lib.xs_close)(self.handle) };
            self.handle = std::ptr::null_mut();
        }
    }

    fn call(&mut self, job: &Job) -> Answer {
        let h = self.handle;
        let lib = &self.lib;
        match job {
            Job::Read(tx, path) => {
                let mut len: c_uint = 0;
                // SAFETY: valid handle, NUL-terminated path, `len` outlives
                // the call.
                let buf = unsafe { (lib.xs_read)(h, *tx, path.as_ptr(), &mut len) };
                if buf.is_null() {
                    return Err(last_errno());
                }
                // SAFETY: `len` bytes in a malloc'd buffer we own, freed once.
                let value = unsafe {
                    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len as usize);
                    let v = String::from_utf8_lossy(bytes).into_owned();
                    libc::free(buf);
                    v
                };
                Ok(Reply::Value(value))
            }
            Job::Directory(tx, path) => {
                let mut num: c_uint = 0;
                // SAFETY: as for xs_read.
                let list = unsafe { (lib.xs_directory)(h, *tx, path.as_ptr(), &mut num) };
                if list.is_null() {
                    return Err(last_errno());
                }
                // SAFETY: `num` NUL-terminated strings in one malloc'd
                // block, freed once after copying.
                let names = unsafe {
                    let entries = std::slice::from_raw_parts(list, num as usize);
                    let v = entries
                        .iter()
                        .map(|&s| CStr::from_ptr(s).to_string_lossy().into_owned())
                        .collect();
                    libc::free(list.cast());
                    v
                };
                Ok(Reply::Children(names))
            }
            Job::Write(tx, path, value) => {
                let len = c_uint::try_from(value.len()).map_err(|_| Errno::E2BIG)?;
                // SAFETY: valid handle and path; `value` holds `len` bytes.
                let ok =
                    unsafe { (lib.xs_write)(h, *tx, path.as_ptr(), value.as_ptr().cast(), len) };
                done(ok)
            }
            // SAFETY: valid handle and path.
            Job::Remove(tx, path) => done(unsafe { (lib.xs_rm)(h, *tx, path.as_ptr()) }),
            Job::Start => {
                // SAFETY: valid handle.
                match unsafe { (lib.xs_transaction_start)(h) } {
                    0 => Err(last_errno()),
                    tx => Ok(Reply::Transaction(tx)),
                }
            }
            // SAFETY: valid handle and transaction.
            Job::End(tx, commit) => done(unsafe { (lib.xs_transaction_end)(h, *tx, !commit) }),
            Job::Unsupported => Err(Errno(libc::ENOSYS)),
        }
    }
}

fn done(ok: bool) -> Answer {
    if ok {
        Ok(Reply::Done)
    } else {
        Err(last_errno())
    }
}

/// `errno` after a failed call, never "success" (libxenstore may fail
/// without setting it: that is then a broken connection).
fn last_errno() -> Errno {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(0) | None => Errno(libc::EIO),
        Some(n) => Errno(n),
    }
}
