//! Telling the network manager to take the files the agent wrote, over
//! D-Bus, so that the setting is its own at once (it would otherwise undo
//! the live change at its next lease renewal or reconfiguration).

use crate::error::Error;
use crate::netconf::dbus::{Arg, Bus, Value};
use crate::netconf::persist::Reload;

const NETWORKD: &str = "org.freedesktop.network1";
const NETWORKD_PATH: &str = "/org/freedesktop/network1";
const NETWORKD_MANAGER: &str = "org.freedesktop.network1.Manager";

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const NM_SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
const NM_SETTINGS: &str = "org.freedesktop.NetworkManager.Settings";

/// Do what `reload` asks; what the answer says about it.
pub async fn take(reload: &Reload) -> String {
    match reload {
        Reload::Nothing => String::new(),
        Reload::Networkd { index } => match networkd(*index).await {
            Ok(()) => "; systemd-networkd reconfigured the interface".to_string(),
            Err(e) => format!("; systemd-networkd not told, so it applies at its next start ({e})"),
        },
        Reload::NetworkManager { uuid, interface } => {
            match network_manager(uuid, interface).await {
                Ok(()) if uuid.is_empty() => "; NetworkManager reloaded its profiles".to_string(),
                Ok(()) => format!("; NetworkManager activated profile {uuid} on {interface}"),
                Err(e) => {
                    format!("; NetworkManager not told, so it applies at its next start ({e})")
                }
            }
        }
    }
}

/// systemd-networkd: read the .network files again, then configure the
/// link `index` anew from them.
async fn networkd(index: u32) -> Result<(), Error> {
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

/// NetworkManager: read the profiles again, then (unless `uuid` is
/// empty: it falls back by itself) activate profile `uuid` on
/// `interface`.
async fn network_manager(uuid: &str, interface: &str) -> Result<(), Error> {
    let mut bus = Bus::system().await?;
    bus.call(NM, NM_SETTINGS_PATH, NM_SETTINGS, "ReloadConnections", &[])
        .await?;
    if uuid.is_empty() {
        return Ok(());
    }
    let connection = path_of(
        bus.call(
            NM,
            NM_SETTINGS_PATH,
            NM_SETTINGS,
            "GetConnectionByUuid",
            &[Arg::Str(uuid)],
        )
        .await?,
        "GetConnectionByUuid",
    )?;
    let device = path_of(
        bus.call(
            NM,
            NM_PATH,
            NM,
            "GetDeviceByIpIface",
            &[Arg::Str(interface)],
        )
        .await?,
        "GetDeviceByIpIface",
    )?;
    bus.call(
        NM,
        NM_PATH,
        NM,
        "ActivateConnection",
        &[Arg::Path(&connection), Arg::Path(&device), Arg::Path("/")],
    )
    .await?;
    Ok(())
}

/// The object path a call returned.
fn path_of(values: Vec<Value>, call: &str) -> Result<String, Error> {
    match values.into_iter().next() {
        Some(Value::Path(p)) => Ok(p),
        other => Err(Error::new(format!(
            "NetworkManager's {call} returned {other:?}, not an object path"
        ))),
    }
}
