//! The OpenAPI 3.1 document served at `/api/openapi.json`.

use crate::routes::{deployments, files, fleet, jobs, limits, models, sovereignty, tenancy};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "lutece", description = "The lutece control plane API. Authenticate with `Authorization: Bearer <API key>`."),
    paths(
        tenancy::create_tenant, tenancy::list_tenants, tenancy::get_tenant,
        tenancy::create_key, tenancy::list_keys, tenancy::revoke_key, tenancy::whoami,
        limits::set_tenant_limits, limits::get_tenant_limits, limits::set_key_limits, limits::get_key_limits,
        limits::set_gpu_quota, limits::get_gpu_quota,
        jobs::submit, jobs::list, jobs::get, jobs::cancel, jobs::logs,
        fleet::list_nodes, fleet::create_join_token, fleet::usage, fleet::token_usage,
        deployments::create, deployments::list, deployments::get, deployments::scale, deployments::delete,
        models::import, models::list, models::get, models::remove,
        files::upload, files::list, files::get, files::content, files::delete,
        sovereignty::list_keys, sovereignty::add_key, sovereignty::destroy_key,
        sovereignty::get_residency, sovereignty::set_residency, sovereignty::residency_report,
        sovereignty::locations, sovereignty::delete_tenant, sovereignty::deletion_certificate,
        sovereignty::export, sovereignty::public_key,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub(crate) struct ApiDoc;

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
