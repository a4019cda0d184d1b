//! `stator user …`: user administration through [`crate::auth::Auth`] with a system principal
//! (source `cli`), so the command line obeys the same rules and writes the same audit rows as
//! the panel and the remote server; a running server picks the change up within a second (the
//! `user_changes` table).

use super::{BadgeCommand, CliError, CliResult, GlobalArgs, UserCommand};
use crate::auth::{Auth, Principal, Role, Source, UserInfo};

/// Entry point of `stator user …`.
pub(super) fn run(global: &GlobalArgs, cmd: UserCommand) -> CliResult {
    let cfg = super::load_config(global)?;
    // Read stdin before touching the database, so a missing password fails fast.
    let secret = match &cmd {
        UserCommand::Add { .. } | UserCommand::Passwd { .. } => super::read_secret("password")?,
        UserCommand::Pin { .. } => super::read_secret("PIN")?,
        _ => String::new(),
    };
    let store = super::open_store_keyed(global, Some(&cfg))?;
    super::runtime()?.block_on(async move {
        let auth = Auth::new(store, &cfg);
        let me = Principal::system(&os_user(), Source::Cli);
        match cmd {
            UserCommand::Add {
                name, role, parks, ..
            } => {
                let parks: Vec<String> = parks
                    .into_iter()
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
                let u = auth
                    .add_user(&me, &name, &secret, parse_role(&role)?, &parks)
                    .await?;
                let parks = if u.parks.is_empty() {
                    "none".to_string()
                } else {
                    u.parks.join(",")
                };
                println!(
                    "created user {} (role {}, parks {parks})",
                    u.username, u.role
                );
            }
            UserCommand::List => print_users(&auth.list_users(&me).await?),
            UserCommand::Passwd { name, .. } => {
                auth.set_password(&me, &name, &secret).await?;
                println!("password of {name} changed; their sessions were ended");
            }
            UserCommand::Disable { name } => {
                auth.set_active(&me, &name, false).await?;
                println!("disabled {name}; their sessions were ended");
            }
            UserCommand::Enable { name } => {
                auth.set_active(&me, &name, true).await?;
                println!("enabled {name}");
            }
            UserCommand::Role { name, role } => {
                let role = parse_role(&role)?;
                auth.set_role(&me, &name, role).await?;
                println!("{name} is now {role}; their sessions were ended");
            }
            UserCommand::Grant { name, park } => {
                auth.grant_park(&me, &name, &park).await?;
                println!("granted {park} to {name}");
            }
            UserCommand::Revoke { name, park } => {
                auth.revoke_park(&me, &name, &park).await?;
                println!("revoked {park} from {name}");
            }
            UserCommand::Pin { name, .. } => {
                auth.set_pin(&me, &name, &secret).await?;
                println!("PIN of {name} set");
            }
            UserCommand::Badge(BadgeCommand::Add { name, id }) => {
                auth.add_badge(&me, &name, &id).await?;
                println!("badge added to {name}");
            }
            UserCommand::Badge(BadgeCommand::Remove { name, id }) => {
                auth.remove_badge(&me, &name, &id).await?;
                println!("badge removed from {name}");
            }
        }
        Ok(())
    })
}

/// The audit actor of a command-line change: `os:<login name>`.
pub(super) fn os_user() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("os:{name}")
}

fn parse_role(s: &str) -> Result<Role, CliError> {
    s.parse().map_err(|e: String| CliError::Usage(e))
}

fn print_users(users: &[UserInfo]) {
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
    let yes = |b: bool| if b { "yes" } else { "no" };
    for u in users {
        let last = u
            .last_login_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "never".into());
        let parks = if u.role == Role::Superuser {
            "all".to_string()
        } else if u.parks.is_empty() {
            "-".to_string()
        } else {
            u.parks.join(",")
        };
        println!(
            "{:<w$}  {:<10}  {:<8}  {:<20}  {:<7}  {:<3}  {:<6}  {parks}",
            u.username,
            u.role.as_str(),
            yes(u.active),
            last,
            yes(u.locked_until.is_some()),
            yes(u.has_pin),
            u.badges,
        );
    }
}
