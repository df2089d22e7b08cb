//! Where the publisher's requests go: a xenstore connection of one of the
//! backends, or the in-memory tree of a dry run.
//!
//! Every backend takes the same [`Request`]s in batches and gives back the
//! same [`Answer`]s, or [`Lost`] when the connection is unusable. Above
//! this module nothing knows which backend runs.

#[cfg(feature = "libxenstore")]
pub mod libxenstore;
pub mod memory;
pub mod tree;

use std::time::Duration;

use tokio::time::Instant;

use super::native::{Answer, Client, Lost, Places, Request, WatchEvent};
use crate::cli::XenstoreBackend;

/// An open connection (or the dry run's tree).
pub enum Store {
    /// The native client: requests and watch events on one connection.
    Native(Box<Client>),
    /// libxenstore (on a thread of its own) for requests, the native
    /// client for watches (`None` when it could not be had: the periodic
    /// check notices a new domain then).
    #[cfg(feature = "libxenstore")]
    Libxenstore {
        /// The thread making the calls.
        lib: libxenstore::Handle,
        /// The watch connection.
        watches: Option<Box<Client>>,
    },
    /// An in-memory tree: the dry run (which prints what it commits), and
    /// tests.
    Memory(memory::Memory),
}

impl Store {
    /// Make `requests`, in order, and give their answers in the same order;
    /// a xenstored that does not answer them all within `timeout` is taken
    /// as gone.
    pub async fn batch(
        &mut self,
        requests: &[Request<'_>],
        timeout: Duration,
    ) -> Result<Vec<Answer>, Lost> {
        let deadline = Instant::now() + timeout;
        match self {
            Store::Native(client) => client.batch(requests, deadline).await,
            #[cfg(feature = "libxenstore")]
            Store::Libxenstore { lib, .. } => lib.batch(requests, timeout).await,
            Store::Memory(m) => m.batch(requests),
        }
    }

    /// The connection watch events come on, if any.
    pub fn watcher(&mut self) -> Option<&mut Client> {
        match self {
            Store::Native(client) => Some(&mut **client),
            #[cfg(feature = "libxenstore")]
            Store::Libxenstore { watches, .. } => watches.as_deref_mut(),
            Store::Memory(_) => None,
        }
    }

    /// The next watch event; never, without watches. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<WatchEvent, Lost> {
        #[cfg(test)]
        if let Store::Memory(m) = self {
            return m.next_event().await;
        }
        match self.watcher() {
            Some(client) => client.next_event().await,
            None => std::future::pending().await,
        }
    }
}

/// How to open a [`Store`]: the backend chosen, and where xenstore is.
pub enum Opener {
    /// The native client.
    Native(Places),
    /// libxenstore, with native watches.
    #[cfg(feature = "libxenstore")]
    Libxenstore(libxenstore::Handle, Places),
    /// A dry run, or a test's tree (every opening shares it).
    Memory(memory::Memory),
}

impl Opener {
    /// The backend `choice` asks for, with `auto` resolved: libxenstore
    /// where it can be loaded, the native client where it cannot. Says once
    /// in the log which backend is used and why. Fails only when the
    /// choice names a backend that cannot be had.
    pub fn choose(choice: XenstoreBackend) -> Result<Opener, crate::Error> {
        let places = Places::from_env();
        match choice {
            XenstoreBackend::Native => {
                log::info!("xenstore backend: native (as asked), {}", places.describe());
                Ok(Opener::Native(places))
            }
            #[cfg(feature = "libxenstore")]
            XenstoreBackend::Libxenstore => {
                let lib = libxenstore::Handle::start()?;
                log::info!(
                    "xenstore backend: libxenstore (as asked), {}",
                    lib.describe()
                );
                Ok(Opener::Libxenstore(lib, places))
            }
            XenstoreBackend::Auto => {
                #[cfg(feature = "libxenstore")]
                match libxenstore::Handle::start() {
                    Ok(lib) => {
                        log::info!(
                            "xenstore backend: libxenstore ({}; --xenstore-backend native \
                             needs no library)",
                            lib.describe()
                        );
                        return Ok(Opener::Libxenstore(lib, places));
                    }
                    Err(e) => log::info!("xenstore backend: native, {} ({e})", places.describe()),
                }
                #[cfg(not(feature = "libxenstore"))]
                log::info!(
                    "xenstore backend: native (this build has no libxenstore backend), {}",
                    places.describe()
                );
                Ok(Opener::Native(places))
            }
        }
    }

    /// Open a connection (libxenstore's within `timeout`).
    pub async fn open(&mut self, timeout: Duration) -> Result<Store, Lost> {
        #[cfg(not(feature = "libxenstore"))]
        let _ = timeout;
        match self {
            Opener::Native(places) => Client::connect(places)
                .await
                .map(|c| Store::Native(Box::new(c))),
            #[cfg(feature = "libxenstore")]
            Opener::Libxenstore(lib, places) => {
                lib.connect(timeout).await?;
                let watches = match Client::connect(places).await {
                    Ok(c) => Some(Box::new(c)),
                    Err(e) => {
                        log::warn!(
                            "cannot watch xenstore ({e}): a resume, migration or SR-IOV change \
                             is noticed by the periodic check only"
                        );
                        None
                    }
                };
                Ok(Store::Libxenstore {
                    lib: lib.clone(),
                    watches,
                })
            }
            Opener::Memory(m) => {
                #[cfg(test)]
                {
                    let mut inner = m.lock();
                    if inner.faults.refuse_connects > 0 {
                        inner.faults.refuse_connects -= 1;
                        return Err(Lost::new("test: connection refused"));
                    }
                }
                Ok(Store::Memory(m.clone()))
            }
        }
    }
}
