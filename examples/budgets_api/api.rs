//! The budgets API as one module, for the tests: the framework-neutral app and the routes of
//! each framework enabled. The binaries declare the modules they need themselves.

#[path = "app.rs"]
pub(crate) mod app;

#[cfg(feature = "axum")]
#[path = "axum_routes.rs"]
pub(crate) mod axum_routes;

#[cfg(feature = "actix-web")]
#[path = "actix_routes.rs"]
pub(crate) mod actix_routes;
