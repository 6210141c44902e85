//! The admin API's OpenAPI document, as served at `/api/v1/openapi.json`.
//!
//! Most of it is derived from the handlers' `#[utoipa::path]` attributes and
//! the DTOs ([`ApiDoc`], [`ChannelsApiDoc`]). This module adds, in one
//! place, what the derive cannot say per handler:
//!
//! - the statuses every route shares because one piece of code answers them
//!   for all: 401 from the token middleware on every `/api` route; 400, 413
//!   and 422 from the body extractors; 400 from the query extractor; 404 from
//!   the path extractor and the id lookups; 500 and 503 from [`ApiError`]'s
//!   mapping of node errors (a registry or capture failure; shutting down);
//! - the request shapes the code checks beyond one struct: the shared
//!   rectangle's three forms and a new session's two sources (`oneOf`), a
//!   window filter naming at least one thing (`anyOf`), and
//!   `additionalProperties: false` wherever serde denies unknown fields;
//! - the cluster route, whose handler lives in `admin/cluster.rs`.
//!
//! A method a path does not list answers 405 with `Allow` (see
//! `admin::resource::resource`); that is not an operation, so it is not listed here.
//!
//! [`ApiError`]: super::error::ApiError

use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;

use super::channels::ChannelsApiDoc;
use super::dto::{
    ApplicationBody, Attendee, AttendeeDetail, AttendeeScope, AttendeeState, ChannelResource,
    ClipboardResource, ControlLevelBody, DefaultLevel, DisconnectBody, FrameIntervalBody,
    GraphicsResource, Group, GroupBody, Health, Invitation, InvitationPatch, Level, LevelState,
    MonitorBody, NewInvitation, NewSession, NewSessionSource, PolicyBody, Resources, Session,
    SharedRect, SharedRectBody, Window, WindowFilterBody,
};
use super::error::ErrorBody;
use super::reverse::ReverseApiDoc;
use super::{attendees, events, groups, invitations, sessions, windows};

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(ChannelsApiDoc::openapi());
    doc.merge(ReverseApiDoc::openapi());
    let mut v = serde_json::to_value(&doc).expect("an OpenAPI document serialises");
    add_cluster_routes(&mut v);
    patch_schemas(&mut v);
    describe_event_streams(&mut v);
    unsigned_ranges(&mut v);
    add_shared_statuses(&mut v);
    v
}

/// utoipa writes `u32` and `u64` as `format: int32` / `int64`, whose ranges
/// are signed; the code reads the whole unsigned range, so say that.
fn unsigned_ranges(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let unsigned = map.get("minimum").and_then(Value::as_u64) == Some(0);
            let top = match map.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(Value::from(u32::MAX)),
                Some("int64") if unsigned => Some(Value::from(u64::MAX)),
                _ => None,
            };
            if let Some(top) = top {
                map.remove("format");
                map.entry("maximum").or_insert(top);
            }
            map.values_mut().for_each(unsigned_ranges);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_ranges),
        _ => {}
    }
}

/// The two server-sent event streams: before OpenAPI 3.2, the schema of a
/// `text/event-stream` response describes each event (`data`, `event`, `id`).
fn describe_event_streams(doc: &mut Value) {
    let codes: Vec<&str> = crate::events::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let session_event = json!({
        "type": "object",
        "required": ["seq", "at_ms", "kind"],
        "properties": {
            "seq": {"type": "integer", "minimum": 0, "description": "Sequence number in the event log (0: not stored)."},
            "at_ms": {"type": "integer", "description": "Unix milliseconds."},
            "kind": {"type": "string", "description": "session_opened, attendee_connected, ..., error."},
            "session": {"type": ["string", "null"]},
            "attendee": {"type": ["integer", "null"], "minimum": 0},
            "code": {"type": "string", "enum": codes, "description": "`error` events: what failed."},
            "message": {"type": "string", "description": "`error` events: one line."}
        }
    });
    let events = json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "enum": ["message"]},
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's `seq`."},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": session_event
            }
        }
    });
    let arrivals = json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "enum": ["message", "lagged"],
                "description": "`lagged`: data is `{\"missed\": N}`."},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {
                    "type": "object",
                    "properties": {
                        "session": {"type": "string"},
                        "channel": {"type": "string"},
                        "attendee": {"type": "integer", "minimum": 0},
                        "bytes": {"type": "integer", "minimum": 0},
                        "text": {"type": "string"},
                        "hex": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
                        "missed": {"type": "integer", "minimum": 0}
                    }
                }
            }
        }
    });
    for (path, schema) in [
        ("/api/v1/events", events),
        ("/api/v1/sessions/{id}/channels/{name}/messages", arrivals),
    ] {
        doc["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"] =
            schema;
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Adds the statuses answered by shared code to every operation that can
/// reach it (keeping a route's own, more specific description).
fn add_shared_statuses(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let api = path.starts_with("/api/");
        for method in METHODS {
            let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                continue;
            };
            let params: Vec<String> = op
                .get("parameters")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p["in"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let body_types: Vec<String> = op
                .get("requestBody")
                .and_then(|b| b["content"].as_object())
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            let mut add: Vec<(&str, Value)> = Vec::new();
            if api {
                let mut unauthorized =
                    error_response("Missing or wrong bearer token (`Authorization: Bearer TOKEN`)");
                unauthorized["headers"] = json!({
                    "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
                });
                add.push(("401", unauthorized));
                add.push((
                    "500",
                    error_response("The node failed (a registry write or capture failure; also an `error` event)"),
                ));
                add.push(("503", error_response("The node is shutting down")));
            }
            if params.iter().any(|p| p == "path") {
                add.push(("404", error_response("Unknown id")));
            }
            if params.iter().any(|p| p == "query") {
                add.push((
                    "400",
                    error_response("A query parameter is malformed or out of range"),
                ));
            }
            if !body_types.is_empty() {
                add.push(("413", error_response("The body is larger than 64 KiB")));
                add.push(("422", error_response("A value is invalid")));
            }
            if body_types.iter().any(|t| t == "application/json") {
                add.push((
                    "400",
                    error_response("The body is not JSON (or not sent as application/json)"),
                ));
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses is an object");
            for (status, response) in add {
                responses.entry(status).or_insert(response);
            }
        }
    }
}

fn schema_mut<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    &mut doc["components"]["schemas"][name]
}

