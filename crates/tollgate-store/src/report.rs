//! Spend reports: filtered, paginated spend logs and grouped totals.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde::{Deserialize, Serialize};

use crate::duration::format_day;
use crate::entity::spend_log;
use crate::error::StoreError;
use crate::store::{Page, Paged, Store};

/// A stored spend row.
pub type SpendLogRecord = spend_log::Model;

/// Filters for spend logs and reports. Times are Unix ms; `start_ms` inclusive, `end_ms` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SpendFilter {
    pub key_hash: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub customer_id: Option<String>,
    pub model_group: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

/// The dimension of a grouped report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Key,
    Team,
    User,
    Customer,
    Model,
    /// UTC calendar day of the request start.
    Day,
}

/// One group of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendGroup {
    /// The key hash / team / user / customer / model, or `YYYY-MM-DD`; `None` = rows without one.
    pub group: Option<String>,
    pub spend_nanos: i64,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Debug, FromQueryResult)]
struct GroupRow {
    grp: Option<String>,
    spend_nanos: Option<i64>,
    requests: Option<i64>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
}

impl SpendFilter {
    fn validate(&self) -> Result<(), StoreError> {
        if let (Some(s), Some(e)) = (self.start_ms, self.end_ms)
            && e < s
        {
            return Err(StoreError::invalid("end_date", "must not be before the start date"));
        }
        Ok(())
    }

    fn apply(&self, mut q: Select<spend_log::Entity>) -> Select<spend_log::Entity> {
        use spend_log::Column as C;
        let eqs = [
            (C::KeyHash, &self.key_hash),
            (C::TeamId, &self.team_id),
            (C::UserId, &self.user_id),
            (C::CustomerId, &self.customer_id),
            (C::ModelGroup, &self.model_group),
        ];
        for (col, v) in eqs {
            if let Some(v) = v {
                q = q.filter(col.eq(v.clone()));
            }
        }
        if let Some(s) = self.start_ms {
            q = q.filter(C::StartTimeMs.gte(s));
        }
        if let Some(e) = self.end_ms {
            q = q.filter(C::StartTimeMs.lt(e));
        }
        q
    }
}

impl Store {
    /// Spend logs matching `filter`, newest first.
    pub async fn spend_logs(
        &self,
        filter: &SpendFilter,
        page: Page,
    ) -> Result<Paged<SpendLogRecord>, StoreError> {
        let page = page.validate()?;
        filter.validate()?;
        let q = filter.apply(spend_log::Entity::find());
        let total = q.clone().count(&self.db).await?;
        let items = q
            .order_by_desc(spend_log::Column::StartTimeMs)
            .order_by_desc(spend_log::Column::Id)
            .offset(page.offset())
            .limit(page.page_size)
            .all(&self.db)
            .await?;
        Ok(Paged { items, total, page: page.page, page_size: page.page_size })
    }

    /// Total spend grouped by `by` over the rows matching `filter`. Days are sorted ascending;
    /// other groups by spend, largest first.
    pub async fn spend_report(
        &self,
        by: GroupBy,
        filter: &SpendFilter,
    ) -> Result<Vec<SpendGroup>, StoreError> {
        filter.validate()?;
        use spend_log::Column as C;
        let key: SimpleExpr = match by {
            GroupBy::Key => Expr::col(C::KeyHash).into(),
            GroupBy::Team => Expr::col(C::TeamId).into(),
            GroupBy::User => Expr::col(C::UserId).into(),
            GroupBy::Customer => Expr::col(C::CustomerId).into(),
            GroupBy::Model => Expr::col(C::ModelGroup).into(),
            GroupBy::Day => Expr::cust("CAST(start_time_ms / 86400000 AS TEXT)"),
        };
        let rows = filter
            .apply(spend_log::Entity::find())
            .select_only()
            .column_as(key.clone(), "grp")
            .column_as(Expr::cust("CAST(SUM(cost_nanos) AS BIGINT)"), "spend_nanos")
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "requests")
            .column_as(Expr::cust("CAST(SUM(prompt_tokens) AS BIGINT)"), "prompt_tokens")
            .column_as(Expr::cust("CAST(SUM(completion_tokens) AS BIGINT)"), "completion_tokens")
            .group_by(key)
            .into_model::<GroupRow>()
            .all(&self.db)
            .await?;
        let mut out: Vec<(Option<i64>, SpendGroup)> = rows
            .into_iter()
            .map(|r| {
                let day = if by == GroupBy::Day {
                    r.grp.as_deref().and_then(|g| g.parse::<i64>().ok())
                } else {
                    None
                };
                let group = match day {
                    Some(d) => Some(format_day(d)),
                    None => r.grp,
                };
                (
                    day,
                    SpendGroup {
                        group,
                        spend_nanos: r.spend_nanos.unwrap_or(0),
                        requests: r.requests.unwrap_or(0),
                        prompt_tokens: r.prompt_tokens.unwrap_or(0),
                        completion_tokens: r.completion_tokens.unwrap_or(0),
                    },
                )
            })
            .collect();
        if by == GroupBy::Day {
            out.sort_by_key(|(d, _)| *d);
        } else {
            out.sort_by(|(_, a), (_, b)| {
                b.spend_nanos.cmp(&a.spend_nanos).then_with(|| a.group.cmp(&b.group))
            });
        }
        Ok(out.into_iter().map(|(_, g)| g).collect())
    }
}
