//! Budget periods: resetting spend when `budget_reset_at` has passed.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::duration::{next_reset, parse_duration};
use crate::entity::{customer, team, user, virtual_key};
use crate::error::StoreError;
use crate::store::Store;

/// How many rows [`Store::reset_due_budgets`] reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetSummary {
    pub keys: u64,
    pub teams: u64,
    pub users: u64,
    pub customers: u64,
}

macro_rules! reset_table {
    ($self:ident, $m:ident, $pk:ident, $now:ident) => {{
        let due: Vec<(String, Option<String>, Option<i64>)> = $m::Entity::find()
            .select_only()
            .column($m::Column::$pk)
            .column($m::Column::BudgetDuration)
            .column($m::Column::BudgetResetAt)
            .filter($m::Column::BudgetDuration.is_not_null())
            .filter($m::Column::BudgetResetAt.lte($now))
            .into_tuple()
            .all(&$self.db)
            .await?;
        let mut n = 0u64;
        for (id, duration, reset_at) in due {
            let (Some(duration), Some(reset_at)) = (duration, reset_at) else { continue };
            let Ok(d) = parse_duration(&duration) else {
                tracing::warn!(
                    table = stringify!($m),
                    id,
                    duration,
                    "unparseable budget_duration; not reset"
                );
                continue;
            };
            // Compare-and-set on the old reset time: with several instances only one resets.
            let res = $m::Entity::update_many()
                .col_expr($m::Column::SpendNanos, Expr::value(0i64))
                .col_expr($m::Column::BudgetResetAt, Expr::value(next_reset(reset_at, d, $now)))
                .filter($m::Column::$pk.eq(id))
                .filter($m::Column::BudgetResetAt.eq(reset_at))
                .exec(&$self.db)
                .await?;
            n += res.rows_affected;
        }
        n
    }};
}

impl Store {
    /// Resets `spend` to zero for every key, team, user and customer whose budget period ended at
    /// or before `now_ms`, and schedules the next reset (missed periods are skipped, not
    /// replayed). Safe to run from a periodic task on several instances at once.
    pub async fn reset_due_budgets(&self, now_ms: i64) -> Result<ResetSummary, StoreError> {
        Ok(ResetSummary {
            keys: reset_table!(self, virtual_key, Id, now_ms),
            teams: reset_table!(self, team, TeamId, now_ms),
            users: reset_table!(self, user, UserId, now_ms),
            customers: reset_table!(self, customer, CustomerId, now_ms),
        })
    }
}
