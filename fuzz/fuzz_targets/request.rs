//! Request decoding of every route: the first byte picks a route of the route table that
//! reads a JSON body, the rest is the body, decoded as the route's handler decodes it.
//! Never panics; a refusal is always the API's 4xx error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pemba_server::routes::{decode_body, list};

type Routes = Vec<(pemba_server::routes::Method, &'static str)>;

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        list()
            .into_iter()
            .filter(|(method, path, _)| decode_body(method, path, b"{}").is_some())
            .map(|(method, path, _)| (method, path))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let routes = routes();
    let (method, path) = &routes[selector as usize % routes.len()];
    if let Some(Err(error)) = decode_body(method, path, body) {
        assert!(error.status.is_client_error(), "{method} {path}: {error}");
        assert!(!error.message.is_empty());
    }
});
