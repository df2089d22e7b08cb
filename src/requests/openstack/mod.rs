//! OpenStack's XenServer guest-agent protocol (nova's XenAPI driver): dom0's commands to the guest agent through xenstore; so far the crypto of its password exchange.

pub mod crypto;
