//! Telling the network manager to take the files the agent wrote, over
//! D-Bus, so that the setting is its own at once (it would otherwise undo
//! the live change at its next lease renewal or reconfiguration).

use crate::error::Error;
use crate::netconf::dbus::{Arg, Bus};

const NETWORKD: &str = "org.freedesktop.network1";
const NETWORKD_PATH: &str = "/org/freedesktop/network1";
const NETWORKD_MANAGER: &str = "org.freedesktop.network1.Manager";

/// systemd-networkd: read the .network files again, then configure the
/// link `index` anew from them.
pub async fn networkd(index: u32) -> Result<(), Error> {
    let index = i32::try_from(index).map_err(|_| Error::new(format!("link index {index}")))?;
    let mut bus = Bus::system().await?;
    bus.call(NETWORKD, NETWORKD_PATH, NETWORKD_MANAGER, "Reload", &[])
        .await?;
    bus.call(
        NETWORKD,
        NETWORKD_PATH,
        NETWORKD_MANAGER,
        "ReconfigureLink",
        &[Arg::I32(index)],
    )
    .await?;
    Ok(())
}
