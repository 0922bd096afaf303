//! Tenants and their API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1–63 of lowercase letters, digits and '-'.
    pub name: String,
}

/// What a key may do. `operator` runs the platform (all tenants); `admin` manages its own
/// tenant's keys; `member` runs work in its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Member, Role::Admin, Role::Operator]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The tenant (by name) the key belongs to; defaults to the caller's. Only an operator may
    /// name another tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// A label for people, e.g. `ci` or `alice-laptop`.
    #[serde(default)]
    pub name: Option<String>,
    /// Defaults to `member`. A key never gets more than its creator has.
    #[serde(default)]
    pub role: Option<Role>,
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: ApiKey,
    /// The bearer token: `lut_<id>_<secret>`. Stored only as a hash.
    pub key: String,
}

/// Who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub tenant: String,
    pub key_id: String,
    pub role: Role,
}

/// Inference limits of a tenant (`PUT /api/v1/tenants/{name}/limits`, set by an operator) or
/// of one key (`PUT /api/v1/keys/{id}/limits`, set by its tenant's admin). An absent limit is
/// no limit; a request must pass both its key's limits and its tenant's. Over a rate limit the
/// answer is 429 `rate_limit_exceeded` with `retry-after`; once a budget is used up, 429
/// `insufficient_quota` with `retry-after` until the month ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InferenceLimits {
    /// Requests per minute to `/v1`, with a burst of one minute's allowance.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Prompt and completion tokens per minute.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Prompt and completion tokens per calendar month (UTC).
    #[serde(default)]
    pub monthly_token_budget: Option<u64>,
}

/// A tenant's share of the fleet's GPUs for jobs (`PUT /api/v1/tenants/{name}/gpu-quota`, set by
/// an operator). Its jobs start within its guarantee; beyond it, they borrow GPUs that other
/// tenants of its cohort are guaranteed but not using, up to its borrowing limit. A job that
/// the quota keeps waiting says so in its waiting reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuQuota {
    /// GPUs guaranteed to the tenant's jobs; absent: no quota (its jobs take what is free).
    #[serde(default)]
    pub guaranteed_gpus: Option<u32>,
    /// GPUs it may hold beyond its guarantee; absent: as many as its cohort leaves idle.
    #[serde(default)]
    pub borrow_limit_gpus: Option<u32>,
    /// Tenants naming the same cohort lend each other their idle guarantees; absent: a cohort
    /// of its own, so it cannot borrow.
    #[serde(default)]
    pub cohort: Option<String>,
    /// Fair-share weight, 1 to 1000 (default 1).
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

impl Default for GpuQuota {
    fn default() -> Self {
        GpuQuota {
            guaranteed_gpus: None,
            borrow_limit_gpus: None,
            cohort: None,
            weight: 1,
        }
    }
}
