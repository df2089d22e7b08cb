//! The live half where it is not implemented: every operation fails, and
//! says why.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Link;
use crate::netconf::Static;
use crate::Error;

/// Stands for the Linux netlink socket; never made.
pub struct Live {
    _private: (),
}

fn unsupported() -> Error {
    Error::new("changing the network is implemented for Linux only")
}

impl Live {
    /// Fails: there is nothing to open here.
    pub fn open() -> Result<Live, Error> {
        Err(unsupported())
    }

    /// Fails (see [`Live::open`]).
    pub async fn link_by_mac(&mut self, _mac: &str) -> Result<Option<Link>, Error> {
        Err(unsupported())
    }

    /// Fails (see [`Live::open`]).
    pub async fn apply_v4(&mut self, _link: &Link, _want: &Static<Ipv4Addr>) -> Result<(), Error> {
        Err(unsupported())
    }

    /// Fails (see [`Live::open`]).
    pub async fn apply_v6(&mut self, _link: &Link, _want: &Static<Ipv6Addr>) -> Result<(), Error> {
        Err(unsupported())
    }

    /// Fails (see [`Live::open`]).
    pub async fn remove_v4(&mut self, _link: &Link, _had: &Static<Ipv4Addr>) -> Result<(), Error> {
        Err(unsupported())
    }

    /// Fails (see [`Live::open`]).
    pub async fn remove_v6(&mut self, _link: &Link, _had: &Static<Ipv6Addr>) -> Result<(), Error> {
        Err(unsupported())
    }
}
