//! `GET /api/openapi.json`: an OpenAPI 3.1 document of every HTTP route and of the WebSocket's
//! messages, built from the code: the paths from [`DOCUMENTED`] (checked against the router's
//! own table, `server::SERVED`, by a test in both directions), the reply schemas inferred from
//! the wire samples (`api::wire::reply_schemas`, the same samples the UI's types are checked
//! against), the WebSocket operations from `Request::OPS`. `/api/docs` renders it with a small
//! self-hosted script (no CDN; the strict CSP forbids inline script).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::api::wire::reply_schemas;
use crate::api::Request;

/// One documented route: method, path, summary, whether it needs a Bearer token, the request
/// body's fields (name, JSON type, required), and the reply schema (a `protocol.ts` type name
/// from the wire samples; `None`: not JSON).
pub(super) struct Doc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub bearer: bool,
    pub body: &'static [(&'static str, &'static str, bool)],
    pub reply: Option<&'static str>,
}

const fn doc(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    bearer: bool,
    body: &'static [(&'static str, &'static str, bool)],
    reply: Option<&'static str>,
) -> Doc {
    Doc {
        method,
        path,
        summary,
        bearer,
        body,
        reply,
    }
}

/// Every HTTP route, documented.
pub(super) const DOCUMENTED: &[Doc] = &[
    doc("get", "/health", "Liveness, version, uptime, role table, park states (per park only for the caller's parks)", false, &[], Some("Health")),
    doc("get", "/metrics", "Prometheus metrics (only with remote.metrics)", false, &[], None),
    doc("post", "/api/login", "Password login; answers a session token", false, &[("username", "string", true), ("password", "string", true)], Some("LoginResult")),
    doc("post", "/api/setup", "Creates the first superuser (loopback, same origin, one-time setup code)", false, &[("username", "string", true), ("password", "string", true), ("setup_code", "string", true)], Some("LoginResult")),
    doc("post", "/api/logout", "Ends the session (204)", true, &[], None),
    doc("post", "/api/session/refresh", "Rotates the session token; the old one ends after a short grace", true, &[], Some("LoginResult")),
    doc("get", "/api/me", "Who the caller is", true, &[], Some("MeReply")),
    doc("get", "/api/snapshot", "The live picture of the caller's parks (API tokens: live:read)", true, &[], Some("SnapshotMsg")),
    doc("post", "/api/write", "Writes a PLC node (API tokens: write)", true, &[("plc", "string", true), ("node", "string", true), ("value", "any", true)], Some("WriteResult")),
    doc("get", "/api/openapi.json", "This document", false, &[], None),
    doc("get", "/api/docs", "This document, rendered (HTML)", false, &[], None),
    doc("get", "/api/docs.js", "The renderer of /api/docs", false, &[], None),
    doc("get", "/api/alarms", "The alarm list of the caller's parks (API tokens: alarms:read)", true, &[], Some("AlarmList")),
    doc("post", "/api/alarms/ack", "Acknowledges alarms, one result per alarm (API tokens: alarms:ack)", true, &[("ids", "array", true), ("comment", "string", false)], Some("AlarmAckReply")),
    doc("get", "/api/alarms/journal", "Alarm journal, newest first; query from, to, park, priority, alarm, limit, before_id (API tokens: alarms:read)", true, &[], Some("AlarmJournalPage")),
    doc("get", "/api/alarms/journal.csv", "The alarm journal as RFC 4180 CSV (same query as /api/alarms/journal)", true, &[], None),
    doc("get", "/api/incidents", "One row per alarm occurrence; query start_date, end_date, park, type, limit (API tokens: alarms:read)", true, &[], Some("IncidentPage")),
    doc("get", "/api/history", "Trend data; query tags (comma-separated or repeated), from, to, max_points (API tokens: history:read)", true, &[], Some("HistoryReply")),
    doc("get", "/api/history.csv", "Recorded values as RFC 4180 CSV, one column per tag (same query as /api/history)", true, &[], None),
    doc("get", "/api/trend.svg", "A trend chart as SVG; query as /api/history plus width, height", true, &[], None),
    doc("get", "/api/trend.png", "A trend chart as PNG; query as /api/history plus width, height", true, &[], None),
    doc("get", "/api/calibration/records", "Calibration records of the caller's parks; query calibration, from, to", true, &[], Some("CalibrationRecords")),
    doc("get", "/api/calibration/records/{file}", "One calibration record as a printable HTML certificate (<n>.html)", true, &[], None),
    doc("get", "/api/messages/export", "A conversation or channel for a time range as CSV; query channel=park:<id> or users=<a>,<b>, from, to (admin, superuser)", true, &[], None),
    doc("get", "/ws", "WebSocket upgrade (subprotocol `bearer, <token>`): requests `{id, op, …}`, replies, snapshot and update pushes; see x-websocket", false, &[], None),
    doc("get", "/", "The UI (HTML)", false, &[], None),
    doc("get", "/{*path}", "The UI's static files", false, &[], None),
];

/// The document's path for an axum route (`/{*path}` → `/{path}`).
fn openapi_path(p: &str) -> String {
    p.replace("{*", "{")
}

fn schema_type(t: &str) -> Value {
    if t == "any" {
        json!({})
    } else {
        json!({ "type": t })
    }
}

