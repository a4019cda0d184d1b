//! The `messages` and `message_recipients` tables: append-only messages, delivery and read time
//! per recipient. The policy (who may send to whom, limits) lives in `crate::messages`.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{parse_ts, ts, StoreError};

/// One stored message as one reader sees it (`read_at` is that reader's view).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: i64,
    pub conv: String,
    pub sender_id: i64,
    pub sender: String,
    pub recipient_id: Option<i64>,
    pub recipient: String,
    pub text: String,
    pub alarm: Option<String>,
    pub reference: Option<String>,
    pub sent_at: DateTime<Utc>,
    /// For a message the reader received: when they read it. For a direct message the reader
    /// sent: when the peer read it. Otherwise `None`.
    pub read_at: Option<DateTime<Utc>>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conv: String,
    pub sender_id: i64,
    pub sender: String,
    pub recipient_id: Option<i64>,
    pub recipient: String,
    pub text: String,
    pub alarm: Option<String>,
    pub reference: Option<String>,
}

/// A direct conversation's key: the two user ids, smaller first.
pub fn direct_conv(a: i64, b: i64) -> String {
    format!("u:{}:{}", a.min(b), a.max(b))
}

/// A channel's key.
pub fn channel_conv(park: &str) -> String {
    format!("park:{park}")
}

/// The columns of [`MessageRow`]; `?1` is the reader's user id.
const SELECT: &str = "SELECT m.id, m.conv, m.sender_id, m.sender, m.recipient_id, m.recipient, \
     m.text, m.alarm, m.ref, m.sent_at, \
     (SELECT r.read_at FROM message_recipients r WHERE r.message_id = m.id AND r.user_id = \
        CASE WHEN m.sender_id = ?1 THEN m.recipient_id ELSE ?1 END) \
     FROM messages m";

fn from_row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        conv: r.get(1)?,
        sender_id: r.get(2)?,
        sender: r.get(3)?,
        recipient_id: r.get(4)?,
        recipient: r.get(5)?,
        text: r.get(6)?,
        alarm: r.get(7)?,
        reference: r.get(8)?,
        sent_at: parse_ts(&r.get::<_, String>(9)?),
        read_at: r.get::<_, Option<String>>(10)?.as_deref().map(parse_ts),
    })
}

/// Stores a message with one recipient row per id in `recipients`; those in `delivered` (a live
/// session had it pushed) are marked delivered now. Returns the id.
pub fn insert(
    tx: &Transaction<'_>,
    m: &NewMessage,
    recipients: &[i64],
    delivered: impl Fn(i64) -> bool,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let now = ts(now);
    tx.prepare_cached(
        "INSERT INTO messages (conv, sender_id, sender, recipient_id, recipient, text, alarm, ref, sent_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        m.conv,
        m.sender_id,
        m.sender,
        m.recipient_id,
        m.recipient,
        m.text,
        m.alarm,
        m.reference,
        now
    ])?;
    let id = tx.last_insert_rowid();
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO message_recipients (message_id, user_id, delivered_at) VALUES (?1, ?2, ?3)",
    )?;
    for u in recipients {
        st.execute(params![id, u, delivered(*u).then_some(&now)])?;
    }
    Ok(id)
}

/// One message as `reader` sees it.
pub fn get(c: &Connection, reader: i64, id: i64) -> Result<Option<MessageRow>, StoreError> {
    Ok(c.prepare_cached(&format!("{SELECT} WHERE m.id = ?2"))?
        .query_row(params![reader, id], from_row)
        .optional()?)
}

