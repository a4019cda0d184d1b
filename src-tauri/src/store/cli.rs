//! `stator user …` and `stator audit …`.
//!
//! User commands go through [`crate::auth::Auth`] with a system principal (source `cli`), so the
//! CLI obeys the same rules and writes the same audit rows as the panel and the remote server; a
//! running server picks the change up within a second (the `user_changes` table).

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

use crate::auth::{Auth, AuthError, Principal, Role, Source};
use crate::cli::{AuditCommand, BadgeCommand, GlobalArgs, UserCommand, EXIT_CONFIG, EXIT_FAILURE};
use crate::config::Config;
use crate::store::{audit, Store};

/// The database file for these arguments: `--db`, else `database` in the config, else the
/// platform data dir.
pub fn db_path(global: &GlobalArgs, cfg: Option<&Config>) -> PathBuf {
    Store::default_path(
        global.db.as_deref(),
        cfg.and_then(|c| c.database.as_deref()),
    )
}

/// Opens the database; with the audit key (created in the secret store when missing) when
/// `keyed`, as every command that writes audit rows needs it.
fn open(global: &GlobalArgs, cfg: Option<&Config>, keyed: bool) -> Result<Store, i32> {
    let path = db_path(global, cfg);
    let opened = if keyed {
        let key = crate::app::audit_key(true)
            .and_then(|k| k.ok_or_else(|| "no audit key".to_string()))
            .map_err(|e| {
                eprintln!("error: {e}");
                EXIT_FAILURE
            })?;
        Store::open_keyed(&path, &key)
    } else {
        Store::open(&path)
    };
    opened.map_err(|e| {
        eprintln!("error: {e}");
        EXIT_FAILURE
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            EXIT_FAILURE
        })
}

/// Reads a secret from standard input: everything, minus one trailing newline.
fn read_stdin(what: &str) -> Result<String, i32> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        eprintln!("error: cannot read the {what} from standard input: {e}");
        EXIT_FAILURE
    })?;
    let s = s
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&s)
        .to_string();
    if s.is_empty() {
        eprintln!("error: no {what} on standard input");
        return Err(EXIT_CONFIG);
    }
    Ok(s)
}

fn os_user() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("os:{name}")
}

fn report(e: AuthError) -> i32 {
    eprintln!("error: {e}");
    match e {
        AuthError::Invalid(_) => EXIT_CONFIG,
        _ => EXIT_FAILURE,
    }
}

fn parse_role(s: &str) -> Result<Role, i32> {
    s.parse().map_err(|e: String| {
        eprintln!("error: {e}");
        EXIT_CONFIG
    })
}

/// `stator user …`; returns the exit code.
pub fn run_user(global: &GlobalArgs, cmd: UserCommand) -> i32 {
    match run_user_inner(global, cmd) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn run_user_inner(global: &GlobalArgs, cmd: UserCommand) -> Result<(), i32> {
    let (cfg, _) = crate::cli::load_config(global)?;
    // Read stdin before touching the database, so a missing password fails fast.
    let secret = match &cmd {
        UserCommand::Add { .. } | UserCommand::Passwd { .. } => Some(read_stdin("password")?),
        UserCommand::Pin { .. } => Some(read_stdin("PIN")?),
        _ => None,
    };
    let secret = secret.unwrap_or_default();
    let store = open(global, Some(&cfg), true)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let auth = Auth::new(store, &cfg);
        let me = Principal::system(&os_user(), Source::Cli);
        match cmd {
            UserCommand::Add {
                name, role, parks, ..
            } => {
                let role = parse_role(&role)?;
                let parks: Vec<String> = parks
                    .into_iter()
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
                let u = auth
                    .add_user(&me, &name, &secret, role, &parks)
                    .await
                    .map_err(report)?;
                println!(
                    "created user {} (role {}, parks {})",
                    u.username,
                    u.role,
                    if u.parks.is_empty() {
                        "none".to_string()
                    } else {
                        u.parks.join(",")
                    }
                );
            }
            UserCommand::List => {
                let users = auth.list_users(&me).await.map_err(report)?;
                print_users(&users);
            }
            UserCommand::Passwd { name, .. } => {
                auth.set_password(&me, &name, &secret)
                    .await
                    .map_err(report)?;
                println!("password of {name} changed; their sessions were ended");
            }
            UserCommand::Disable { name } => {
                auth.set_active(&me, &name, false).await.map_err(report)?;
                println!("disabled {name}; their sessions were ended");
            }
            UserCommand::Enable { name } => {
                auth.set_active(&me, &name, true).await.map_err(report)?;
                println!("enabled {name}");
            }
            UserCommand::Role { name, role } => {
                let role = parse_role(&role)?;
                auth.set_role(&me, &name, role).await.map_err(report)?;
                println!("{name} is now {role}; their sessions were ended");
            }
            UserCommand::Grant { name, park } => {
                auth.grant_park(&me, &name, &park).await.map_err(report)?;
                println!("granted {park} to {name}");
            }
            UserCommand::Revoke { name, park } => {
                auth.revoke_park(&me, &name, &park).await.map_err(report)?;
                println!("revoked {park} from {name}");
            }
            UserCommand::Pin { name, .. } => {
                auth.set_pin(&me, &name, &secret).await.map_err(report)?;
                println!("PIN of {name} set");
            }
            UserCommand::Badge(BadgeCommand::Add { name, id }) => {
                auth.add_badge(&me, &name, &id).await.map_err(report)?;
                println!("badge added to {name}");
            }
            UserCommand::Badge(BadgeCommand::Remove { name, id }) => {
                auth.remove_badge(&me, &name, &id).await.map_err(report)?;
                println!("badge removed from {name}");
            }
        }
        Ok(())
    })
}

