//! Limit inputs shared by keys, teams, users and customers, and their validation.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::duration::{add_duration, parse_duration};
use crate::error::StoreError;
use crate::util::usd_to_nanos;

/// A field of an update: `None` = leave unchanged, `Some(None)` = clear, `Some(Some(v))` = set.
/// In JSON: absent = unchanged, `null` = clear.
pub type Patch<T> = Option<Option<T>>;

/// Deserialises a present field (even `null`) as `Some(..)`, so `null` clears and absent keeps.
pub fn patch<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Patch<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Limits for a new entity (LiteLLM field names; budgets in USD).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Limits {
    /// Maximum spend per budget period, USD.
    pub max_budget: Option<f64>,
    /// Budget period (`30d`, `1mo`, …); spend resets when it elapses.
    pub budget_duration: Option<String>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Concurrent requests.
    pub max_parallel_requests: Option<i64>,
    /// A reusable budget (`budgets` row) whose limits apply too.
    pub budget_id: Option<String>,
}

/// Changes to limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LimitsPatch {
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
    #[serde(default, deserialize_with = "patch")]
    pub budget_id: Patch<String>,
}

/// Validated limits, in storage units.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ValidLimits {
    pub max_budget_nanos: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub budget_id: Option<String>,
}

/// Validated changes, in storage units (`budget_reset_at` follows `budget_duration`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ValidLimitsPatch {
    pub max_budget_nanos: Patch<i64>,
    pub budget_duration: Patch<String>,
    pub budget_reset_at: Patch<i64>,
    pub tpm_limit: Patch<i64>,
    pub rpm_limit: Patch<i64>,
    pub max_parallel_requests: Patch<i64>,
    pub budget_id: Patch<String>,
}

pub(crate) fn non_negative(field: &'static str, v: Option<i64>) -> Result<Option<i64>, StoreError> {
    match v {
        Some(n) if n < 0 => Err(StoreError::invalid(field, format!("must not be negative (got {n})"))),
        other => Ok(other),
    }
}

/// Normalises a duration string and returns it with the first reset after `now_ms`.
pub(crate) fn duration_and_reset(s: &str, now_ms: i64) -> Result<(String, i64), StoreError> {
    let d = parse_duration(s).map_err(|e| match e {
        StoreError::Invalid { message, .. } => StoreError::invalid("budget_duration", message),
        other => other,
    })?;
    Ok((s.trim().to_ascii_lowercase(), add_duration(now_ms, d)))
}

pub(crate) fn optional_id(field: &'static str, v: Option<String>) -> Result<Option<String>, StoreError> {
    match v {
        Some(s) => Ok(Some(valid_id(field, &s)?)),
        None => Ok(None),
    }
}

/// Ids are 1..=255 characters without control characters, trimmed.
pub(crate) fn valid_id(field: &'static str, s: &str) -> Result<String, StoreError> {
    let t = s.trim();
    if t.is_empty() || t.len() > 255 || t.chars().any(char::is_control) {
        return Err(StoreError::invalid(field, "must be 1 to 255 printable characters"));
    }
    Ok(t.to_owned())
}

pub(crate) fn metadata(v: Option<Value>) -> Result<Value, StoreError> {
    match v {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(StoreError::invalid("metadata", "must be a JSON object")),
    }
}

pub(crate) fn models(v: Vec<String>) -> Result<Value, StoreError> {
    if v.iter().any(|m| m.trim().is_empty()) {
        return Err(StoreError::invalid("models", "model names must not be empty"));
    }
    Ok(Value::Array(v.into_iter().map(Value::String).collect()))
}

impl Limits {
    pub(crate) fn validate(self, now_ms: i64) -> Result<ValidLimits, StoreError> {
        let max_budget_nanos = self.max_budget.map(|b| usd_to_nanos("max_budget", b)).transpose()?;
        let (budget_duration, budget_reset_at) = match self.budget_duration.as_deref() {
            Some(s) => {
                let (d, r) = duration_and_reset(s, now_ms)?;
                (Some(d), Some(r))
            }
            None => (None, None),
        };
        Ok(ValidLimits {
            max_budget_nanos,
            budget_duration,
            budget_reset_at,
            tpm_limit: non_negative("tpm_limit", self.tpm_limit)?,
            rpm_limit: non_negative("rpm_limit", self.rpm_limit)?,
            max_parallel_requests: non_negative("max_parallel_requests", self.max_parallel_requests)?,
            budget_id: optional_id("budget_id", self.budget_id)?,
        })
    }
}

