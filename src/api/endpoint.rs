//! One row of the route table ([`super::routes`]): a handler with the `#[utoipa::path]` that
//! documents it. Its method and path are read from that annotation, so the route the server
//! mounts and the operation the OpenAPI document lists cannot drift apart.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, Route};
use utoipa::openapi::path::{HttpMethod, Operation};

/// Sets a handler on a route.
pub type SetHandler = Box<dyn Fn(Route) -> Route>;

/// An endpoint: where it is served, how it is documented, which guards it has of its own.
pub struct Endpoint {
    pub path: String,
    pub methods: Vec<HttpMethod>,
    /// `None` for what is served but not part of the documented API (the document itself).
    pub operation: Option<Operation>,
    pub handler: SetHandler,
    /// A lookup by prescription ID or token: the brute-force throttle wraps it.
    pub lookup: bool,
}

impl Endpoint {
    /// The endpoint `P` (the type `#[utoipa::path]` generates for a handler) documents.
    /// (`tag = ...` of the annotation is applied here, as `#[derive(OpenApi)]` would.)
    pub fn documented<P, F, Args>(handler: F) -> Self
    where
        P: utoipa::Path + for<'t> utoipa::__dev::Tags<'t>,
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self {
            path: P::path(),
            methods: P::methods(),
            operation: Some(operation::<P>()),
            handler: set(handler),
            lookup: false,
        }
    }

    /// An endpoint left out of the OpenAPI document.
    pub fn undocumented<F, Args>(method: HttpMethod, path: &str, handler: F) -> Self
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self {
            path: path.to_owned(),
            methods: vec![method],
            operation: None,
            handler: set(handler),
            lookup: false,
        }
    }

    /// Marks a lookup by prescription ID or token (throttled, documented with 429).
    #[must_use]
    pub fn lookup(mut self) -> Self {
        self.lookup = true;
        self
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("path", &self.path)
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

fn operation<P: utoipa::Path + for<'t> utoipa::__dev::Tags<'t>>() -> Operation {
    let mut operation = P::operation();
    let tags = P::tags();
    if !tags.is_empty() {
        operation
            .tags
            .get_or_insert_with(Vec::new)
            .extend(tags.into_iter().map(str::to_owned));
    }
    operation
}

fn set<F, Args>(handler: F) -> SetHandler
where
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Box::new(move |route| route.to(handler.clone()))
}

/// actix's name for a documented method.
pub fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}
