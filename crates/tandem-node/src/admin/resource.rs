//! One path and its methods: the rule that any other method answers 405
//! with `Allow`, shared by every route family.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ErrorBody;

/// One path and the methods it answers; any other method answers 405 with
/// an `Allow` header listing these (without this, actix would fall through
/// to the app's 404).
pub fn resource(path: &str, routes: Vec<(Method, actix_web::Route)>) -> actix_web::Resource {
    let allow = routes
        .iter()
        .map(|(m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut resource = web::resource(path);
    for (method, route) in routes {
        resource = resource.route(route.method(method));
    }
    resource.default_service(web::to(move |req: HttpRequest| {
        let allow = allow.clone();
        async move {
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, allow.clone()))
                .json(ErrorBody {
                    error: format!(
                        "{} is not allowed on {}; allowed: {allow}",
                        req.method(),
                        req.path()
                    ),
                })
        }
    }))
}
