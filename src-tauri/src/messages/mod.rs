//! Messages between people and to park channels, and the shift log: the rules, over the store.
//!
//! Why here and not in `api`: the rules (who may write to whom, limits, what a handover records)
//! are the same for every transport and are tested without one. The api layer resolves the
//! caller (a [`Caller`]: plain data, since this module sits below `auth`), calls these
//! functions, and turns what they return into replies and pushes. Every message and entry is
//! stored append-only; every entry, send and confirmation is one audit row written in the same
//! transaction (no row, no change).

mod handover;
mod limiter;
mod logbook;
mod presence;
mod text;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use crate::code::Code;
use crate::config::MessagesConfig;
use crate::store::audit::{self, AuditEntry};
use crate::store::messages::{self as db, ConvRow, MessageRow, NewMessage, Read};
use crate::store::{users, Store, StoreError};

pub use handover::{HandoverSource, NoHandoverSource};
pub use logbook::{Category, EntryQuery, CATEGORIES};
pub use presence::{share, ClientKind, ClientView, Online, Presence, UserPresence};
pub use text::{MAX_ENTRY_CHARS, MAX_MESSAGE_CHARS};

/// Messages per user per [`RATE_WINDOW`].
pub const RATE_MAX: usize = 10;
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Messages per page by default and at most.
pub const PAGE_DEFAULT: u32 = 50;
pub const PAGE_MAX: u32 = 200;
/// Direct conversations listed at most.
pub const CONVERSATIONS_MAX: u32 = 200;
/// Read receipts per request at most.
pub const READ_MAX: usize = 500;
/// Rows of one export at most (a longer range must be split).
pub const EXPORT_MAX: u32 = 100_000;
/// The prefix of a channel address.
pub const CHANNEL_PREFIX: &str = "park:";

/// A refusal with its wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MsgError {
    pub code: Code,
    pub message: String,
    /// Seconds until a send can succeed again (`rate_limited`).
    pub retry_after_s: Option<u64>,
}

impl MsgError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }
}

impl crate::code::ErrorCode for MsgError {
    fn code(&self) -> Code {
        self.code
    }
}

impl From<StoreError> for MsgError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => MsgError::new(Code::NotFound, m),
            other => {
                tracing::error!(error = %other, "messages: database error");
                MsgError::new(
                    Code::Unavailable,
                    "the message store cannot be written or read right now; nothing was changed",
                )
            }
        }
    }
}

/// Who is asking, as the api resolved it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub superuser: bool,
    /// The configured parks the caller may see, sorted.
    pub parks: Vec<String>,
    /// An audit entry with actor, role and source filled in (action etc. are set here).
    pub audit: AuditEntry,
}

impl Caller {
    fn sees(&self, park: &str) -> bool {
        self.parks.iter().any(|p| p == park)
    }
    fn park_set(&self) -> Option<BTreeSet<String>> {
        (!self.superuser).then(|| self.parks.iter().cloned().collect())
    }
    fn entry(&self, action: &str, target: &str, new_value: Option<String>) -> AuditEntry {
        AuditEntry {
            action: action.into(),
            target: Some(target.into()),
            new_value,
            result: "ok".into(),
            ..self.audit.clone()
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Everyone granted the park (`park:<id>`).
    Channel(String),
    /// One user (and the sender's other sessions).
    User { id: i64, username: String },
}

/// A stored message and who gets it in real time.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: MessageRow,
    pub target: Target,
}

/// Read receipts for one sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub sender_id: i64,
    pub ids: Vec<i64>,
    pub read_at: DateTime<Utc>,
}

/// One conversation of the caller.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The peer's username (direct conversations).
    pub with: Option<String>,
    /// `park:<id>` (channels).
    pub channel: Option<String>,
    pub unread: u64,
    pub last: Option<MessageRow>,
}

/// Which conversation a request names: `with` a user or a `channel`, exactly one.
pub fn conversation_of(with: Option<&str>, channel: Option<&str>) -> Result<ConvRef, MsgError> {
    match (with, channel) {
        (Some(w), None) => Ok(ConvRef::With(w.to_string())),
        (None, Some(c)) => Ok(ConvRef::Channel(parse_channel(c)?.to_string())),
        _ => Err(MsgError::new(
            Code::Invalid,
            "name exactly one of with (a username) or channel (park:<id>)",
        )),
    }
}

/// A conversation as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvRef {
    With(String),
    Channel(String),
}

