//! The attendee page, built from `web/` by `npm run build` into
//! `web/dist/` (committed, so running a node needs no npm) and embedded
//! here. `tests/tests/browser.rs` rebuilds it and fails when the committed
//! bundle is stale.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Path under the page's origin.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

/// Every file of the page.
pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../../../web/dist/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../../web/dist/app.js"),
    },
    Asset {
        path: "/worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../../web/dist/worker.js"),
    },
];

/// The asset served at `path` (`/` is the page).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}
