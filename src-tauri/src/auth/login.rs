//! Logging in with a password, a panel PIN or a badge, and opening the session.
//!
//! The order of a password/PIN login is what makes the limits hold under parallel attempts:
//! 1. a remote address reserves one of its failures (`lockout::SourceLimiter`) — given back only
//!    when the login succeeds;
//! 2. the attempt takes a place in the bounded verify queue (`gate`), or is shed as
//!    `rate_limited`;
//! 3. the account's counter for this kind of source is raised in a transaction
//!    (`lockout::Policy::admit`) — attempts beyond the limit lock the account at once;
//! 4. the secret is verified — against the dummy hash when the account is unknown or locked, so
//!    every refusal costs the same time;
//! 5. success opens the session (`sessions.rs`) in a transaction that re-checks the lock (a lock
//!    set meanwhile by a concurrent failure wins); failure may lock the account.
//!
//! A locked account answers remote callers exactly like a wrong password (no enumeration); the
//! panel is told `locked` with the time left, so the operator in front of it knows to wait.

use chrono::{DateTime, Utc};

use super::gate::Turn;
use super::lockout::{Admission, Scope};
use super::{password, Auth, AuthError, LoginOk, Source, NO_USERS_HINT};
use crate::store::{self, login_failures, users::UserRow, AuditEntry};

/// `retry_after_s` of a login shed because the verify queue is full: one verify's time, rounded up.
const SHED_RETRY_S: u64 = 1;