impl LimitsPatch {
    pub(crate) fn validate(self, now_ms: i64) -> Result<ValidLimitsPatch, StoreError> {
        let max_budget_nanos = match self.max_budget {
            Some(Some(b)) => Some(Some(usd_to_nanos("max_budget", b)?)),
            Some(None) => Some(None),
            None => None,
        };
        let (budget_duration, budget_reset_at) = match self.budget_duration {
            Some(Some(s)) => {
                let (d, r) = duration_and_reset(&s, now_ms)?;
                (Some(Some(d)), Some(Some(r)))
            }
            Some(None) => (Some(None), Some(None)),
            None => (None, None),
        };
        let nn = |f, v: Patch<i64>| -> Result<Patch<i64>, StoreError> {
            match v {
                Some(x) => Ok(Some(non_negative(f, x)?)),
                None => Ok(None),
            }
        };
        Ok(ValidLimitsPatch {
            max_budget_nanos,
            budget_duration,
            budget_reset_at,
            tpm_limit: nn("tpm_limit", self.tpm_limit)?,
            rpm_limit: nn("rpm_limit", self.rpm_limit)?,
            max_parallel_requests: nn("max_parallel_requests", self.max_parallel_requests)?,
            budget_id: match self.budget_id {
                Some(v) => Some(optional_id("budget_id", v)?),
                None => None,
            },
        })
    }
}

/// Sets the limit columns of a new active model from [`ValidLimits`].
macro_rules! set_limits {
    ($am:expr, $v:expr) => {{
        let v = $v;
        $am.max_budget_nanos = ::sea_orm::ActiveValue::Set(v.max_budget_nanos);
        $am.budget_duration = ::sea_orm::ActiveValue::Set(v.budget_duration);
        $am.budget_reset_at = ::sea_orm::ActiveValue::Set(v.budget_reset_at);
        $am.tpm_limit = ::sea_orm::ActiveValue::Set(v.tpm_limit);
        $am.rpm_limit = ::sea_orm::ActiveValue::Set(v.rpm_limit);
        $am.max_parallel_requests = ::sea_orm::ActiveValue::Set(v.max_parallel_requests);
        $am.budget_id = ::sea_orm::ActiveValue::Set(v.budget_id);
    }};
}

/// Applies a [`ValidLimitsPatch`] to an active model.
macro_rules! patch_limits {
    ($am:expr, $p:expr) => {{
        let p = $p;
        if let Some(v) = p.max_budget_nanos {
            $am.max_budget_nanos = ::sea_orm::ActiveValue::Set(v);
        }
        if let Some(v) = p.budget_duration {
            $am.budget_duration = ::sea_orm::ActiveValue::Set(v);
        }
        if let Some(v) = p.budget_reset_at {
            $am.budget_reset_at = ::sea_orm::ActiveValue::Set(v);
        }
        if let Some(v) = p.tpm_limit {
            $am.tpm_limit = ::sea_orm::ActiveValue::Set(v);
        }
        if let Some(v) = p.rpm_limit {
            $am.rpm_limit = ::sea_orm::ActiveValue::Set(v);
        }
        if let Some(v) = p.max_parallel_requests {
            $am.max_parallel_requests = ::sea_orm::ActiveValue::Set(v);
        }
        if let Some(v) = p.budget_id {
            $am.budget_id = ::sea_orm::ActiveValue::Set(v);
        }
    }};
}

pub(crate) use {patch_limits, set_limits};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_absent_and_null() {
        let p: LimitsPatch = serde_json::from_str(r#"{"max_budget": null, "tpm_limit": 5}"#).unwrap();
        assert_eq!(p.max_budget, Some(None));
        assert_eq!(p.tpm_limit, Some(Some(5)));
        assert_eq!(p.rpm_limit, None);
    }

    #[test]
    fn limits_validate() {
        let v = Limits { max_budget: Some(2.5), budget_duration: Some("30D".into()), ..Limits::default() }
            .validate(1000)
            .unwrap();
        assert_eq!(v.max_budget_nanos, Some(2_500_000_000));
        assert_eq!(v.budget_duration.as_deref(), Some("30d"));
        assert_eq!(v.budget_reset_at, Some(1000 + 30 * 86_400_000));
        let e = Limits { rpm_limit: Some(-1), ..Limits::default() }.validate(0).unwrap_err();
        assert!(matches!(e, StoreError::Invalid { field: "rpm_limit", .. }));
        let e = Limits { budget_duration: Some("1y".into()), ..Limits::default() }.validate(0).unwrap_err();
        assert!(matches!(e, StoreError::Invalid { field: "budget_duration", .. }));
    }
}
