//! Sessions: health, ping, the three login ways, auth, logout, me, first superuser, kiosk exit.

use super::request::{FirstSuperuserReq, LoginBadgeReq, LoginPinReq, LoginReq};
use super::wire::{AuthReply, Done, Exiting, LoginReply, MeReply, MeUser, Pong};
use super::{Api, ApiError, Ctx};
use crate::auth::{AuthError, LoginOk, Principal};
use crate::code::ErrorCode;

/// `ping`: any valid session; the access check already slid its idle timeout.
pub(super) fn ping(_: &Principal) -> Pong {
    Pong { pong: true }
}

/// The login reply: `{"token","expires_at","user":{"username","role","parks"}}`.
fn login_reply(api: &Api, ok: LoginOk) -> LoginReply {
    LoginReply {
        user: api.user_view(&ok.principal),
        token: ok.token,
        expires_at: ok.expires_at,
    }
}

fn counted(api: &Api, r: Result<LoginOk, AuthError>) -> Result<LoginReply, ApiError> {
    let label = match &r {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    };
    api.metrics().login_result(label);
    Ok(login_reply(api, r?))
}

/// `login {username,password}` (no token needed).
pub(super) async fn login(api: &Api, ctx: &Ctx, r: LoginReq) -> Result<LoginReply, ApiError> {
    let ok = api
        .auth()
        .login(&r.username, &r.password, ctx.source.clone())
        .await;
    counted(api, ok)
}

/// `login_pin {username,pin}`: the panel's quick login (auth refuses other sources).
pub(super) async fn login_pin(
    api: &Api,
    ctx: &Ctx,
    r: LoginPinReq,
) -> Result<LoginReply, ApiError> {
    let ok = api
        .auth()
        .login_pin(&r.username, &r.pin, ctx.source.clone())
        .await;
    counted(api, ok)
}

/// `login_badge {badge}`: the panel's badge login (auth refuses other sources).
pub(super) async fn login_badge(
    api: &Api,
    ctx: &Ctx,
    r: LoginBadgeReq,
) -> Result<LoginReply, ApiError> {
    let ok = api.auth().login_badge(&r.badge, ctx.source.clone()).await;
    counted(api, ok)
}

/// `auth`: proves the transport's token; answers the login reply's `user`.
pub(super) fn auth(api: &Api, p: &Principal) -> AuthReply {
    AuthReply {
        user: api.user_view(p),
    }
}

/// `logout`: the token is dead at once.
pub(super) async fn logout(api: &Api, ctx: &Ctx) -> Result<Done, ApiError> {
    let token = ctx
        .token
        .as_deref()
        .ok_or_else(|| ApiError::unauthorized("no session token"))?;
    api.auth().logout(token).await?;
    Ok(Done {})
}

/// `session_refresh`: a new token (answers like `login`); the old one ends after a short grace.
pub(super) async fn refresh(api: &Api, ctx: &Ctx) -> Result<LoginReply, ApiError> {
    let token = ctx
        .token
        .as_deref()
        .ok_or_else(|| ApiError::unauthorized("no session token"))?;
    Ok(login_reply(api, api.auth().refresh(token).await?))
}

/// `me`: the caller's user object plus session times.
pub(super) fn me(api: &Api, p: &Principal) -> MeReply {
    MeReply {
        user: MeUser::new(p, api.visible_parks(&p.parks)),
    }
}

/// `first_superuser {username,password}`: only while the store has no user at all.
pub(super) async fn first_superuser(
    api: &Api,
    ctx: &Ctx,
    r: FirstSuperuserReq,
) -> Result<LoginReply, ApiError> {
    let ok = api
        .auth()
        .create_first_superuser(&r.username, &r.password, ctx.source.clone())
        .await?;
    Ok(login_reply(api, ok))
}

/// `exit_kiosk {username,password}`: the signer was proven and allowed `exit_kiosk` by the
/// access check; records it. The desktop transport closes the window on this reply.
pub(super) async fn exit_kiosk(api: &Api, ctx: &Ctx, p: &Principal) -> Result<Exiting, ApiError> {
    if !ctx.kiosk {
        return Err(ApiError::invalid("not in kiosk mode"));
    }
    let _ = api
        .auth()
        .audit(p.audit_entry("kiosk_exit", None, "ok"))
        .await;
    Ok(Exiting { exiting: true })
}
