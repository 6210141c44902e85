//! The session event stream (server-sent events): recent history, then
//! live events.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;

use super::dto::EventsQuery;
use super::error::{ApiError, ApiResult};
use super::state::AdminState;
use crate::registry_actor::RecentEvents;

/// Most history events an event stream may ask for.
pub const MAX_EVENT_HISTORY: usize = 10_000;

fn sse_frame(seq: u64, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("id: {seq}\ndata: {data}\n\n"))
}

/// Server-sent events: recent history first, then live events, each
/// `id: <seq>` and `data: <json>` (`seq`, `at_ms`, `kind` and its fields;
/// `error` events carry `code` and `message`). A `: keep-alive` comment
/// comes after 15 s of silence and `: lagged, N events missed` when this
/// client fell behind. The stream does not end by itself.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(EventsQuery),
    responses((status = 200, description = "A server-sent event stream (text/event-stream) of session events", content_type = "text/event-stream", body = String)),
    security(("bearer" = [])))]
pub(super) async fn events(
    state: web::Data<AdminState>,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let limit = query.history.unwrap_or(100);
    if limit > MAX_EVENT_HISTORY {
        return Err(ApiError::bad_request(format!(
            "history may be at most {MAX_EVENT_HISTORY}"
        )));
    }
    // Subscribe first so nothing falls between the history and the live part.
    let live = state.events.subscribe();
    let history = if limit == 0 {
        Vec::new()
    } else {
        state.registry.send(RecentEvents { limit }).await??
    };
    let mut last_seq = 0;
    let mut first = Vec::with_capacity(history.len());
    for e in history {
        let mut data = serde_json::from_str::<serde_json::Value>(&e.detail)
            .ok()
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({ "kind": e.kind, "detail": e.detail }));
        if let Some(obj) = data.as_object_mut() {
            obj.insert("seq".into(), e.seq.into());
            obj.insert("at_ms".into(), e.at_ms.into());
        }
        last_seq = last_seq.max(e.seq);
        first.push(Ok::<_, actix_web::Error>(sse_frame(e.seq, &data)));
    }
    let history = futures::stream::iter(first);
    let live = futures::stream::unfold((live, last_seq), |(mut rx, last)| async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (rx, last))),
                Ok(Ok(event)) => {
                    if event.seq != 0 && event.seq <= last {
                        continue;
                    }
                    let data = serde_json::to_value(&*event).unwrap_or_default();
                    let last = last.max(event.seq);
                    return Some((Ok(sse_frame(event.seq, &data)), (rx, last)));
                }
                Ok(Err(RecvError::Lagged(n))) => {
                    let line = format!(": lagged, {n} events missed\n\n");
                    return Some((Ok(Bytes::from(line)), (rx, last)));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    use futures::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(history.chain(live)))
}
