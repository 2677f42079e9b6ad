//! The web console at `/console/`: hand-written HTML, CSS and ES modules embedded in the
//! binary and served with a strict Content-Security-Policy. The files need no key; the
//! console is a client of the same HTTP API as any app, sending the key and the
//! `Pemba-Actor` header the user signs in with, so every rule is the server's.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::routes::Route;

/// Where the console is served.
pub const PREFIX: &str = "/console/";

/// The policy every console response carries: scripts, styles and requests only from this
/// origin, no inline script or style, no plugins, no framing, forms post nowhere. Names
/// the API returns are inserted as text nodes, so a name that looks like HTML stays text
/// even before this policy applies.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under [`PREFIX`], media type and contents.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console. `index.html` is also what `/console/` answers.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        media_type: "text/html; charset=utf-8",
        body: include_str!("../console/index.html"),
    },
    Asset {
        name: "style.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("../console/style.css"),
    },
    Asset {
        name: "favicon.svg",
        media_type: "image/svg+xml",
        body: include_str!("../console/favicon.svg"),
    },
    Asset {
        name: "js/app.js",
        media_type: JS,
        body: include_str!("../console/js/app.js"),
    },
    Asset {
        name: "js/api.js",
        media_type: JS,
        body: include_str!("../console/js/api.js"),
    },
    Asset {
        name: "js/dom.js",
        media_type: JS,
        body: include_str!("../console/js/dom.js"),
    },
    Asset {
        name: "js/groups.js",
        media_type: JS,
        body: include_str!("../console/js/groups.js"),
    },
    Asset {
        name: "js/members.js",
        media_type: JS,
        body: include_str!("../console/js/members.js"),
    },
    Asset {
        name: "js/resources.js",
        media_type: JS,
        body: include_str!("../console/js/resources.js"),
    },
    Asset {
        name: "js/schema.js",
        media_type: JS,
        body: include_str!("../console/js/schema.js"),
    },
    Asset {
        name: "js/relationships.js",
        media_type: JS,
        body: include_str!("../console/js/relationships.js"),
    },
    Asset {
        name: "js/check.js",
        media_type: JS,
        body: include_str!("../console/js/check.js"),
    },
];

/// The console's routes, public (the files hold no secret; the API calls carry the key).
pub fn routes() -> Vec<Route> {
    let public = |path: &'static str, handler| Route {
        method: Method::GET,
        path,
        public: true,
        body_limit: None,
        handler,
        decode: None,
    };
    vec![
        public("/console", get(redirect)),
        public("/console/", get(|| async { serve("index.html") })),
        public(
            "/console/{*file}",
            get(|Path(file): Path<String>| async move { serve(&file) }),
        ),
    ]
}

/// `/console` → `/console/`, so the page's relative URLs resolve under the prefix.
async fn redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(LOCATION, HeaderValue::from_static(PREFIX))],
    )
        .into_response()
}

/// The embedded file `name`, or a 404 in the API's error shape.
fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return crate::ApiError::not_found(format!("no console file `{name}`")).into_response();
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.media_type)),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            // Always revalidated: a new binary must not run against an old cached script.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_embedded() {
        // A module imported but not listed would fail only in a browser; catch it here.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap_or_default();
                let path = format!("js/{imported}");
                assert!(
                    ASSETS.iter().any(|a| a.name == path),
                    "{} imports {path}, which is not embedded",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn no_inline_script_or_style_in_the_page() {
        let page = serve("index.html");
        assert_eq!(page.status(), StatusCode::OK);
        let html = ASSETS
            .iter()
            .find(|a| a.name == "index.html")
            .map(|a| a.body)
            .unwrap_or_default();
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{html}"
        );
        assert!(html.contains(r#"<script type="module" src="js/app.js">"#));
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
    }
}
