//! The dispatcher itself, without a transport: requests that only the panel sends (`health`,
//! `exit_kiosk`), the one access check, and the role table `health` hands to the UI.

use serde_json::json;
use stator::api::{dispatch, Ctx, Empty, ExitKioskReq, Request};
use stator::auth::{role_allows, Permission, Role, Source};
use stator::store::AuditFilter;

use crate::support::{system, Env, PASSWORD};

fn kiosk(username: &str, password: &str) -> Request {
    Request::ExitKiosk(ExitKioskReq {
        username: username.into(),
        password: password.into(),
    })
}

#[tokio::test]
async fn health_carries_the_role_table_and_kiosk_only_for_the_panel() {
    let env = Env::start(json!({})).await;
    let panel = Ctx::new(None, Source::Panel).with_kiosk(true);
    let h = dispatch(&env.api, &panel, Request::Health(Empty {}))
        .await
        .unwrap();
    assert_eq!(h["kiosk"], true);
    assert_eq!(h["status"], "ok");
    let roles = h["roles"].as_array().unwrap();
    assert_eq!(roles.len(), Role::ALL.len());
    for (row, role) in roles.iter().zip(Role::ALL) {
        assert_eq!(row["role"], role.as_str());
        for perm in Permission::ALL {
            let listed = row["permissions"]
                .as_array()
                .unwrap()
                .contains(&json!(perm.as_str()));
            assert_eq!(listed, role_allows(role, perm), "{role} {perm}");
        }
        assert_eq!(
            row["idle_timeout_s"],
            env.auth.idle_timeout(role).num_seconds()
        );
    }
    let remote = Ctx::new(None, Source::Remote("192.0.2.1".into()));
    let h = dispatch(&env.api, &remote, Request::Health(Empty {}))
        .await
        .unwrap();
    assert!(h.get("kiosk").is_none(), "{h}");
}

#[tokio::test]
async fn exit_kiosk_needs_the_permission_the_password_and_kiosk_mode() {
    let env = Env::start(json!({})).await;
    env.user("olga", Role::Operator, &["alpha"]).await;
    env.user("adam", Role::Admin, &[]).await;
    let kiosk_panel = Ctx::new(None, Source::Panel).with_kiosk(true);
    let e = dispatch(&env.api, &kiosk_panel, kiosk("olga", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(e.code, "forbidden", "{e}");
    let e = dispatch(&env.api, &kiosk_panel, kiosk("adam", "wrong-password-9"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_credentials", "{e}");
    let plain_panel = Ctx::new(None, Source::Panel);
    let e = dispatch(&env.api, &plain_panel, kiosk("adam", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid", "{e}");
    let r = dispatch(&env.api, &kiosk_panel, kiosk("adam", PASSWORD))
        .await
        .unwrap();
    assert_eq!(r, json!({"exiting": true}));
    let rows = env
        .auth
        .audit_page(
            &system(),
            AuditFilter {
                action: Some("kiosk_exit".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor.as_deref(), Some("adam"));
}

#[tokio::test]
async fn session_requests_without_a_token_are_unauthorized_before_any_handler() {
    let env = Env::start(json!({})).await;
    let anon = Ctx::new(None, Source::Remote("192.0.2.1".into()));
    for req in [
        Request::Ping(Empty {}),
        Request::Me(Empty {}),
        Request::Auth(Empty {}),
        Request::Snapshot(Empty {}),
        Request::UsersList(Empty {}),
        Request::Logout(Empty {}),
    ] {
        let op = req.op();
        let e = dispatch(&env.api, &anon, req).await.unwrap_err();
        assert_eq!(e.code, "unauthorized", "{op}: {e}");
    }
}