/// A page of a conversation, newest first: ids below `before_id`, at most `limit`.
pub fn page(
    c: &Connection,
    reader: i64,
    conv: &str,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<MessageRow>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "{SELECT} WHERE m.conv = ?2 AND m.id < ?3 ORDER BY m.id DESC LIMIT ?4"
    ))?;
    let rows = st.query_map(
        params![reader, conv, before_id.unwrap_or(i64::MAX), limit],
        from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A conversation in a time range (`from` inclusive, `to` exclusive), oldest first, at most
/// `max` rows (for export); `read_at` is left empty.
pub fn range(
    c: &Connection,
    conv: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    max: u32,
) -> Result<Vec<MessageRow>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "{SELECT} WHERE m.conv = ?2 AND m.sent_at >= ?3 AND m.sent_at < ?4 ORDER BY m.id LIMIT ?5"
    ))?;
    let from = from.map(ts).unwrap_or_default();
    let to = to.map(ts).unwrap_or_else(|| "9".into());
    let rows = st.query_map(params![0, conv, from, to, max], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every active user who receives a channel message of `park`: granted it, or superuser.
pub fn park_members(c: &Connection, park: &str) -> Result<Vec<i64>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id FROM users WHERE active = 1 AND (role = 'superuser' OR \
         id IN (SELECT user_id FROM user_park_access WHERE park = ?1)) ORDER BY id",
    )?;
    let rows = st.query_map([park], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `user` is a superuser or granted one of `parks`.
pub fn shares_park(c: &Connection, user: i64, parks: &[String]) -> Result<bool, StoreError> {
    let parks = serde_json::to_string(parks).unwrap_or_else(|_| "[]".into());
    Ok(c.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1 AND role = 'superuser') \
         OR EXISTS(SELECT 1 FROM user_park_access WHERE user_id = ?1 \
                   AND park IN (SELECT value FROM json_each(?2)))",
        params![user, parks],
        |r| r.get(0),
    )?)
}

/// A message `reader` marked read: its id, sender and the read time.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub id: i64,
    pub sender_id: i64,
    pub read_at: DateTime<Utc>,
}

/// Marks `ids` read by `reader` (delivered too, if not yet). `NotFound` naming the first id that
/// was not addressed to `reader` — then nothing is marked (the caller rolls back). Messages read
/// before keep their first read time and are not returned again.
pub fn mark_read(
    tx: &Transaction<'_>,
    reader: i64,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<Read>, StoreError> {
    let now_s = ts(now);
    let mut find = tx.prepare_cached(
        "SELECT r.read_at, m.sender_id FROM message_recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.message_id = ?1 AND r.user_id = ?2",
    )?;
    let mut set = tx.prepare_cached(
        "UPDATE message_recipients SET read_at = ?3, delivered_at = COALESCE(delivered_at, ?3) \
         WHERE message_id = ?1 AND user_id = ?2",
    )?;
    let mut out = Vec::new();
    for id in ids {
        let found: Option<(Option<String>, i64)> = find
            .query_row(params![id, reader], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            None => {
                return Err(StoreError::NotFound(format!(
                    "message {id} was not sent to you"
                )))
            }
            Some((Some(_), _)) => {}
            Some((None, sender_id)) => {
                set.execute(params![id, reader, now_s])?;
                out.push(Read {
                    id: *id,
                    sender_id,
                    // As stored (microseconds), so the receipt equals what a page shows later.
                    read_at: parse_ts(&now_s),
                });
            }
        }
    }
    Ok(out)
}

/// Marks everything sent to `reader` and not yet delivered as delivered now.
pub fn mark_delivered(
    tx: &Transaction<'_>,
    reader: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE message_recipients SET delivered_at = ?2 WHERE user_id = ?1 AND delivered_at IS NULL",
        )?
        .execute(params![reader, ts(now)])?)
}

/// Whether anything sent to `reader` is not delivered yet (cheap: a partial index).
pub fn has_undelivered(c: &Connection, reader: i64) -> Result<bool, StoreError> {
    Ok(c.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM message_recipients WHERE user_id = ?1 AND delivered_at IS NULL)",
    )?
    .query_row([reader], |r| r.get(0))?)
}

/// One conversation of a reader: its key, its last message and how many are unread.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvRow {
    pub conv: String,
    pub last: Option<MessageRow>,
    pub unread: u64,
}

