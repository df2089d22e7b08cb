//! The request task's OpenStack half: find the commands waiting in
//! `data/host/`, run each once, answer it in `data/guest/<id>` and remove
//! it, in one transaction that first checks it is still the one run.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use tokio::time::Instant;
use zeroize::Zeroizing;

use super::network::{HOSTNAME, MAX_ENTRY, NETWORKING};
use super::protocol::{self, Answer, Command, MAX_REQUEST};
use super::{Step, ANSWERS, REQUESTS};
use crate::publishers::xenstore::native::{Errno, Lost, Reply, Request};
use crate::requests::{static_ip, OsHandled, Task, RETRIES};

/// A request's hash: to tell it again without keeping it.
fn hash_of(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl Task {
    /// Run and answer every command waiting; when the rate limit stops it,
    /// when to go on.
    pub(in crate::requests) async fn scan_openstack(&mut self) -> Result<Option<Instant>, Lost> {
        let list = [Request::Directory {
            tx: 0,
            path: REQUESTS,
        }];
        let ids = match self.batch(&list).await?.into_iter().next() {
            Some(Ok(Reply::Children(ids))) => ids,
            _ => Vec::new(),
        };
        self.os_handled.retain(|id, _| ids.contains(id));
        for id in ids {
            let path = format!("{REQUESTS}/{id}");
            let Some((text, trusted)) = self.read_trusted(&path, MAX_REQUEST).await? else {
                continue;
            };
            let hash = hash_of(&text);
            if let Some(h) = self.os_handled.get(&id) {
                if h.hash == hash {
                    if !h.ack_failed {
                        let answer = h.answer.clone();
                        log::debug!("requests: {path}: seen again, answered as before");
                        self.os_answer(&id, hash, &answer).await?;
                    }
                    continue;
                }
            }
            if let Err(at) = self.bucket.take(Instant::now()) {
                log::debug!("requests: rate limit reached; going on at {at:?}");
                return Ok(Some(at));
            }
            let (name, answer) = if !trusted {
                let msg = "refused: this request can be written by a domain other than dom0 \
                           and this guest (check its permissions)";
                ("?".to_string(), Answer::failed(msg))
            } else {
                match protocol::parse(&text) {
                    Err(e) => ("?".to_string(), Answer::failed(e.to_string())),
                    Ok(command) => (
                        command.name().to_string(),
                        self.run_command(&command).await?,
                    ),
                }
            };
            drop(text);
            let audit = format!(
                "OpenStack command {path} ({name}): {} {}",
                answer.code, answer.message
            );
            if answer.code == protocol::code::OK || answer.code == protocol::code::KEY_INIT {
                log::info!("{audit}");
            } else {
                log::warn!("{audit}");
            }
            self.os_handled.insert(
                id.clone(),
                OsHandled {
                    hash,
                    answer: answer.clone(),
                    ack_failed: false,
                },
            );
            self.os_answer(&id, hash, &answer).await?;
        }
        Ok(None)
    }

    async fn run_command(&mut self, command: &Command) -> Result<Answer, Lost> {
        let Some(commands) = self.openstack.as_mut() else {
            return Ok(Answer::failed("OpenStack commands are not handled"));
        };
        match commands.handle(command).await {
            Step::Answer(a) => Ok(a),
            Step::ResetNetwork => self.reset_network().await,
        }
    }

    /// Read `vm-data/networking/*` and `vm-data/hostname` (refusing what
    /// another domain could have written), then apply them.
    async fn reset_network(&mut self) -> Result<Answer, Lost> {
        let list = [Request::Directory {
            tx: 0,
            path: NETWORKING,
        }];
        let keys = match self.batch(&list).await?.into_iter().next() {
            Some(Ok(Reply::Children(keys))) => keys,
            _ => Vec::new(),
        };
        let mut entries = Vec::new();
        for key in keys {
            let path = format!("{NETWORKING}/{key}");
            match self.read_trusted(&path, MAX_ENTRY).await? {
                Some((text, true)) => entries.push((key, text.to_string())),
                Some((_, false)) => {
                    return Ok(Answer::failed(format!(
                        "refused: {path} can be written by a domain other than dom0 and this guest"
                    )))
                }
                None => {}
            }
        }
        let host_name = match self.read_trusted(HOSTNAME, MAX_ENTRY).await? {
            Some((text, true)) => Some(text.to_string()),
            Some((_, false)) => {
                return Ok(Answer::failed(format!(
                    "refused: {HOSTNAME} can be written by a domain other than dom0 and this guest"
                )))
            }
            None => None,
        };
        let Some(net) = self.net.as_mut() else {
            return Ok(Answer::failed("resetnetwork: no network applier"));
        };
        Ok(super::reset_network(net, &self.root, &entries, host_name.as_deref()).await)
    }

    /// A node's value (at most `max` bytes) and whether only dom0 and the
    /// guest can write it; `None` when it is not there or too long.
    async fn read_trusted(
        &mut self,
        path: &str,
        max: usize,
    ) -> Result<Option<(Zeroizing<String>, bool)>, Lost> {
        let answers = self
            .batch(&[
                Request::Read { tx: 0, path },
                Request::GetPerms { tx: 0, path },
            ])
            .await?;
        let mut answers = answers.into_iter();
        let text = match answers.next() {
            Some(Ok(Reply::Value(v))) => Zeroizing::new(v),
            _ => return Ok(None),
        };
        if text.len() > max {
            log::warn!(
                "requests: {path}: {} bytes, over {max}: not read",
                text.len()
            );
            return Ok(None);
        }
        let trusted = match (answers.next(), self.own_domid) {
            (Some(Ok(Reply::Perms(p))), Some(own)) => !static_ip::writable_by_others(&p, own),
            _ => false,
        };
        Ok(Some((text, trusted)))
    }

    /// Write the answer and remove the request, if it is still the one run.
    async fn os_answer(&mut self, id: &str, hash: u64, answer: &Answer) -> Result<(), Lost> {
        let request = format!("{REQUESTS}/{id}");
        let reply = format!("{ANSWERS}/{id}");
        let json = answer.to_json();
        for _ in 0..RETRIES {
            let start = self.batch(&[Request::TransactionStart]).await?;
            let Some(Ok(Reply::Transaction(tx))) = start.first().cloned() else {
                return Ok(());
            };
            let read = self.batch(&[Request::Read { tx, path: &request }]).await?;
            let same = matches!(read.first(), Some(Ok(Reply::Value(v))) if hash_of(v) == hash);
            if !same {
                // Gone (dom0 gave up) or replaced: nothing to answer.
                self.batch(&[Request::TransactionEnd { tx, commit: false }])
                    .await?;
                return Ok(());
            }
            let writes = [
                Request::Write {
                    tx,
                    path: &reply,
                    value: &json,
                },
                Request::Remove { tx, path: &request },
                Request::TransactionEnd { tx, commit: true },
            ];
            let answers = self.batch(&writes).await?;
            match answers.last() {
                Some(Ok(_)) => {
                    if let Some(e) = answers.iter().find_map(|a| a.as_ref().err()) {
                        self.os_ack_failed(id, &format!("{e}"));
                    }
                    return Ok(());
                }
                Some(Err(Errno::EAGAIN)) => continue,
                other => {
                    self.os_ack_failed(id, &format!("{other:?}"));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn os_ack_failed(&mut self, id: &str, why: &str) {
        if let Some(h) = self.os_handled.get_mut(id) {
            if !std::mem::replace(&mut h.ack_failed, true) {
                log::warn!(
                    "requests: {REQUESTS}/{id}: cannot write {ANSWERS}/{id} or remove the request \
                     ({why}); it is not run again while it stays the same"
                );
            }
        }
    }
}
