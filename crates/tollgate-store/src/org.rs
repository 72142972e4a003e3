//! Teams, users, end customers and reusable budgets.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, PaginatorTrait, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use serde_json::Value;

use crate::entity::{budget, customer, team, user};
use crate::error::StoreError;
use crate::limits::{self, Limits, LimitsPatch, Patch, patch, patch_limits, set_limits};
use crate::store::{Page, Paged, Store};
use crate::util::{now_ms, random_base62, usd_to_nanos};

/// A stored team.
pub type TeamRecord = team::Model;
/// A stored user.
pub type UserRecord = user::Model;
/// A stored end customer.
pub type CustomerRecord = customer::Model;
/// A stored reusable budget.
pub type BudgetRecord = budget::Model;

/// Input of `/team/new`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NewTeam {
    /// Generated when absent.
    pub team_id: Option<String>,
    pub team_alias: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(flatten)]
    pub limits: Limits,
    pub metadata: Option<Value>,
    #[serde(default)]
    pub blocked: bool,
}

/// Input of `/team/update`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TeamUpdate {
    #[serde(default, deserialize_with = "patch")]
    pub team_alias: Patch<String>,
    pub models: Option<Vec<String>>,
    #[serde(flatten)]
    pub limits: LimitsPatch,
    pub metadata: Option<Value>,
    pub blocked: Option<bool>,
}

/// Input of `/user/new`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NewUser {
    /// Generated when absent.
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub user_role: Option<String>,
    pub team_id: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(flatten)]
    pub limits: Limits,
    pub metadata: Option<Value>,
    #[serde(default)]
    pub blocked: bool,
}

/// Input of `/user/update`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct UserUpdate {
    #[serde(default, deserialize_with = "patch")]
    pub user_email: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub user_role: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub team_id: Patch<String>,
    pub models: Option<Vec<String>>,
    #[serde(flatten)]
    pub limits: LimitsPatch,
    pub metadata: Option<Value>,
    pub blocked: Option<bool>,
}

/// Input of `/customer/new`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NewCustomer {
    /// The id requests carry in their `user` field (or the customer header).
    #[serde(alias = "user_id")]
    pub customer_id: String,
    pub alias: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(flatten)]
    pub limits: Limits,
    pub metadata: Option<Value>,
    #[serde(default)]
    pub blocked: bool,
}

/// Input of `/customer/update`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CustomerUpdate {
    #[serde(default, deserialize_with = "patch")]
    pub alias: Patch<String>,
    pub models: Option<Vec<String>>,
    #[serde(flatten)]
    pub limits: LimitsPatch,
    pub metadata: Option<Value>,
    pub blocked: Option<bool>,
}

/// Input of `/budget/new`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NewBudget {
    /// Generated when absent.
    pub budget_id: Option<String>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

/// Input of `/budget/update`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BudgetUpdate {
    #[serde(default, deserialize_with = "patch")]
    pub max_budget: Patch<f64>,
    #[serde(default, deserialize_with = "patch")]
    pub budget_duration: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub tpm_limit: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub rpm_limit: Patch<i64>,
    #[serde(default, deserialize_with = "patch")]
    pub max_parallel_requests: Patch<i64>,
}

fn new_id(prefix: &str, given: Option<String>, field: &'static str) -> Result<String, StoreError> {
    match given {
        Some(id) => limits::valid_id(field, &id),
        None => Ok(format!("{prefix}{}", random_base62(20)?)),
    }
}

fn map_insert_err(e: sea_orm::DbErr, entity: &'static str, id: &str) -> StoreError {
    match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            StoreError::Conflict { entity, id: id.to_owned() }
        }
        _ => StoreError::Db(e),
    }
}

/// get / delete / list / block for an entity with a string primary key.
macro_rules! common_ops {
    ($m:ident, $label:literal, $rec:ty, $get:ident, $delete:ident, $list:ident, $order:ident) => {
        impl Store {
            #[doc = concat!("The ", $label, " with this id (`NotFound` if missing).")]
            pub async fn $get(&self, id: &str) -> Result<$rec, StoreError> {
                $m::Entity::find_by_id(id.to_owned())
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| StoreError::not_found($label, id))
            }

            #[doc = concat!("Deletes a ", $label, " (`NotFound` if missing). Rows that reference it keep the id.")]
            pub async fn $delete(&self, id: &str) -> Result<$rec, StoreError> {
                let current = self.$get(id).await?;
                $m::Entity::delete_by_id(id.to_owned()).exec(&self.db).await?;
                Ok(current)
            }

            #[doc = concat!("Lists ", $label, "s, oldest first.")]
            pub async fn $list(&self, page: Page) -> Result<Paged<$rec>, StoreError> {
                let page = page.validate()?;
                let total = $m::Entity::find().count(&self.db).await?;
                let items = $m::Entity::find()
                    .order_by_asc($m::Column::CreatedAt)
                    .order_by_asc($m::Column::$order)
                    .offset(page.offset())
                    .limit(page.page_size)
                    .all(&self.db)
                    .await?;
                Ok(Paged { items, total, page: page.page, page_size: page.page_size })
            }
        }
    };
}