/// Request shapes the derive cannot state.
fn patch_schemas(doc: &mut Value) {
    // serde denies unknown fields in every request body.
    for name in [
        "NewSession",
        "NewInvitation",
        "InvitationPatch",
        "ControlLevelBody",
        "DisconnectBody",
        "NewChannel",
        "AccessBody",
        "ClipboardSwitch",
        "WindowFilterBody",
        "FrameIntervalBody",
        "GroupBody",
        "ConnectTo",
    ] {
        schema_mut(doc, name)["additionalProperties"] = json!(false);
    }

    // A group's channel defaults: at most 64, keyed by valid channel names.
    for name in ["GroupBody", "Group"] {
        let channels = &mut schema_mut(doc, name)["properties"]["channels"];
        channels["maxProperties"] = json!(tandem_session::MAX_GROUP_CHANNELS);
        channels["propertyNames"] = json!({"pattern": "^[A-Za-z0-9._-]{1,64}$"});
    }

    // A window filter names at least one class, pid or window; each class
    // is 1 to 128 bytes.
    let filter = schema_mut(doc, "WindowFilterBody");
    filter["properties"]["classes"]["items"] =
        json!({"type": "string", "minLength": 1, "maxLength": 128});
    filter["anyOf"] = json!([
        {"required": ["classes"], "properties": {"classes": {"minItems": 1}}},
        {"required": ["pids"], "properties": {"pids": {"minItems": 1}}},
        {"required": ["windows"], "properties": {"windows": {"minItems": 1}}},
    ]);

    // Invitation passwords have a floor (`passwords::MIN_PASSWORD_LEN`).
    schema_mut(doc, "NewInvitation")["properties"]["password"]["minLength"] =
        json!(crate::passwords::MIN_PASSWORD_LEN);
    // A reverse connection string as `ReverseConnectionString` parses it
    // (host names of up to three labels, a port 1-65535, a sha256 in hex).
    schema_mut(doc, "ConnectTo")["properties"]["connection_string"]["pattern"] = json!(
        "^tandem-reverse://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){0,2}[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])/\\?fp=[0-9a-f]{64}$"
    );

    // The shared rectangle: a rectangle, the whole desktop or a monitor.
    let rect = schema_mut(doc, "SharedRectBody");
    let props = rect["properties"].clone();
    let side = |p: &Value| {
        let mut p = p.clone();
        p["minimum"] = json!(1);
        p["type"] = json!("integer");
        p
    };
    let edge = |p: &Value| {
        let mut p = p.clone();
        p["type"] = json!("integer");
        p
    };
    *rect = json!({
        "description": rect["description"].clone(),
        "oneOf": [
            {
                "title": "Rectangle",
                "type": "object",
                "required": ["x", "y", "width", "height"],
                "properties": {
                    "x": edge(&props["x"]), "y": edge(&props["y"]),
                    "width": side(&props["width"]), "height": side(&props["height"]),
                    "full": {"type": "boolean", "enum": [false]}
                },
                "additionalProperties": false
            },
            {
                "title": "Whole desktop",
                "type": "object",
                "required": ["full"],
                "properties": {"full": {"type": "boolean", "enum": [true], "description": "Share the whole desktop."}},
                "additionalProperties": false
            },
            {
                "title": "Monitor",
                "type": "object",
                "required": ["monitor"],
                "properties": {"monitor": {"type": "string", "minLength": 1, "maxLength": 64,
                    "description": props["monitor"]["description"].clone()}},
                "additionalProperties": false
            }
        ]
    });

    // A new session: the keys of its source only.
    let session = schema_mut(doc, "NewSession");
    let props = session["properties"].clone();
    let variant = |source: &str, keys: &[&str]| {
        let mut properties = Map::new();
        properties.insert(
            "source".into(),
            json!({"type": "string", "enum": [source], "description": "Capture source."}),
        );
        for key in keys {
            properties.insert((*key).to_owned(), props[*key].clone());
        }
        json!({
            "title": source,
            "type": "object",
            "required": ["source"],
            "properties": properties,
            "additionalProperties": false
        })
    };
    let common = [
        "name",
        "frame_interval_ms",
        "default_control_level",
        "control_policy",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        common.iter().chain(extra).copied().collect()
    };
    *session = json!({
        "description": session["description"].clone(),
        "oneOf": [
            variant("synthetic", &with(&["width", "height", "seed"])),
            variant("x11", &with(&["display", "monitor", "filter"])),
        ]
    });
}

