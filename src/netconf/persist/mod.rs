//! The lasting half of a network change: the configuration of the network
//! manager that runs the interface, so that it survives a restart of that
//! manager and a reboot.
