//! The one dispatcher: typed requests, each checked by `auth::check` before it runs.
