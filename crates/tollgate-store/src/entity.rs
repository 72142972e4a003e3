//! sea-orm entities. Times are Unix milliseconds (`BIGINT`), money is integer nano-USD
//! (`BIGINT`), lists and free-form metadata are JSON. Rows reference each other by id only.

/// `virtual_keys`: API keys handed out by the management API. Only the SHA-256 of the key is stored.
pub mod virtual_key {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One virtual key.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "virtual_keys")]
    pub struct Model {
        /// Stable id (survives `regenerate`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Lower-case hex SHA-256 of the key.
        #[sea_orm(unique)]
        pub token_hash: String,
        /// `sk-…abcd`: the last four characters, for display.
        pub key_hint: String,
        pub key_alias: Option<String>,
        /// JSON array of allowed model names; empty = all models.
        pub models: Json,
        pub expires_at: Option<i64>,
        pub max_budget_nanos: Option<i64>,
        pub budget_duration: Option<String>,
        pub budget_reset_at: Option<i64>,
        pub spend_nanos: i64,
        pub tpm_limit: Option<i64>,
        pub rpm_limit: Option<i64>,
        pub max_parallel_requests: Option<i64>,
        pub metadata: Json,
        pub team_id: Option<String>,
        pub user_id: Option<String>,
        pub budget_id: Option<String>,
        pub blocked: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `teams`.
pub mod team {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One team.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "teams")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub team_id: String,
        pub team_alias: Option<String>,
        pub models: Json,
        pub max_budget_nanos: Option<i64>,
        pub budget_duration: Option<String>,
        pub budget_reset_at: Option<i64>,
        pub spend_nanos: i64,
        pub tpm_limit: Option<i64>,
        pub rpm_limit: Option<i64>,
        pub max_parallel_requests: Option<i64>,
        pub metadata: Json,
        pub budget_id: Option<String>,
        pub blocked: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `users` (internal users who own keys).
pub mod user {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One user.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub user_email: Option<String>,
        pub user_role: Option<String>,
        pub team_id: Option<String>,
        pub models: Json,
        pub max_budget_nanos: Option<i64>,
        pub budget_duration: Option<String>,
        pub budget_reset_at: Option<i64>,
        pub spend_nanos: i64,
        pub tpm_limit: Option<i64>,
        pub rpm_limit: Option<i64>,
        pub max_parallel_requests: Option<i64>,
        pub metadata: Json,
        pub budget_id: Option<String>,
        pub blocked: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `customers` (end customers, named by the request's `user` field or a header).
pub mod customer {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One end customer.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub customer_id: String,
        pub alias: Option<String>,
        pub models: Json,
        pub max_budget_nanos: Option<i64>,
        pub budget_duration: Option<String>,
        pub budget_reset_at: Option<i64>,
        pub spend_nanos: i64,
        pub tpm_limit: Option<i64>,
        pub rpm_limit: Option<i64>,
        pub max_parallel_requests: Option<i64>,
        pub metadata: Json,
        pub budget_id: Option<String>,
        pub blocked: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `budgets`: reusable limit templates referenced by `budget_id`.
pub mod budget {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One reusable budget.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "budgets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub budget_id: String,
        pub max_budget_nanos: Option<i64>,
        pub budget_duration: Option<String>,
        pub tpm_limit: Option<i64>,
        pub rpm_limit: Option<i64>,
        pub max_parallel_requests: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `spend_logs`: one row per request. No prompt or response text.
pub mod spend_log {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One logged request.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "spend_logs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub request_id: String,
        pub key_hash: Option<String>,
        pub team_id: Option<String>,
        pub user_id: Option<String>,
        pub customer_id: Option<String>,
        pub model_group: Option<String>,
        pub deployment: Option<String>,
        pub provider: Option<String>,
        pub prompt_tokens: i64,
        pub completion_tokens: i64,
        pub cached_tokens: i64,
        pub cache_creation_tokens: i64,
        pub reasoning_tokens: i64,
        pub cost_nanos: i64,
        pub start_time_ms: i64,
        pub end_time_ms: i64,
        pub ttft_ms: Option<i64>,
        pub status: String,
        pub cache_hit: bool,
        pub tags: Json,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