fn parse_channel(c: &str) -> Result<&str, MsgError> {
    match c.strip_prefix(CHANNEL_PREFIX) {
        Some(p) if !p.is_empty() && p.len() <= 64 => Ok(p),
        _ => Err(MsgError::new(
            Code::Invalid,
            format!("{c:?} is not a channel such as park:<id>"),
        )),
    }
}

struct Inner {
    store: Store,
    cfg: MessagesConfig,
    limiter: limiter::Limiter,
    presence: Presence,
    handover: RwLock<Arc<dyn HandoverSource>>,
}

/// The messaging and shift-log service. Cheap to clone.
#[derive(Clone)]
pub struct Messages {
    inner: Arc<Inner>,
}

impl Messages {
    pub fn new(store: Store, cfg: MessagesConfig) -> Messages {
        Messages {
            inner: Arc::new(Inner {
                store,
                cfg,
                limiter: limiter::Limiter::new(RATE_MAX, RATE_WINDOW),
                presence: Presence::default(),
                handover: RwLock::new(Arc::new(NoHandoverSource)),
            }),
        }
    }

    /// The settings (canned phrases, viewers' sending).
    pub fn config(&self) -> &MessagesConfig {
        &self.inner.cfg
    }

    /// Who is online.
    pub fn presence(&self) -> &Presence {
        &self.inner.presence
    }

    /// Where handover entries take the open alarms and service state of a park from (the
    /// alarm and service subsystems plug in here; until then a handover records none).
    pub fn set_handover_source(&self, source: Arc<dyn HandoverSource>) {
        *self.inner.handover.write() = source;
    }

    fn handover_source(&self) -> Arc<dyn HandoverSource> {
        self.inner.handover.read().clone()
    }

    /// Stores a message from `caller` to `to` (a username or `park:<id>`) and says who gets it.
    /// Checks in order: text/alarm/ref (`invalid`), recipient (`not_found`, `forbidden`: a
    /// channel of a park not visible, a user sharing no park unless the caller is a superuser,
    /// a disabled user, oneself), the rate (`rate_limited`), then one transaction of the
    /// message, its recipients and the audit row.
    pub async fn send(
        &self,
        caller: &Caller,
        to: &str,
        text_: String,
        alarm: Option<String>,
        reference: Option<String>,
    ) -> Result<Sent, MsgError> {
        text::check_text("text", &text_, MAX_MESSAGE_CHARS)?;
        if let Some(a) = &alarm {
            text::check_alarm(a)?;
        }
        if let Some(r) = &reference {
            text::check_ref(r)?;
        }
        let target = self.resolve(caller, to).await?;
        self.inner
            .limiter
            .take(caller.user_id, Instant::now())
            .map_err(|wait| MsgError {
                retry_after_s: Some(wait),
                ..MsgError::new(
                    Code::RateLimited,
                    format!(
                        "more than {RATE_MAX} messages in {} s; wait {wait} s",
                        RATE_WINDOW.as_secs()
                    ),
                )
            })?;
        let (conv, recipient_id, recipient) = match &target {
            Target::Channel(p) => (db::channel_conv(p), None, db::channel_conv(p)),
            Target::User { id, username } => (
                db::direct_conv(caller.user_id, *id),
                Some(*id),
                username.clone(),
            ),
        };
        let m = NewMessage {
            conv,
            sender_id: caller.user_id,
            sender: caller.username.clone(),
            recipient_id,
            recipient,
            text: text_,
            alarm,
            reference,
        };
        let me = self.clone();
        let sender = caller.user_id;
        let audit_entry = caller.entry("message_send", &m.recipient, None);
        let target2 = target.clone();
        let message = self
            .inner
            .store
            .write(move |tx| {
                let now = Utc::now();
                let recipients: Vec<i64> = match &target2 {
                    Target::Channel(p) => db::park_members(tx, p)?
                        .into_iter()
                        .filter(|u| *u != sender)
                        .collect(),
                    Target::User { id, .. } => vec![*id],
                };
                let presence = &me.inner.presence;
                let id = db::insert(tx, &m, &recipients, |u| presence.is_online(u), now)?;
                let entry = AuditEntry {
                    new_value: Some(format!("message {id}")),
                    ..audit_entry
                };
                audit::append(tx, &entry, now)?;
                db::get(tx, sender, id)?
                    .ok_or_else(|| StoreError::NotFound(format!("message {id} vanished")))
            })
            .await?;
        Ok(Sent { message, target })
    }