/// `GET /api/v1/cluster/nodes` and the cluster scope of the attendee list
/// (handlers in `admin/cluster.rs`).
fn add_cluster_routes(doc: &mut Value) {
    doc["paths"]["/api/v1/cluster/nodes"] = json!({
        "get": {
            "tags": ["cluster"],
            "summary": "The cluster's live members as this node sees them",
            "operationId": "list_nodes",
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "The members",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClusterNodes"}}}
                },
                "404": error_response("This node is not in a cluster")
            }
        }
    });
    doc["components"]["schemas"]["ClusterNodes"] = json!({
        "type": "object",
        "required": ["cluster_id", "self_id", "nodes"],
        "properties": {
            "cluster_id": {"type": "string", "description": "The cluster's name."},
            "self_id": {"type": "string", "description": "The node answering."},
            "nodes": {
                "type": "array",
                "description": "Live members, this node included: id, addresses, sessions, load, heartbeat age.",
                "items": {"type": "object"}
            }
        }
    });
    if let Some(op) = doc["paths"]["/api/v1/attendees"]["get"].as_object_mut() {
        let responses = op
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("responses is an object");
        responses.insert(
            "404".into(),
            error_response("`scope=cluster` on a node that is in no cluster"),
        );
        if let Some(ok) = responses.get_mut("200") {
            ok["headers"] = json!({
                "X-Tandem-Unreachable": {
                    "description": "`scope=cluster`: members that did not answer, comma-separated",
                    "schema": {"type": "string"}
                }
            });
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The generated OpenAPI document of the admin API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tandem admin API", description = "Administration of a Tandem node: sessions, invitations, attendees, control requests, events."),
    paths(
        super::healthz, super::metrics, super::openapi,
        sessions::list_sessions, sessions::open_session, sessions::pause_session, sessions::resume_session, sessions::set_shared_rect, sessions::set_frame_interval, sessions::close_session, sessions::framebuffer_png,
        windows::list_windows, windows::list_applications, windows::share_application, windows::unshare_application, windows::list_monitors, windows::get_filter, windows::set_filter, windows::clear_filter,
        invitations::list_invitations, invitations::create_invitation, invitations::get_invitation, invitations::update_invitation, invitations::revoke_invitation,
        attendees::list_attendees, attendees::get_attendee, attendees::set_control_level, attendees::disconnect_attendee,
        attendees::list_control_requests, attendees::grant_control, attendees::deny_control,
        groups::list_groups, groups::get_group, groups::set_group, groups::delete_group,
        events::events,
    ),
    components(schemas(ErrorBody, Health, Level, LevelState, Session, NewSession, NewSessionSource, DefaultLevel, PolicyBody,
        SharedRectBody, SharedRect, FrameIntervalBody, Invitation, Window, ApplicationBody, WindowFilterBody, MonitorBody,
        NewInvitation, InvitationPatch, Attendee, AttendeeDetail, Resources, GraphicsResource, ChannelResource, ClipboardResource,
        AttendeeState, AttendeeScope, ControlLevelBody, DisconnectBody, Group, GroupBody)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_operation_documents_401() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let has = op["responses"].get("401").is_some();
                assert_eq!(has, path.starts_with("/api/"), "{method} {path}");
            }
        }
    }

    #[test]
    fn bodies_document_their_errors() {
        let doc = document();
        let op = &doc["paths"]["/api/v1/invitations"]["post"]["responses"];
        for status in ["400", "401", "413", "422"] {
            assert!(
                op.get(status).is_some(),
                "POST /api/v1/invitations lacks {status}"
            );
        }
    }
}
