//! `stator token …`: API tokens through [`crate::auth::Auth`] with a system principal (source
//! `cli`), for installations without a browser. A running server sees a revocation within a
//! second (the `user_changes` table) and closes the token's WebSockets.

use super::{CliResult, GlobalArgs, TokenCommand};
use crate::auth::api_tokens::{ApiTokenInfo, TokenRequest};
use crate::auth::{Auth, Principal, Source};

/// Entry point of `stator token …`.
pub(super) fn run(global: &GlobalArgs, cmd: TokenCommand) -> CliResult {
    let cfg = super::load_config(global)?;
    let store = super::open_store_keyed(global, Some(&cfg))?;
    super::runtime()?.block_on(async move {
        let auth = Auth::new(store, &cfg);
        let me = Principal::system(&super::user::os_user(), Source::Cli);
        match cmd {
            TokenCommand::Create {
                name,
                user,
                scopes,
                parks,
                expires_days,
            } => {
                let parks: Vec<String> = parks
                    .into_iter()
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
                let req = TokenRequest {
                    name,
                    scopes,
                    parks: (!parks.is_empty()).then_some(parks),
                    expires_days,
                };
                let t = auth.create_api_token(&me, Some(&user), req, None).await?;
                eprintln!(
                    "created token {} ({}) for {}: scopes {}, parks {}, expires {}; it is shown only now:",
                    t.info.id,
                    t.info.name,
                    t.info.created_by,
                    t.info.scopes.join(","),
                    t.info.parks.join(","),
                    t.info.expires_at.format("%Y-%m-%d")
                );
                println!("{}", t.token);
            }
            TokenCommand::List => print_tokens(&auth.list_api_tokens(&me).await?),
            TokenCommand::Revoke { token_id } => {
                auth.revoke_api_token(&me, token_id).await?;
                println!("revoked token {token_id}");
            }
        }
        Ok(())
    })
}

fn print_tokens(tokens: &[ApiTokenInfo]) {
    println!("ID     NAME                  USER          STATE    EXPIRES     LAST USED (UTC)      FROM             SCOPES / PARKS");
    for t in tokens {
        let state = if t.revoked {
            "revoked"
        } else if t.expires_at <= chrono::Utc::now() {
            "expired"
        } else {
            "active"
        };
        let last = t
            .last_used_at
            .map(|x| x.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<6} {:<21} {:<13} {:<8} {:<11} {:<20} {:<16} {} / {}",
            t.id,
            t.name,
            t.created_by,
            state,
            t.expires_at.format("%Y-%m-%d"),
            last,
            t.last_used_from.as_deref().unwrap_or("-"),
            t.scopes.join(","),
            t.parks.join(","),
        );
    }
}
