//! The live picture: `snapshot`, filtered to the caller's parks.

use super::wire::SnapshotMsg;
use super::Api;
use crate::auth::Principal;

/// `snapshot`: the same body the WebSocket sends right after auth.
pub(super) fn snapshot(api: &Api, p: &Principal) -> SnapshotMsg {
    api.snapshot_msg(p)
}
