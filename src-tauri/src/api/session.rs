//! Sessions: ping, the three login ways, logout, me, first superuser.

use serde_json::{json, Value};

use super::{Api, ApiError, Ctx};
use crate::auth::{LoginOk, Permission};

/// `ping`: any valid session; slides its idle timeout.
pub(super) async fn ping(api: &Api, ctx: &Ctx) -> Result<Value, ApiError> {
    api.auth()
        .check(api.token(ctx)?, Permission::ViewLive, None)
        .await?;
    Ok(json!({ "pong": true }))
}

/// The login reply: `{"token","expires_at","user":{"username","role","parks"}}`.
pub(crate) fn login_json(api: &Api, ok: &LoginOk) -> Value {
    json!({
        "token": ok.token,
        "expires_at": ok.expires_at,
        "user": api.user_json(&ok.principal),
    })
}

fn counted(api: &Api, r: Result<LoginOk, crate::auth::AuthError>) -> Result<Value, ApiError> {
    let label = match &r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    api.metrics().login_result(label);
    match r {
        Ok(ok) => Ok(login_json(api, &ok)),
        Err(e) => Err(e.into()),
    }
}

/// `login {username,password}` (no token needed).
pub(super) async fn login(
    api: &Api,
    ctx: &Ctx,
    username: &str,
    password: &str,
) -> Result<Value, ApiError> {
    let r = api
        .auth()
        .login(username, password, ctx.source.clone())
        .await;
    counted(api, r)
}

/// `login_pin {username,pin}`: the panel's quick login (auth refuses other sources).
pub(super) async fn login_pin(
    api: &Api,
    ctx: &Ctx,
    username: &str,
    pin: &str,
) -> Result<Value, ApiError> {
    let r = api
        .auth()
        .login_pin(username, pin, ctx.source.clone())
        .await;
    counted(api, r)
}

/// `login_badge {badge}`: the panel's badge login (auth refuses other sources).
pub(super) async fn login_badge(api: &Api, ctx: &Ctx, badge: &str) -> Result<Value, ApiError> {
    let r = api.auth().login_badge(badge, ctx.source.clone()).await;
    counted(api, r)
}

/// `logout`: the token is dead at once.
pub(super) async fn logout(api: &Api, ctx: &Ctx) -> Result<Value, ApiError> {
    let token = api.token(ctx)?;
    api.auth().check(token, Permission::ViewLive, None).await?;
    api.auth().logout(token).await?;
    Ok(json!({}))
}

/// `me`: the caller's user object plus session times.
pub(super) async fn me(api: &Api, ctx: &Ctx) -> Result<Value, ApiError> {
    let p = api
        .auth()
        .check(api.token(ctx)?, Permission::ViewLive, None)
        .await?;
    let mut user = api.user_json(&p);
    user["source"] = json!(p.source.to_string());
    user["expires_at"] = json!(p.expires_at);
    user["idle_expires_at"] = json!(p.idle_expires_at);
    Ok(json!({ "user": user }))
}

/// `first_superuser {username,password}`: only while the store has no user at all.
pub(super) async fn first_superuser(
    api: &Api,
    ctx: &Ctx,
    username: &str,
    password: &str,
) -> Result<Value, ApiError> {
    let ok = api
        .auth()
        .create_first_superuser(username, password, ctx.source.clone())
        .await?;
    Ok(login_json(api, &ok))
}