    async fn resolve(&self, caller: &Caller, to: &str) -> Result<Target, MsgError> {
        if to.starts_with(CHANNEL_PREFIX) {
            let park = parse_channel(to)?;
            if !caller.sees(park) {
                return Err(MsgError::new(
                    Code::Forbidden,
                    format!("no access to the channel {to}"),
                ));
            }
            return Ok(Target::Channel(park.to_string()));
        }
        if to.is_empty() || to.len() > 64 {
            return Err(MsgError::new(
                Code::Invalid,
                "to must be a username or park:<id>",
            ));
        }
        let name = to.to_string();
        let parks = caller.parks.clone();
        let (user, shares) = self
            .inner
            .store
            .read(move |c| {
                let Some(u) = users::by_name(c, &name)? else {
                    return Ok((None, false));
                };
                let shares = db::shares_park(c, u.id, &parks)?;
                Ok((Some(u), shares))
            })
            .await?;
        let Some(user) = user else {
            return Err(MsgError::new(Code::NotFound, format!("no user {to:?}")));
        };
        if user.id == caller.user_id {
            return Err(MsgError::new(Code::Invalid, "a message to oneself"));
        }
        if !user.active {
            return Err(MsgError::new(
                Code::Forbidden,
                format!("{} is disabled and receives no messages", user.username),
            ));
        }
        if !caller.superuser && !shares {
            return Err(MsgError::new(
                Code::Forbidden,
                format!("{} shares no park with you", user.username),
            ));
        }
        Ok(Target::User {
            id: user.id,
            username: user.username,
        })
    }

    /// The conversation key of `r` for `caller`: a channel must be visible; `with` must name a
    /// user (`not_found`).
    async fn conv_key(&self, caller: &Caller, r: &ConvRef) -> Result<String, MsgError> {
        match r {
            ConvRef::Channel(p) => {
                if !caller.sees(p) {
                    return Err(MsgError::new(
                        Code::Forbidden,
                        format!("no access to the channel park:{p}"),
                    ));
                }
                Ok(db::channel_conv(p))
            }
            ConvRef::With(name) => {
                let id = self.user_id(name).await?;
                Ok(db::direct_conv(caller.user_id, id))
            }
        }
    }

    async fn user_id(&self, name: &str) -> Result<i64, MsgError> {
        if name.is_empty() || name.len() > 64 {
            return Err(MsgError::new(
                Code::Invalid,
                "a username has 1-64 characters",
            ));
        }
        let n = name.to_string();
        self.inner
            .store
            .read(move |c| users::by_name(c, &n))
            .await?
            .map(|u| u.id)
            .ok_or_else(|| MsgError::new(Code::NotFound, format!("no user {name:?}")))
    }

    /// A page of a conversation, newest first.
    pub async fn history(
        &self,
        caller: &Caller,
        conv: ConvRef,
        before_id: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<MessageRow>, MsgError> {
        let limit = limit.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(MsgError::new(
                Code::Invalid,
                format!("limit must be 1-{PAGE_MAX}"),
            ));
        }
        let key = self.conv_key(caller, &conv).await?;
        let reader = caller.user_id;
        Ok(self
            .inner
            .store
            .read(move |c| db::page(c, reader, &key, before_id, limit))
            .await?)
    }

    /// Marks `ids` read by the caller; one receipt per sender for the ones read now.
    pub async fn mark_read(
        &self,
        caller: &Caller,
        ids: Vec<i64>,
    ) -> Result<Vec<Receipt>, MsgError> {
        if ids.is_empty() || ids.len() > READ_MAX {
            return Err(MsgError::new(
                Code::Invalid,
                format!("ids must list 1-{READ_MAX} message ids"),
            ));
        }
        let reader = caller.user_id;
        let read: Vec<Read> = self
            .inner
            .store
            .write(move |tx| db::mark_read(tx, reader, &ids, Utc::now()))
            .await
            .map_err(|e| match e {
                StoreError::NotFound(m) => MsgError::new(Code::Forbidden, m),
                other => other.into(),
            })?;
        let mut out: Vec<Receipt> = Vec::new();
        for r in read {
            match out.iter_mut().find(|x| x.sender_id == r.sender_id) {
                Some(x) => x.ids.push(r.id),
                None => out.push(Receipt {
                    sender_id: r.sender_id,
                    ids: vec![r.id],
                    read_at: r.read_at,
                }),
            }
        }
        Ok(out)
    }

