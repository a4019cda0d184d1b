//! Messages, presence and the shift log over the one dispatcher: resolves the checked principal
//! into a [`Caller`], runs `crate::messages`, answers with typed replies and pushes what others
//! must see at once (`message`, `receipt`, `presence`, `logbook`).

use std::collections::BTreeSet;

use chrono::Utc;

use super::request::*;
use super::wire::*;
use super::{Api, ApiError, Audience};
use crate::auth::{role_allows, Parks, Permission, Principal, Role, Source};
use crate::messages::{
    conversation_of, ClientKind, EntryQuery, ExportRef, MsgError, Online, Target, CSV_HEADER,
};

impl From<MsgError> for ApiError {
    fn from(e: MsgError) -> Self {
        ApiError {
            code: e.code,
            message: e.message,
            retry_after_s: e.retry_after_s,
        }
    }
}

/// The caller as the messages module knows it.
fn caller(api: &Api, p: &Principal) -> crate::messages::Caller {
    crate::messages::Caller {
        user_id: p.user_id,
        username: p.username.clone(),
        superuser: p.parks == Parks::All,
        parks: api.visible_parks(&p.parks),
        audit: p.audit_entry("", None, "ok"),
    }
}

/// Whether `p` may send: the role table's SendMessages, or a viewer when the configuration
/// lets viewers send (a policy switch like `remote.allow_remote_writes`, so it is applied here
/// on top of the access check rather than in the role table).
fn may_send(api: &Api, p: &Principal) -> bool {
    role_allows(p.role, Permission::SendMessages)
        || (p.role == Role::Viewer && api.messages().config().viewers_may_send)
}

fn bound(s: Option<String>, end: bool) -> Result<Option<chrono::DateTime<Utc>>, ApiError> {
    s.map(|s| crate::store::bound::parse_bound(&s, end).map_err(ApiError::invalid))
        .transpose()
}

/// Runs one messages/shift-log request for the checked principal.
pub(super) async fn run(
    api: &Api,
    p: &Principal,
    req: Request,
) -> Result<serde_json::Value, ApiError> {
    use super::wire::to_value as v;
    let m = api.messages();
    let c = caller(api, p);
    match req {
        Request::MessageSend(r) => {
            if !may_send(api, p) {
                return Err(ApiError::forbidden(Permission::SendMessages.only_message()));
            }
            let sent = m.send(&c, &r.to, r.text, r.alarm, r.reference).await?;
            let audience = match &sent.target {
                Target::Channel(park) => Audience::Park(park.clone()),
                Target::User { id, .. } => Audience::Users(vec![*id, p.user_id]),
            };
            api.push(
                audience,
                &MessagePush {
                    kind: "message",
                    message: sent.message.clone().into(),
                },
            );
            v(&MessageSent {
                message: sent.message.into(),
            })
        }
        Request::Messages(r) => {
            let conv = conversation_of(r.with.as_deref(), r.channel.as_deref())?;
            let rows = m.history(&c, conv, r.before_id, r.limit).await?;
            v(&MessagesPage {
                messages: rows.into_iter().map(MessageView::from).collect(),
            })
        }
        Request::MessageRead(r) => {
            let receipts = m.mark_read(&c, r.ids).await?;
            let mut ids = Vec::new();
            let mut read_at = Utc::now();
            for rc in receipts {
                ids.extend(rc.ids.iter().copied());
                read_at = rc.read_at;
                api.push(
                    Audience::Users(vec![rc.sender_id]),
                    &ReceiptPush {
                        kind: "receipt",
                        ids: rc.ids,
                        by: p.username.clone(),
                        read_at: rc.read_at,
                    },
                );
            }
            v(&ReadReply { ids, read_at })
        }
        Request::Conversations(_) => {
            let rows = m.conversations(&c).await?;
            v(&ConversationsReply {
                conversations: rows.into_iter().map(ConversationView::from).collect(),
                can_send: may_send(api, p),
                phrases: m.config().phrases.clone(),
            })
        }
        Request::Presence(_) => v(&PresenceReply {
            users: m.online(&c),
        }),
        Request::MessagesExport(r) => {
            let rows = export(api, p, r).await?;
            v(&MessagesCsv { csv: rows })
        }
        Request::LogbookAdd(r) => {
            let e = m
                .logbook_add(&c, &r.park, &r.category, r.text, r.alarm)
                .await?;
            push_entry(api, &EntryView::from(e.clone()));
            v(&EntryReply { entry: e.into() })
        }
        Request::Logbook(r) => {
            let q = EntryQuery {
                park: r.park,
                from: bound(r.from, false)?,
                to: bound(r.to, true)?,
                category: r.category,
                before_id: r.before_id,
                limit: r.limit,
            };
            let rows = m.logbook(&c, q).await?;
            v(&EntriesReply {
                entries: rows.into_iter().map(EntryView::from).collect(),
            })
        }
        Request::LogbookAck(r) => {
            let e = m.logbook_ack(&c, r.entry).await?;
            push_entry(api, &EntryView::from(e.clone()));
            v(&EntryReply { entry: e.into() })
        }
        other => Err(ApiError::internal(format!(
            "{} is not a messages request",
            other.op()
        ))),
    }
}