common_ops!(team, "team", TeamRecord, team_info, delete_team, list_teams, TeamId);
common_ops!(user, "user", UserRecord, user_info, delete_user, list_users, UserId);
common_ops!(customer, "customer", CustomerRecord, customer_info, delete_customer, list_customers, CustomerId);
common_ops!(budget, "budget", BudgetRecord, budget_info, delete_budget, list_budgets, BudgetId);

impl Store {
    /// Creates a team.
    pub async fn create_team(&self, req: NewTeam) -> Result<TeamRecord, StoreError> {
        let now = now_ms();
        let id = new_id("team_", req.team_id, "team_id")?;
        let lim = req.limits.validate(now)?;
        let models = limits::models(req.models)?;
        let metadata = limits::metadata(req.metadata)?;
        self.ensure_budget_exists(lim.budget_id.as_deref()).await?;
        let mut am = team::ActiveModel {
            team_id: Set(id.clone()),
            team_alias: Set(req.team_alias),
            models: Set(models),
            spend_nanos: Set(0),
            metadata: Set(metadata),
            blocked: Set(req.blocked),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        set_limits!(am, lim);
        am.insert(&self.db).await.map_err(|e| map_insert_err(e, "team", &id))
    }

    /// Updates a team.
    pub async fn update_team(&self, id: &str, upd: TeamUpdate) -> Result<TeamRecord, StoreError> {
        let now = now_ms();
        let lp = upd.limits.validate(now)?;
        let models = upd.models.map(limits::models).transpose()?;
        let metadata = upd.metadata.map(|m| limits::metadata(Some(m))).transpose()?;
        if let Some(Some(b)) = &lp.budget_id {
            self.ensure_budget_exists(Some(b)).await?;
        }
        let mut am = self.team_info(id).await?.into_active_model();
        patch_limits!(am, lp);
        if let Some(v) = upd.team_alias {
            am.team_alias = Set(v);
        }
        if let Some(v) = models {
            am.models = Set(v);
        }
        if let Some(v) = metadata {
            am.metadata = Set(v);
        }
        if let Some(v) = upd.blocked {
            am.blocked = Set(v);
        }
        am.updated_at = Set(now);
        Ok(am.update(&self.db).await?)
    }

    /// Blocks or unblocks a team.
    pub async fn set_team_blocked(&self, id: &str, blocked: bool) -> Result<TeamRecord, StoreError> {
        self.update_team(id, TeamUpdate { blocked: Some(blocked), ..TeamUpdate::default() }).await
    }

    /// Creates a user.
    pub async fn create_user(&self, req: NewUser) -> Result<UserRecord, StoreError> {
        let now = now_ms();
        let id = new_id("user_", req.user_id, "user_id")?;
        let lim = req.limits.validate(now)?;
        let models = limits::models(req.models)?;
        let metadata = limits::metadata(req.metadata)?;
        let team_id = limits::optional_id("team_id", req.team_id)?;
        self.ensure_budget_exists(lim.budget_id.as_deref()).await?;
        let mut am = user::ActiveModel {
            user_id: Set(id.clone()),
            user_email: Set(req.user_email),
            user_role: Set(req.user_role),
            team_id: Set(team_id),
            models: Set(models),
            spend_nanos: Set(0),
            metadata: Set(metadata),
            blocked: Set(req.blocked),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        set_limits!(am, lim);
        am.insert(&self.db).await.map_err(|e| map_insert_err(e, "user", &id))
    }

    /// Updates a user.
    pub async fn update_user(&self, id: &str, upd: UserUpdate) -> Result<UserRecord, StoreError> {
        let now = now_ms();
        let lp = upd.limits.validate(now)?;
        let models = upd.models.map(limits::models).transpose()?;
        let metadata = upd.metadata.map(|m| limits::metadata(Some(m))).transpose()?;
        let team_id = upd.team_id.map(|v| limits::optional_id("team_id", v)).transpose()?;
        if let Some(Some(b)) = &lp.budget_id {
            self.ensure_budget_exists(Some(b)).await?;
        }
        let mut am = self.user_info(id).await?.into_active_model();
        patch_limits!(am, lp);
        if let Some(v) = upd.user_email {
            am.user_email = Set(v);
        }
        if let Some(v) = upd.user_role {
            am.user_role = Set(v);
        }
        if let Some(v) = team_id {
            am.team_id = Set(v);
        }
        if let Some(v) = models {
            am.models = Set(v);
        }
        if let Some(v) = metadata {
            am.metadata = Set(v);
        }
        if let Some(v) = upd.blocked {
            am.blocked = Set(v);
        }
        am.updated_at = Set(now);
        Ok(am.update(&self.db).await?)
    }

    /// Creates an end customer.
    pub async fn create_customer(&self, req: NewCustomer) -> Result<CustomerRecord, StoreError> {
        let now = now_ms();
        let id = limits::valid_id("customer_id", &req.customer_id)?;
        let lim = req.limits.validate(now)?;
        let models = limits::models(req.models)?;
        let metadata = limits::metadata(req.metadata)?;
        self.ensure_budget_exists(lim.budget_id.as_deref()).await?;
        let mut am = customer::ActiveModel {
            customer_id: Set(id.clone()),
            alias: Set(req.alias),
            models: Set(models),
            spend_nanos: Set(0),
            metadata: Set(metadata),
            blocked: Set(req.blocked),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        set_limits!(am, lim);
        am.insert(&self.db).await.map_err(|e| map_insert_err(e, "customer", &id))
    }

    /// Updates an end customer.
    pub async fn update_customer(&self, id: &str, upd: CustomerUpdate) -> Result<CustomerRecord, StoreError> {
        let now = now_ms();
        let lp = upd.limits.validate(now)?;
        let models = upd.models.map(limits::models).transpose()?;
        let metadata = upd.metadata.map(|m| limits::metadata(Some(m))).transpose()?;
        if let Some(Some(b)) = &lp.budget_id {
            self.ensure_budget_exists(Some(b)).await?;
        }
        let mut am = self.customer_info(id).await?.into_active_model();
        patch_limits!(am, lp);
        if let Some(v) = upd.alias {
            am.alias = Set(v);
        }
        if let Some(v) = models {
            am.models = Set(v);
        }
        if let Some(v) = metadata {
            am.metadata = Set(v);
        }
        if let Some(v) = upd.blocked {
            am.blocked = Set(v);
        }
        am.updated_at = Set(now);
        Ok(am.update(&self.db).await?)
    }

    /// Blocks or unblocks an end customer.
    pub async fn set_customer_blocked(&self, id: &str, blocked: bool) -> Result<CustomerRecord, StoreError> {
        self.update_customer(id, CustomerUpdate { blocked: Some(blocked), ..CustomerUpdate::default() }).await
    }

    /// Creates a reusable budget.
    pub async fn create_budget(&self, req: NewBudget) -> Result<BudgetRecord, StoreError> {
        let now = now_ms();
        let id = new_id("budget_", req.budget_id, "budget_id")?;
        let max_budget_nanos = req.max_budget.map(|b| usd_to_nanos("max_budget", b)).transpose()?;
        let budget_duration = req
            .budget_duration
            .as_deref()
            .map(|d| limits::duration_and_reset(d, now).map(|(d, _)| d))
            .transpose()?;
        let am = budget::ActiveModel {
            budget_id: Set(id.clone()),
            max_budget_nanos: Set(max_budget_nanos),
            budget_duration: Set(budget_duration),
            tpm_limit: Set(limits::non_negative("tpm_limit", req.tpm_limit)?),
            rpm_limit: Set(limits::non_negative("rpm_limit", req.rpm_limit)?),
            max_parallel_requests: Set(limits::non_negative(
                "max_parallel_requests",
                req.max_parallel_requests,
            )?),
            created_at: Set(now),
            updated_at: Set(now),
        };
        am.insert(&self.db).await.map_err(|e| map_insert_err(e, "budget", &id))
    }

    /// Updates a reusable budget.
    pub async fn update_budget(&self, id: &str, upd: BudgetUpdate) -> Result<BudgetRecord, StoreError> {
        let now = now_ms();
        let lp = LimitsPatch {
            max_budget: upd.max_budget,
            budget_duration: upd.budget_duration,
            tpm_limit: upd.tpm_limit,
            rpm_limit: upd.rpm_limit,
            max_parallel_requests: upd.max_parallel_requests,
            budget_id: None,
        }
        .validate(now)?;
        let mut am = self.budget_info(id).await?.into_active_model();
        if let Some(v) = lp.max_budget_nanos {
            am.max_budget_nanos = Set(v);
        }
        if let Some(v) = lp.budget_duration {
            am.budget_duration = Set(v);
        }
        if let Some(v) = lp.tpm_limit {
            am.tpm_limit = Set(v);
        }
        if let Some(v) = lp.rpm_limit {
            am.rpm_limit = Set(v);
        }
        if let Some(v) = lp.max_parallel_requests {
            am.max_parallel_requests = Set(v);
        }
        am.updated_at = Set(now);
        Ok(am.update(&self.db).await?)
    }
}