impl Auth {
    /// Logs in with username and password.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        self.login_secret(username, password, source, false).await
    }

    /// Logs in with username and panel PIN; accepted only from [`Source::Panel`].
    pub async fn login_pin(
        &self,
        username: &str,
        pin: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        if source != Source::Panel {
            return Err(AuthError::Forbidden(
                "PIN login is accepted only on the local panel".into(),
            ));
        }
        self.login_secret(username, pin, source, true).await
    }

    /// Logs in with a badge ID typed by a reader; accepted only from [`Source::Panel`].
    pub async fn login_badge(&self, badge: &str, source: Source) -> Result<LoginOk, AuthError> {
        if source != Source::Panel {
            return Err(AuthError::Forbidden(
                "badge login is accepted only on the local panel".into(),
            ));
        }
        let now = self.now();
        let h = password::badge_hash(badge);
        let user = self
            .inner
            .store
            .read(move |c| store::users::by_badge(c, &h))
            .await?;
        let Some(user) = user.filter(|u| u.active) else {
            let e = AuditEntry {
                actor: None,
                ..login_entry("", None, &source, "badge", "invalid_credentials")
            };
            self.inner
                .store
                .write(move |tx| store::audit::append(tx, &e, now))
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        self.open_session(user, source, "badge", now).await
    }

    /// Verifies a password or PIN for `username` (steps 1-4 of the module documentation) and
    /// records the outcome; `Ok` when it matched an active, unlocked account, whose failure count
    /// is then cleared. Hold the returned [`Turn`] until the success has been acted on. Also used
    /// by the own-password change, which must prove the current password like a login.
    pub(super) async fn verify_login(
        &self,
        username: &str,
        secret: &str,
        source: &Source,
        method: &'static str,
        pin: bool,
    ) -> Result<(UserRow, Turn), AuthError> {
        let now = self.now();
        let src = source.to_string();
        if source.is_remote() {
            if let Err(s) = self.inner.limiter.reserve(&src, now) {
                tracing::warn!(source = %src, "login refused: too many failures from this address");
                return Err(AuthError::RateLimited { retry_after_s: s });
            }
        }
        let Some(ticket) = self.inner.gate.enter(source) else {
            self.inner.limiter.forgive(&src, now);
            tracing::warn!(
                source = %src,
                queued = self.inner.gate.max_queued(),
                "login shed: the password-check queue is full"
            );
            return Err(AuthError::RateLimited {
                retry_after_s: SHED_RETRY_S,
            });
        };
        let name = username.trim().to_string();
        let scope = Scope::of(source);
        let turn = self.inner.turns.take(&name, scope).await;
        let now = self.now();
        let (user, admission) = self.admit(&name, source, method, now).await?;
        let phc = match (&user, admission) {
            (Some(u), Admission::Verify) if pin => u.pin_hash.clone(),
            (Some(u), Admission::Verify) => Some(u.password_hash.clone()),
            _ => None,
        };
        // Only a real check needs the account to itself; the dummy verify runs in parallel.
        let turn = phc.is_some().then_some(turn);
        let verified = self
            .inner
            .gate
            .verify(ticket, phc, secret.to_string())
            .await
            .map_err(AuthError::Internal)?;
        match (user, admission) {
            (Some(u), Admission::Verify) if verified && u.active => {
                self.succeeded(u.id, scope).await?;
                // The reserved failure was not one.
                self.inner.limiter.forgive(&src, now);
                Ok((u, turn.expect("a real check holds the turn")))
            }
            (Some(u), Admission::Verify) => {
                self.record_failure(u, source, method, scope, now).await?;
                Err(AuthError::InvalidCredentials)
            }
            (Some(_), Admission::Locked(until)) => Err(refusal(scope, until, now)),
            (None, _) => {
                let e = login_entry(&name, None, source, method, "invalid_credentials");
                self.inner
                    .store
                    .write(move |tx| store::audit::append(tx, &e, now))
                    .await?;
                if !self.has_users().await? {
                    tracing::warn!("login refused: {NO_USERS_HINT}");
                }
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    async fn login_secret(
        &self,
        username: &str,
        secret: &str,
        source: Source,
        pin: bool,
    ) -> Result<LoginOk, AuthError> {
        let method = if pin { "pin" } else { "password" };
        let (user, _turn) = self
            .verify_login(username, secret, &source, method, pin)
            .await?;
        self.open_session(user, source, method, self.now()).await
    }

    /// The success transaction of a check: a lock set meanwhile (by another process, or a
    /// cancelled attempt's count) wins and is kept; otherwise the count starts again.
    async fn succeeded(&self, uid: i64, scope: Scope) -> Result<(), AuthError> {
        let (policy, now) = (self.settings().policy, self.now());
        let locked = self
            .inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let f = login_failures::get(tx, uid, scope.as_str())?;
                let until = policy.current(f, now).locked_until;
                if until.is_none() {
                    login_failures::clear(tx, uid, Some(scope.as_str()))?;
                }
                Ok(until)
            })
            .await?;
        match locked {
            Some(until) => Err(refusal(scope, until, now)),
            None => Ok(()),
        }
    }

    /// Step 3: finds the account and counts the attempt against it, in one transaction.
    async fn admit(
        &self,
        name: &str,
        source: &Source,
        method: &'static str,
        now: DateTime<Utc>,
    ) -> Result<(Option<UserRow>, Admission), AuthError> {
        if password::check_username(name).is_err() {
            return Ok((None, Admission::Verify));
        }
        let policy = self.settings().policy;
        let scope = Scope::of(source).as_str();
        let (n, source) = (name.to_string(), source.clone());
        self.inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let Some(u) = store::users::by_name(tx, &n)? else {
                    return Ok((None, Admission::Verify));
                };
                let before = login_failures::get(tx, u.id, scope)?;
                let (admission, after) = policy.admit(before, now);
                if before != Some(after) {
                    login_failures::put(tx, u.id, scope, &after)?;
                }
                if let Admission::Locked(until) = admission {
                    let base = login_entry(&u.username, Some(&u.role), &source, method, "locked");
                    store::audit::append(tx, &base, now)?;
                    if policy.current(before, now).locked_until.is_none() {
                        tracing::warn!(user = %u.username, scope, "account locked: more logins in flight than allowed");
                        store::audit::append(tx, &lockout_entry(base, until), now)?;
                    }
                }
                Ok((Some(u), admission))
            })
            .await
    }

    /// A wrong secret for a known account (already counted): audits it and locks the account
    /// when this was the last allowed attempt.
    async fn record_failure(
        &self,
        u: UserRow,
        source: &Source,
        method: &'static str,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let policy = self.settings().policy;
        let result = if u.active {
            "invalid_credentials"
        } else {
            "disabled"
        };
        let base = login_entry(&u.username, Some(&u.role), source, method, result);
        let uid = u.id;
        let locked = self
            .inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let (lock, after) =
                    policy.failed(login_failures::get(tx, uid, scope.as_str())?, now);
                store::audit::append(tx, &base, now)?;
                if let Some(until) = lock {
                    login_failures::put(tx, uid, scope.as_str(), &after)?;
                    store::audit::append(tx, &lockout_entry(base, until), now)?;
                }
                Ok(lock.is_some())
            })
            .await?;
        if locked {
            tracing::warn!(
                user = %u.username,
                scope = scope.as_str(),
                "account locked after {} failed logins",
                policy.attempts
            );
        }
        Ok(())
    }
}

/// What a caller is told about a locked account: the panel learns that it is locked and for how
/// long (someone at the machine); remote callers get the answer of a wrong password.
pub(super) fn refusal(scope: Scope, until: DateTime<Utc>, now: DateTime<Utc>) -> AuthError {
    match scope {
        Scope::Local => AuthError::Locked {
            retry_after_s: retry_secs(until, now),
        },
        Scope::Remote => AuthError::InvalidCredentials,
    }
}

fn retry_secs(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    (((ms + 999) / 1000).max(1)) as u64
}

/// The audit row of one login attempt.
pub(super) fn login_entry(
    actor: &str,
    role: Option<&str>,
    source: &Source,
    method: &str,
    result: &str,
) -> AuditEntry {
    AuditEntry {
        actor: Some(actor.chars().take(64).collect()),
        role: role.map(str::to_string),
        source: source.to_string(),
        action: "login".into(),
        target: None,
        old_value: None,
        new_value: Some(method.into()),
        result: result.into(),
    }
}

/// The audit row of a lock, next to the login row that caused it.
fn lockout_entry(base: AuditEntry, until: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        action: "lockout".into(),
        target: base.actor.clone(),
        new_value: Some(store::ts(until)),
        result: "ok".into(),
        ..base
    }
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
