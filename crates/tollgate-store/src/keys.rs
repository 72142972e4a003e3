//! Virtual key management: generate, look up, update, block, regenerate, delete, list.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use serde_json::Value;

use crate::duration::{add_duration, parse_duration};
use crate::entity::{budget, virtual_key};
use crate::error::StoreError;
use crate::limits::{self, Limits, LimitsPatch, Patch, patch, patch_limits, set_limits};
use crate::store::{Page, Paged, Store};
use crate::util::{is_sha256_hex, now_ms, random_base62, sha256_hex};

/// A stored key (never contains the key itself).
pub type KeyRecord = virtual_key::Model;

/// Characters of randomness after `sk-` (base62: 43 × log2(62) ≈ 256 bits).
const KEY_RANDOM_CHARS: usize = 43;

/// Input of `/key/generate`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NewKey {
    pub key_alias: Option<String>,
    /// Allowed models; empty = all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Relative expiry (`30d`, …). Mutually exclusive with `expires_at`.
    pub duration: Option<String>,
    /// Absolute expiry, Unix ms.
    pub expires_at: Option<i64>,
    #[serde(flatten)]
    pub limits: Limits,
    pub metadata: Option<Value>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    #[serde(default)]
    pub blocked: bool,
}

/// Input of `/key/update` (absent = unchanged, `null` = clear).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KeyUpdate {
    #[serde(default, deserialize_with = "patch")]
    pub key_alias: Patch<String>,
    pub models: Option<Vec<String>>,
    /// New relative expiry from now; `null` = never expires.
    #[serde(default, deserialize_with = "patch")]
    pub duration: Patch<String>,
    #[serde(flatten)]
    pub limits: LimitsPatch,
    pub metadata: Option<Value>,
    #[serde(default, deserialize_with = "patch")]
    pub team_id: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    pub user_id: Patch<String>,
    pub blocked: Option<bool>,
}

/// A freshly generated (or regenerated) key. `key` is shown to the caller once and never stored.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The secret `sk-…` key.
    pub key: String,
    /// The stored record.
    pub record: KeyRecord,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey").field("key", &"<redacted>").field("record", &self.record).finish()
    }
}

/// Filters for [`Store::list_keys`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct KeyFilter {
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub key_alias: Option<String>,
}

impl virtual_key::Model {
    /// True if the key has an expiry at or before `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now_ms)
    }

    /// The allowed models (empty = every model).
    pub fn allowed_models(&self) -> Vec<String> {
        json_strings(&self.models)
    }

    /// True if `model` may be called with this key.
    pub fn allows_model(&self, model: &str) -> bool {
        let allowed = self.allowed_models();
        allowed.is_empty() || allowed.iter().any(|m| m == model)
    }
}

pub(crate) fn json_strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn new_secret() -> Result<(String, String, String), StoreError> {
    let key = format!("sk-{}", random_base62(KEY_RANDOM_CHARS)?);
    let hash = sha256_hex(&key);
    let hint = format!("sk-...{}", &key[key.len() - 4..]);
    Ok((key, hash, hint))
}

fn expiry_from(duration: &str, now: i64) -> Result<i64, StoreError> {
    let d = parse_duration(duration).map_err(|e| match e {
        StoreError::Invalid { message, .. } => StoreError::invalid("duration", message),
        other => other,
    })?;
    Ok(add_duration(now, d))
}

impl Store {
    pub(crate) async fn ensure_budget_exists(&self, id: Option<&str>) -> Result<(), StoreError> {
        if let Some(id) = id
            && budget::Entity::find_by_id(id.to_owned()).one(&self.db).await?.is_none()
        {
            return Err(StoreError::not_found("budget", id));
        }
        Ok(())
    }