fn push_entry(api: &Api, e: &EntryView) {
    api.push(
        Audience::Park(e.park.clone()),
        &LogbookPush {
            kind: "logbook",
            entry: e.clone(),
        },
    );
}

/// The CSV of an export (`messages_export` and `GET /api/messages/export`).
pub(super) async fn export(
    api: &Api,
    p: &Principal,
    r: MessagesExportReq,
) -> Result<String, ApiError> {
    let what = ExportRef::parse(r.channel.as_deref(), r.users.as_deref())?;
    let (from, to) = (bound(r.from, false)?, bound(r.to, true)?);
    let rows = api
        .messages()
        .export(&caller(api, p), what, from, to)
        .await?;
    let mut out = String::from(CSV_HEADER);
    for m in &rows {
        out += &crate::messages::csv_line(m);
    }
    Ok(out)
}

/// A live client listed by `presence` for as long as it lives: created by the transports when
/// a session's WebSocket (or the panel window's session) goes live, dropped when it ends. Each
/// change pushes `{"type":"presence",…}` to the users sharing a park.
pub struct OnlineGuard {
    api: Api,
    key: Option<u64>,
    user_id: i64,
    online: Online,
}

impl Api {
    /// Lists `p` as online on a client of the kind its source says until the guard drops.
    pub fn online(&self, p: &Principal) -> OnlineGuard {
        let kind = match p.source {
            Source::Panel => ClientKind::Panel,
            _ => ClientKind::Browser,
        };
        let parks: Option<BTreeSet<String>> = match &p.parks {
            Parks::All => None,
            Parks::Only(_) => Some(self.visible_parks(&p.parks).into_iter().collect()),
        };
        let online = Online {
            user_id: p.user_id,
            username: p.username.clone(),
            kind,
            since: Utc::now(),
            parks,
        };
        let key = self.messages().presence().enter(online.clone());
        let g = OnlineGuard {
            api: self.clone(),
            key,
            user_id: p.user_id,
            online,
        };
        if key.is_some() {
            g.announce();
        }
        g
    }
}

impl OnlineGuard {
    fn announce(&self) {
        let presence = self.api.messages().presence();
        let now = presence.of_user(self.user_id, &self.online.username);
        let audience = presence.audience_of(&self.online);
        if audience.is_empty() {
            return;
        }
        self.api.push(
            Audience::Users(audience),
            &PresencePush {
                kind: "presence",
                online: !now.clients.is_empty(),
                username: now.username,
                clients: now.clients,
            },
        );
    }
}

impl Drop for OnlineGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.api.messages().presence().leave(key);
            self.announce();
        }
    }
}

/// What a handover entry records (issue 15): the park's alarms as the alarm summary lists them
/// (active, unacknowledged, shelved, out of service, without their tag) and its service banner
/// (`{"park","active":false}` when not in service), both as their wire objects. Plugged into
/// `crate::messages` when the api is built.
pub(super) struct Handover {
    pub alarms: crate::alarms::Alarms,
    pub service: crate::service::ServiceModes,
}

impl crate::messages::HandoverSource for Handover {
    fn open_alarms(&self, park: &str) -> Vec<serde_json::Value> {
        self.alarms
            .list(|p| p == park)
            .into_iter()
            .filter_map(|a| serde_json::to_value(alarms::AlarmView::from(a)).ok())
            .collect()
    }

    fn service_state(&self, park: &str) -> serde_json::Value {
        let banner = match self.service.get(park) {
            Some(p) => ServiceBanner::of(&p),
            None => ServiceBanner::ended(park),
        };
        serde_json::to_value(banner).unwrap_or_default()
    }
}