/// The reader's direct conversations (at most `max`, most recent first) and the channels of
/// `parks` (every one, with or without messages).
pub fn conversations(
    c: &Connection,
    reader: i64,
    parks: &[String],
    max: u32,
) -> Result<Vec<ConvRow>, StoreError> {
    let mut unread = std::collections::HashMap::<String, u64>::new();
    {
        let mut st = c.prepare_cached(
            "SELECT m.conv, COUNT(*) FROM message_recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.user_id = ?1 AND r.read_at IS NULL GROUP BY m.conv",
        )?;
        let rows = st.query_map([reader], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (k, n) = row?;
            unread.insert(k, n.max(0) as u64);
        }
    }
    let mut last_ids: Vec<(String, Option<i64>)> = Vec::new();
    {
        let mut st = c.prepare_cached(
            "SELECT conv, MAX(id) AS last FROM ( \
               SELECT conv, MAX(id) AS id FROM messages WHERE sender_id = ?1 AND recipient_id IS NOT NULL GROUP BY conv \
               UNION ALL \
               SELECT conv, MAX(id) AS id FROM messages WHERE recipient_id = ?1 GROUP BY conv) \
             GROUP BY conv ORDER BY last DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![reader, max], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            last_ids.push(row?);
        }
    }
    let mut chan = c.prepare_cached("SELECT MAX(id) FROM messages WHERE conv = ?1")?;
    for p in parks {
        let conv = channel_conv(p);
        let id: Option<i64> = chan.query_row([&conv], |r| r.get(0))?;
        last_ids.push((conv, id));
    }
    let mut out = Vec::with_capacity(last_ids.len());
    for (conv, id) in last_ids {
        let last = match id {
            Some(id) => get(c, reader, id)?,
            None => None,
        };
        out.push(ConvRow {
            unread: unread.get(&conv).copied().unwrap_or(0),
            conv,
            last,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        s.write_blocking(|tx| {
            for (id, name, role) in [(1, "ann", "operator"), (2, "bob", "operator")] {
                tx.execute(
                    "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?1, ?2, 'x', ?3, '')",
                    params![id, name, role],
                )?;
            }
            Ok(())
        })
        .unwrap();
        (dir, s)
    }

    fn dm(text: &str) -> NewMessage {
        NewMessage {
            conv: direct_conv(2, 1),
            sender_id: 1,
            sender: "ann".into(),
            recipient_id: Some(2),
            recipient: "bob".into(),
            text: text.into(),
            alarm: None,
            reference: None,
        }
    }

    #[test]
    fn append_only_read_once_and_pages_newest_first() {
        let (_d, s) = store();
        let now = Utc::now();
        let ids: Vec<i64> = (0..3)
            .map(|i| {
                s.write_blocking(|tx| insert(tx, &dm(&format!("m{i}")), &[2], |_| false, now))
                    .unwrap()
            })
            .collect();
        let p = s.read_blocking(|c| page(c, 2, "u:1:2", None, 2)).unwrap();
        assert_eq!(p.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[2], ids[1]]);
        let p = s
            .read_blocking(|c| page(c, 2, "u:1:2", Some(ids[1]), 10))
            .unwrap();
        assert_eq!(p[0].text, "m0");
        let r = s
            .write_blocking(|tx| mark_read(tx, 2, &[ids[0]], now))
            .unwrap();
        assert_eq!(r.len(), 1);
        // The sender sees the peer's read time; a second read keeps the first.
        let seen = s.read_blocking(|c| get(c, 1, ids[0])).unwrap().unwrap();
        assert!(seen.read_at.is_some());
        assert!(s
            .write_blocking(|tx| mark_read(tx, 2, &[ids[0]], now))
            .unwrap()
            .is_empty());
        // Someone else's message: refused, nothing marked.
        assert!(matches!(
            s.write_blocking(|tx| mark_read(tx, 1, &[ids[1]], now)),
            Err(StoreError::NotFound(_))
        ));
        let err = s.write_blocking(|tx| {
            tx.execute("UPDATE messages SET text = 'x'", [])?;
            Ok(())
        });
        assert!(err.unwrap_err().to_string().contains("append-only"));
        let err = s.write_blocking(|tx| {
            tx.execute("DELETE FROM message_recipients", [])?;
            Ok(())
        });
        assert!(err.unwrap_err().to_string().contains("append-only"));
        let convs = s
            .read_blocking(|c| conversations(c, 2, &["alpha".into()], 10))
            .unwrap();
        assert_eq!(convs.len(), 2);
        assert_eq!(convs[0].conv, "u:1:2");
        assert_eq!(convs[0].unread, 2);
        assert_eq!(convs[1].conv, "park:alpha");
        assert!(convs[1].last.is_none());
    }
}
