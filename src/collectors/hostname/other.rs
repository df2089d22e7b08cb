//! Systems whose kernel does not signal host name changes (FreeBSD has no
//! descriptor to poll for `sethostname`): the name is published once.

use std::io;

/// Never built: [`Watch::new`] says why.
pub struct Watch;

impl Watch {
    /// Unsupported here.
    pub fn new() -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel does not signal host name changes",
        ))
    }

    /// Never called: there is no watch.
    pub async fn changed(&mut self) -> io::Result<()> {
        std::future::pending().await
    }
}
