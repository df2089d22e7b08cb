//! The wire format: dom0 writes `data/host/<id>` = `{"name": CMD, "value":
//! ARG}`; the guest answers `data/guest/<id>` = `{"returncode": "<code>",
//! "message": "<text>"}` (both strings, as nova compares them) and removes
//! the request.

use std::fmt;

use zeroize::Zeroizing;

/// Longest request read: a base64 `injectfile` of the largest xenstore
/// value (4096 bytes) fits.
pub const MAX_REQUEST: usize = 4096;

/// The return codes nova and its agents use.
pub mod code {
    /// Done.
    pub const OK: &str = "0";
    /// `keyinit` done (the Windows agent's code, which nova expects).
    pub const KEY_INIT: &str = "D0";
    /// Not a command this agent knows or was allowed.
    pub const UNKNOWN: &str = "404";
    /// The command failed: the message says why.
    pub const FAILED: &str = "500";
}

/// A request, parsed.
#[derive(PartialEq, Eq)]
pub enum Command {
    /// The agent's version.
    Version,
    /// The commands this agent answers, as a comma list.
    Features,
    /// dom0's Diffie-Hellman public key, in decimal.
    KeyInit(String),
    /// The new root password, encrypted with the exchanged key (base64);
    /// wiped when dropped.
    Password(Zeroizing<String>),
    /// base64 of `<path>,<contents>`.
    InjectFile(String),
    /// Apply `vm-data/networking/*` and `vm-data/hostname`.
    ResetNetwork,
    /// Any other name (nova's `agentupdate`, Rackspace's `kmsactivate`...).
    Other(String),
}

impl Command {
    /// The command's name on the wire.
    pub fn name(&self) -> &str {
        match self {
            Command::Version => "version",
            Command::Features => "features",
            Command::KeyInit(_) => "keyinit",
            Command::Password(_) => "password",
            Command::InjectFile(_) => "injectfile",
            Command::ResetNetwork => "resetnetwork",
            Command::Other(name) => name,
        }
    }
}

/// Never the argument: a password must not reach a log through `{:?}`.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({})", self.name())
    }
}

/// Why a request is not one: said in the `500` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse a request's JSON. `value` must be a string for the commands that
/// take one; for the others it is ignored, as nova's agents do.
pub fn parse(text: &str) -> Result<Command, Malformed> {
    let bad = |what: &str| Malformed(format!("malformed request: {what}"));
    if text.len() > MAX_REQUEST {
        return Err(bad(&format!("{} bytes, over {MAX_REQUEST}", text.len())));
    }
    let mut json: serde_json::Value =
        serde_json::from_str(text).map_err(|_| bad("not JSON {\"name\": ..., \"value\": ...}"))?;
    let obj = json
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object"))?;
    let name = match obj.get("name") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("\"name\" is not a string")),
        None => return Err(bad("no \"name\"")),
    };
    // Taken out of the JSON, so that the password is wiped when dropped.
    let value = match obj.remove("value") {
        Some(serde_json::Value::String(s)) => Some(Zeroizing::new(s)),
        _ => None,
    };
    let need = |value: Option<Zeroizing<String>>| {
        value.ok_or_else(|| bad(&format!("\"{name}\" needs a string \"value\"")))
    };
    Ok(match name.as_str() {
        "version" => Command::Version,
        "features" => Command::Features,
        "keyinit" => Command::KeyInit(need(value)?.to_string()),
        "password" => Command::Password(need(value)?),
        "injectfile" => Command::InjectFile(need(value)?.to_string()),
        "resetnetwork" => Command::ResetNetwork,
        _ => Command::Other(name),
    })
}

/// An answer: written once to `data/guest/<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `returncode`.
    pub code: &'static str,
    /// `message`.
    pub message: String,
}

impl Answer {
    /// A `0` answer.
    pub fn ok(message: impl Into<String>) -> Answer {
        Answer {
            code: code::OK,
            message: message.into(),
        }
    }

    /// A `500` answer.
    pub fn failed(message: impl Into<String>) -> Answer {
        Answer {
            code: code::FAILED,
            message: message.into(),
        }
    }

    /// The JSON dom0 reads.
    pub fn to_json(&self) -> String {
        serde_json::json!({"returncode": self.code, "message": self.message}).to_string()
    }
}
