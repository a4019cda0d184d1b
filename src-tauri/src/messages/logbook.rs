//! The shift log: entries per park (note, handover, maintenance, incident), a handover's
//! snapshot, and its confirmation by the incoming operator.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{text, Caller, Messages, MsgError, MAX_ENTRY_CHARS};
use crate::code::Code;
use crate::store::audit::{self, AuditEntry};
use crate::store::logbook::{self as db, EntryFilter, EntryRow, NewEntry};
use crate::store::StoreError;

/// The categories, as on the wire.
pub const CATEGORIES: [&str; 4] = ["note", "handover", "maintenance", "incident"];

/// A category name checked against [`CATEGORIES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Category(&'static str);

impl Category {
    pub fn parse(s: &str) -> Result<Category, MsgError> {
        CATEGORIES
            .iter()
            .find(|c| **c == s)
            .map(|c| Category(c))
            .ok_or_else(|| {
                MsgError::new(
                    Code::Invalid,
                    format!("category must be one of {}", CATEGORIES.join(", ")),
                )
            })
    }
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Entries per page by default and at most.
pub const PAGE_DEFAULT: u32 = 50;
pub const PAGE_MAX: u32 = 200;

/// A `logbook` request, parsed.
#[derive(Debug, Clone, Default)]
pub struct EntryQuery {
    pub park: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub category: Option<String>,
    pub before_id: Option<i64>,
    pub limit: Option<u32>,
}

impl Messages {
    /// Adds an entry to `park`'s log (the api checked WriteLogbook and the park). A handover
    /// records the park's open alarms and service state now. One audit row with the entry.
    pub async fn logbook_add(
        &self,
        caller: &Caller,
        park: &str,
        category: &str,
        text_: String,
        alarm: Option<String>,
    ) -> Result<EntryRow, MsgError> {
        let category = Category::parse(category)?;
        text::check_text("text", &text_, MAX_ENTRY_CHARS)?;
        if let Some(a) = &alarm {
            text::check_alarm(a)?;
        }
        if !caller.sees(park) {
            return Err(MsgError::new(
                Code::Forbidden,
                format!("no access to park {park}"),
            ));
        }
        let snapshot = (category.as_str() == "handover").then(|| {
            let src = self.handover_source();
            json!({
                "alarms": src.open_alarms(park),
                "service": src.service_state(park),
            })
            .to_string()
        });
        let e = NewEntry {
            park: park.to_string(),
            category: category.as_str().to_string(),
            author_id: caller.user_id,
            author: caller.username.clone(),
            text: text_,
            alarm,
            snapshot,
        };
        let entry = caller.entry("logbook_add", park, None);
        Ok(self
            .inner
            .store
            .write(move |tx| {
                let now = Utc::now();
                let id = db::insert(tx, &e, now)?;
                let entry = AuditEntry {
                    new_value: Some(format!("entry {id} ({})", e.category)),
                    ..entry
                };
                audit::append(tx, &entry, now)?;
                db::get(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("entry {id} vanished")))
            })
            .await?)
    }

    /// A page of the log of the caller's parks (or of one of them), newest first.
    pub async fn logbook(&self, caller: &Caller, q: EntryQuery) -> Result<Vec<EntryRow>, MsgError> {
        let limit = q.limit.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(MsgError::new(
                Code::Invalid,
                format!("limit must be 1-{PAGE_MAX}"),
            ));
        }
        if let Some(c) = &q.category {
            Category::parse(c)?;
        }
        let parks = match &q.park {
            Some(p) if !caller.sees(p) => {
                return Err(MsgError::new(
                    Code::Forbidden,
                    format!("no access to park {p}"),
                ))
            }
            Some(p) => vec![p.clone()],
            None => caller.parks.clone(),
        };
        let f = EntryFilter {
            parks: Some(parks),
            from: q.from,
            to: q.to,
            category: q.category,
            before_id: q.before_id,
            limit,
        };
        Ok(self.inner.store.read(move |c| db::page(c, &f)).await?)
    }

    /// The caller confirms a handover entry of one of their parks (not their own). Confirming
    /// again changes nothing. The first confirmation is one audit row.
    pub async fn logbook_ack(&self, caller: &Caller, id: i64) -> Result<EntryRow, MsgError> {
        let c2 = caller.clone();
        let entry = caller.entry("logbook_ack", &format!("entry {id}"), None);
        self.inner
            .store
            .transaction(move |tx| {
                let Some(e) = db::get(tx, id)? else {
                    return Err(MsgError::new(Code::NotFound, format!("no entry {id}")));
                };
                if !c2.sees(&e.park) {
                    return Err(MsgError::new(
                        Code::Forbidden,
                        format!("no access to park {}", e.park),
                    ));
                }
                if e.category != "handover" {
                    return Err(MsgError::new(
                        Code::Invalid,
                        format!("entry {id} is a {}, not a handover", e.category),
                    ));
                }
                if e.author_id == c2.user_id {
                    return Err(MsgError::new(
                        Code::Invalid,
                        "the incoming operator confirms a handover, not its author",
                    ));
                }
                let now = Utc::now();
                if db::ack(tx, id, c2.user_id, &c2.username, now)? {
                    let entry = AuditEntry {
                        target: Some(e.park.clone()),
                        new_value: Some(format!("entry {id}")),
                        ..entry
                    };
                    audit::append(tx, &entry, now)?;
                }
                Ok(db::get(tx, id)?.unwrap_or(e))
            })
            .await
    }
}
