//! The live half of a network change: addresses and default routes set on
//! the interface at once (Linux: rtnetlink).