    /// The caller's conversations: direct ones (most recent first), then the channels of their
    /// parks. Whatever was waiting for them counts as delivered from now on.
    pub async fn conversations(&self, caller: &Caller) -> Result<Vec<Conversation>, MsgError> {
        let reader = caller.user_id;
        let parks = caller.parks.clone();
        let pending = self
            .inner
            .store
            .read(move |c| db::has_undelivered(c, reader))
            .await?;
        if pending {
            self.inner
                .store
                .write(move |tx| db::mark_delivered(tx, reader, Utc::now()))
                .await?;
        }
        let rows: Vec<ConvRow> = self
            .inner
            .store
            .read(move |c| db::conversations(c, reader, &parks, CONVERSATIONS_MAX))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let channel = r.conv.starts_with(CHANNEL_PREFIX).then(|| r.conv.clone());
                let with = match (&channel, &r.last) {
                    (None, Some(m)) if m.sender_id == reader => Some(m.recipient.clone()),
                    (None, Some(m)) => Some(m.sender.clone()),
                    _ => None,
                };
                Conversation {
                    with,
                    channel,
                    unread: r.unread,
                    last: r.last,
                }
            })
            .collect())
    }

    /// The users online that the caller may see.
    pub fn online(&self, caller: &Caller) -> Vec<UserPresence> {
        self.inner.presence.visible_to(caller.park_set().as_ref())
    }

    /// A conversation (`users`: two usernames) or channel in a time range, oldest first, for
    /// export. A park-limited exporter sees channels of their parks and conversations of users
    /// who share one of them; one audit row records the export.
    pub async fn export(
        &self,
        caller: &Caller,
        conv: ExportRef,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<MessageRow>, MsgError> {
        let key = match &conv {
            ExportRef::Channel(p) => self.conv_key(caller, &ConvRef::Channel(p.clone())).await?,
            ExportRef::Users(a, b) => {
                let (ia, ib) = (self.user_id(a).await?, self.user_id(b).await?);
                if !caller.superuser {
                    let parks = caller.parks.clone();
                    let ok = self
                        .inner
                        .store
                        .read(move |c| {
                            Ok(db::shares_park(c, ia, &parks)? && db::shares_park(c, ib, &parks)?)
                        })
                        .await?;
                    if !ok {
                        return Err(MsgError::new(
                            Code::Forbidden,
                            "both users must share a park with you",
                        ));
                    }
                }
                db::direct_conv(ia, ib)
            }
        };
        let target = key.clone();
        let entry = caller.entry(
            "messages_export",
            &target,
            Some(format!(
                "{} .. {}",
                from.map(|t| t.to_rfc3339()).unwrap_or_default(),
                to.map(|t| t.to_rfc3339()).unwrap_or_default()
            )),
        );
        let rows = self
            .inner
            .store
            .transaction(move |tx| {
                let rows = db::range(tx, &key, from, to, EXPORT_MAX + 1)?;
                if rows.len() as u32 > EXPORT_MAX {
                    return Err(MsgError::new(
                        Code::Invalid,
                        format!(
                            "more than {EXPORT_MAX} messages in the range; export a shorter one"
                        ),
                    ));
                }
                audit::append(tx, &entry, Utc::now())?;
                Ok(rows)
            })
            .await?;
        Ok(rows)
    }
}

/// What an export names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportRef {
    Channel(String),
    Users(String, String),
}

impl ExportRef {
    /// `channel=park:<id>` or `users=<a>,<b>`, exactly one.
    pub fn parse(channel: Option<&str>, users: Option<&str>) -> Result<ExportRef, MsgError> {
        match (channel, users) {
            (Some(c), None) => Ok(ExportRef::Channel(parse_channel(c)?.to_string())),
            (None, Some(u)) => match u.split_once(',') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() && a != b => {
                    Ok(ExportRef::Users(a.trim().into(), b.trim().into()))
                }
                _ => Err(MsgError::new(
                    Code::Invalid,
                    "users must be two different usernames: <a>,<b>",
                )),
            },
            _ => Err(MsgError::new(
                Code::Invalid,
                "name exactly one of channel (park:<id>) or users (<a>,<b>)",
            )),
        }
    }
}

/// The CSV header of [`csv_line`].
pub const CSV_HEADER: &str = "id,sent_at,from,to,text,alarm,ref\n";

/// One message as a CSV line (fields quoted as the audit export quotes them).
pub fn csv_line(m: &MessageRow) -> String {
    let f = audit::csv_field;
    format!(
        "{},{},{},{},{},{},{}\n",
        m.id,
        f(&crate::store::ts(m.sent_at)),
        f(&m.sender),
        f(&m.recipient),
        f(&m.text),
        f(m.alarm.as_deref().unwrap_or("")),
        f(m.reference.as_deref().unwrap_or(""))
    )
}