fn print_users(users: &[crate::auth::UserInfo]) {
    let w = users
        .iter()
        .map(|u| u.username.len())
        .max()
        .unwrap_or(0)
        .max(8);
    println!(
        "{:<w$}  {:<10}  {:<8}  {:<20}  {:<7}  {:<3}  {:<6}  PARKS",
        "USERNAME", "ROLE", "ACTIVE", "LAST LOGIN (UTC)", "LOCKED", "PIN", "BADGES"
    );
    for u in users {
        println!(
            "{:<w$}  {:<10}  {:<8}  {:<20}  {:<7}  {:<3}  {:<6}  {}",
            u.username,
            u.role.as_str(),
            if u.active { "yes" } else { "no" },
            u.last_login_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "never".into()),
            if u.locked_until.is_some() {
                "yes"
            } else {
                "no"
            },
            if u.has_pin { "yes" } else { "no" },
            u.badges,
            if u.role == Role::Superuser {
                "all".to_string()
            } else if u.parks.is_empty() {
                "-".to_string()
            } else {
                u.parks.join(",")
            }
        );
    }
}

/// `stator audit …`; returns the exit code.
pub fn run_audit(global: &GlobalArgs, cmd: AuditCommand) -> i32 {
    match run_audit_inner(global, cmd) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

/// Parses `--from`/`--to`: RFC 3339, or `YYYY-MM-DD` (UTC midnight; for `--to` the end of that
/// day, so a date range includes both days).
pub fn parse_bound(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "{s:?} is not a time such as 2026-11-23 or 2026-11-23T10:00:00Z"
    ))
}

fn run_audit_inner(global: &GlobalArgs, cmd: AuditCommand) -> Result<(), i32> {
    // With --db the configuration is not needed.
    let cfg = if global.db.is_some() {
        None
    } else {
        Some(crate::cli::load_config(global)?.0)
    };
    let store = open(global, cfg.as_ref(), false)?;
    match cmd {
        AuditCommand::Verify => {
            // Without the key only the unkeyed part can be checked; verify says so.
            let key = crate::app::audit_key(false).unwrap_or_else(|e| {
                eprintln!("warning: {e}");
                None
            });
            let r = store.verify_audit(key.as_ref()).map_err(|e| {
                eprintln!("error: {e}");
                EXIT_FAILURE
            })?;
            match r.first_bad {
                None => {
                    println!("ok: {} rows", r.rows);
                    eprintln!(
                        "note: keyed from row {}, {} anchor(s) matched",
                        r.keyed_from
                            .map_or_else(|| "- (never keyed)".to_string(), |k| k.to_string()),
                        r.anchors
                    );
                    Ok(())
                }
                Some((id, why)) => {
                    eprintln!("error: audit chain broken at row {id}: {why}");
                    Err(EXIT_FAILURE)
                }
            }
        }
        AuditCommand::Export { from, to, csv } => {
            let bound = |s: &Option<String>, end: bool| -> Result<Option<DateTime<Utc>>, i32> {
                s.as_deref()
                    .map(|s| parse_bound(s, end))
                    .transpose()
                    .map_err(|e| {
                        eprintln!("error: {e}");
                        EXIT_CONFIG
                    })
            };
            let (from, to) = (bound(&from, false)?, bound(&to, true)?);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            use std::io::Write;
            if csv {
                let _ = writeln!(out, "{}", audit::CSV_HEADER);
            }
            let res = store.read_blocking(|c| {
                audit::for_each(c, from, to, |row| {
                    let line = if csv {
                        audit::csv_line(&row)
                    } else {
                        serde_json::to_string(&row).unwrap_or_default()
                    };
                    writeln!(out, "{line}")
                        .map_err(|e| crate::store::StoreError::Task(e.to_string()))
                })
            });
            let _ = out.flush();
            res.map(|_| ()).map_err(|e| {
                eprintln!("error: {e}");
                EXIT_FAILURE
            })
        }
    }
}