    /// Creates a key. Everything is validated before the single INSERT.
    pub async fn generate_key(&self, req: NewKey) -> Result<GeneratedKey, StoreError> {
        let now = now_ms();
        let limits = req.limits.validate(now)?;
        let expires_at = match (req.duration.as_deref(), req.expires_at) {
            (Some(_), Some(_)) => {
                return Err(StoreError::invalid("duration", "give either duration or expires_at, not both"));
            }
            (Some(d), None) => Some(expiry_from(d, now)?),
            (None, e) => e,
        };
        let models = limits::models(req.models)?;
        let metadata = limits::metadata(req.metadata)?;
        let team_id = limits::optional_id("team_id", req.team_id)?;
        let user_id = limits::optional_id("user_id", req.user_id)?;
        self.ensure_budget_exists(limits.budget_id.as_deref()).await?;
        let (key, token_hash, key_hint) = new_secret()?;
        let mut am = virtual_key::ActiveModel {
            id: Set(format!("key_{}", random_base62(20)?)),
            token_hash: Set(token_hash),
            key_hint: Set(key_hint),
            key_alias: Set(req.key_alias),
            models: Set(models),
            expires_at: Set(expires_at),
            spend_nanos: Set(0),
            metadata: Set(metadata),
            team_id: Set(team_id),
            user_id: Set(user_id),
            blocked: Set(req.blocked),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        set_limits!(am, limits);
        let record = am.insert(&self.db).await?;
        Ok(GeneratedKey { key, record })
    }

    /// The record of a presented `sk-…` key (hashed, then one indexed SELECT). `None` if unknown.
    /// Does not judge expiry or blocking: see [`KeyRecord::is_expired`] and `blocked`.
    pub async fn lookup_key(&self, raw_key: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.key_by_hash(&sha256_hex(raw_key)).await
    }

    /// The record with this token hash.
    pub async fn key_by_hash(&self, token_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(virtual_key::Entity::find()
            .filter(virtual_key::Column::TokenHash.eq(token_hash.to_ascii_lowercase()))
            .one(&self.db)
            .await?)
    }

    /// Finds a key by reference: a raw `sk-…` key, its SHA-256 hex hash, or its id.
    pub async fn find_key(&self, reference: &str) -> Result<Option<KeyRecord>, StoreError> {
        let r = reference.trim();
        if r.starts_with("sk-") {
            self.lookup_key(r).await
        } else if is_sha256_hex(r) {
            self.key_by_hash(r).await
        } else {
            Ok(virtual_key::Entity::find_by_id(r.to_owned()).one(&self.db).await?)
        }
    }

    /// Like [`Store::find_key`] but `NotFound` when missing (`/key/info`).
    pub async fn key_info(&self, reference: &str) -> Result<KeyRecord, StoreError> {
        self.find_key(reference).await?.ok_or_else(|| StoreError::not_found("key", short_ref(reference)))
    }

    /// Applies an update. Validated first; one UPDATE.
    pub async fn update_key(&self, reference: &str, upd: KeyUpdate) -> Result<KeyRecord, StoreError> {
        let now = now_ms();
        let lp = upd.limits.validate(now)?;
        let expires_at = match upd.duration {
            Some(Some(d)) => Some(Some(expiry_from(&d, now)?)),
            Some(None) => Some(None),
            None => None,
        };
        let models = upd.models.map(limits::models).transpose()?;
        let metadata = upd.metadata.map(|m| limits::metadata(Some(m))).transpose()?;
        let team_id = upd.team_id.map(|v| limits::optional_id("team_id", v)).transpose()?;
        let user_id = upd.user_id.map(|v| limits::optional_id("user_id", v)).transpose()?;
        if let Some(Some(b)) = &lp.budget_id {
            self.ensure_budget_exists(Some(b)).await?;
        }
        let current = self.key_info(reference).await?;
        let mut am = current.into_active_model();
        patch_limits!(am, lp);
        if let Some(v) = upd.key_alias {
            am.key_alias = Set(v);
        }
        if let Some(v) = expires_at {
            am.expires_at = Set(v);
        }
        if let Some(v) = models {
            am.models = Set(v);
        }
        if let Some(v) = metadata {
            am.metadata = Set(v);
        }
        if let Some(v) = team_id {
            am.team_id = Set(v);
        }
        if let Some(v) = user_id {
            am.user_id = Set(v);
        }
        if let Some(v) = upd.blocked {
            am.blocked = Set(v);
        }
        am.updated_at = Set(now);
        Ok(am.update(&self.db).await?)
    }

    /// Blocks or unblocks a key.
    pub async fn set_key_blocked(&self, reference: &str, blocked: bool) -> Result<KeyRecord, StoreError> {
        self.update_key(reference, KeyUpdate { blocked: Some(blocked), ..KeyUpdate::default() }).await
    }

    /// Replaces the secret of a key (same id, spend and limits); the old key stops working at once.
    pub async fn regenerate_key(&self, reference: &str) -> Result<GeneratedKey, StoreError> {
        let current = self.key_info(reference).await?;
        let (key, token_hash, key_hint) = new_secret()?;
        let mut am = current.into_active_model();
        am.token_hash = Set(token_hash);
        am.key_hint = Set(key_hint);
        am.updated_at = Set(now_ms());
        let record = am.update(&self.db).await?;
        Ok(GeneratedKey { key, record })
    }

    /// Deletes a key. `NotFound` if it does not exist.
    pub async fn delete_key(&self, reference: &str) -> Result<KeyRecord, StoreError> {
        let current = self.key_info(reference).await?;
        virtual_key::Entity::delete_by_id(current.id.clone()).exec(&self.db).await?;
        Ok(current)
    }

    /// Lists keys, oldest first.
    pub async fn list_keys(&self, filter: KeyFilter, page: Page) -> Result<Paged<KeyRecord>, StoreError> {
        let page = page.validate()?;
        let mut q = virtual_key::Entity::find();
        if let Some(t) = filter.team_id {
            q = q.filter(virtual_key::Column::TeamId.eq(t));
        }
        if let Some(u) = filter.user_id {
            q = q.filter(virtual_key::Column::UserId.eq(u));
        }
        if let Some(a) = filter.key_alias {
            q = q.filter(virtual_key::Column::KeyAlias.eq(a));
        }
        let total = q.clone().count(&self.db).await?;
        let items = q
            .order_by_asc(virtual_key::Column::CreatedAt)
            .order_by_asc(virtual_key::Column::Id)
            .offset(page.offset())
            .limit(page.page_size)
            .all(&self.db)
            .await?;
        Ok(Paged { items, total, page: page.page, page_size: page.page_size })
    }
}

/// Never echo a raw key back in an error.
fn short_ref(r: &str) -> String {
    if r.starts_with("sk-") { "sk-…".to_owned() } else { r.to_owned() }
}