/// The whole OpenAPI 3.1 document.
pub(super) fn document() -> Value {
    let mut paths = Map::new();
    for d in DOCUMENTED {
        let mut op = json!({ "summary": d.summary, "responses": {} });
        let ok = match d.reply {
            Some(t) => {
                json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{t}")}}}})
            }
            None => json!({"description": "OK"}),
        };
        op["responses"]["200"] = ok;
        op["responses"]["default"] = json!({"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HttpErrorBody"}}}});
        if d.bearer {
            op["security"] = json!([{"bearer": []}]);
        }
        if !d.body.is_empty() {
            let props: Map<String, Value> = d
                .body
                .iter()
                .map(|(n, t, _)| (n.to_string(), schema_type(t)))
                .collect();
            let req: Vec<&str> = d.body.iter().filter(|f| f.2).map(|f| f.0).collect();
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": props, "required": req}}}});
        }
        if d.path.contains('{') {
            op["parameters"] = json!([{"name": "path", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        let entry = paths
            .entry(openapi_path(d.path))
            .or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    let schemas: Map<String, Value> = reply_schemas()
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stator HTTP and WebSocket API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every operation is one request handled by one dispatcher; docs/protocol.md has the full contract."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A session token or an API token (stator_<id>_<secret>)"}},
            "schemas": schemas
        },
        "x-websocket": {
            "path": "/ws",
            "request": {"type": "object", "required": ["op"], "properties": {"id": {}, "op": {"enum": Request::OPS}}},
            "reply": {"$ref": "#/components/schemas/ReplyMsg"},
            "pushes": [
                {"$ref": "#/components/schemas/SnapshotMsg"},
                {"$ref": "#/components/schemas/UpdateMsg"},
                {"$ref": "#/components/schemas/AlarmPush"},
                {"$ref": "#/components/schemas/AlarmsPush"},
                {"$ref": "#/components/schemas/ServicePush"},
                {"$ref": "#/components/schemas/MessagePush"},
                {"$ref": "#/components/schemas/ReceiptPush"},
                {"$ref": "#/components/schemas/PresencePush"},
                {"$ref": "#/components/schemas/LogbookPush"},
                {"$ref": "#/components/schemas/SessionEnded"}
            ]
        }
    })
}

/// `GET /api/openapi.json`.
pub(super) async fn json() -> Response {
    axum::Json(document()).into_response()
}

/// `GET /api/docs`: the document rendered by `/api/docs.js`.
pub(super) async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stator API</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body>\
         <h1>Stator API</h1><p><a href=\"/api/openapi.json\">openapi.json</a></p>\
         <div id=\"doc\">Loading…</div><script src=\"/api/docs.js\"></script></body></html>",
    )
        .into_response()
}

/// `GET /api/docs.js`: renders paths and schemas as plain HTML (DOM methods only, no HTML
/// strings, so nothing in the document can inject markup).
pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        r#"(async () => {
  const root = document.getElementById('doc')
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e }
  const doc = await (await fetch('/api/openapi.json')).json()
  root.textContent = ''
  root.append(el('p', doc.info.title + ' ' + doc.info.version))
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const s = el('section'); s.className = 'route'
      s.append(el('h2', method.toUpperCase() + ' ' + path), el('p', op.summary))
      if (op.security) s.append(el('p', 'Authorization: Bearer'))
      if (op.requestBody) s.append(el('pre', JSON.stringify(op.requestBody.content['application/json'].schema, null, 2)))
      const ok = op.responses['200'].content
      if (ok) s.append(el('pre', JSON.stringify(ok['application/json'].schema, null, 2)))
      root.append(s)
    }
  }
  root.append(el('h2', 'WebSocket operations'), el('p', doc['x-websocket'].request.properties.op.enum.join(', ')))
  root.append(el('h2', 'Schemas'))
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    root.append(el('h3', name), el('pre', JSON.stringify(schema, null, 2)))
  }
})()
"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_route_is_documented_and_vice_versa() {
        let served: Vec<(String, String)> = super::super::server::SERVED
            .iter()
            .map(|(m, p)| {
                let m = if *m == "any" { "get" } else { m };
                (m.to_string(), p.to_string())
            })
            .collect();
        let documented: Vec<(String, String)> = DOCUMENTED
            .iter()
            .map(|d| (d.method.to_string(), d.path.to_string()))
            .collect();
        for s in &served {
            assert!(documented.contains(s), "served but not documented: {s:?}");
        }
        for d in &documented {
            assert!(served.contains(d), "documented but not served: {d:?}");
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let text = d.to_string();
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let mut refs = 0;
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling $ref {name}");
            refs += 1;
        }
        assert!(refs >= 8, "{refs}");
        assert_eq!(
            d["paths"]["/api/session/refresh"]["post"]["security"][0]["bearer"],
            json!([])
        );
        let ops = d["x-websocket"]["request"]["properties"]["op"]["enum"]
            .as_array()
            .unwrap();
        assert!(ops.contains(&json!("api_token_create")));
        assert_eq!(ops.len(), Request::OPS.len());
        // Every schema is an object schema with its required keys listed.
        let health = &schemas["Health"];
        assert_eq!(health["type"], "object");
        assert!(health["required"]
            .as_array()
            .unwrap()
            .contains(&json!("parks")));
    }
}
