//! The budget contract: reservations against a maximum spend per period.

use std::time::Duration;

use crate::BoxFuture;
use crate::entity::Entity;
use crate::rate::LimitError;

/// An amount of money in integer nano-USD (10⁻⁹ USD). Comparisons never touch floating point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NanoUsd(pub u64);

impl NanoUsd {
    pub const ZERO: NanoUsd = NanoUsd(0);
    const PER_USD: f64 = 1e9;

    /// From a USD amount as configured (`max_budget: 10.5`), rounded to the nearest nano-USD;
    /// negative and NaN give zero.
    pub fn from_usd(usd: f64) -> Self {
        if usd.is_nan() || usd <= 0.0 {
            return NanoUsd(0);
        }
        let v = (usd * Self::PER_USD).round();
        // `as` saturates at u64::MAX for huge values.
        NanoUsd(v as u64)
    }

    pub fn as_usd(self) -> f64 {
        self.0 as f64 / Self::PER_USD
    }

    pub fn saturating_add(self, other: NanoUsd) -> NanoUsd {
        NanoUsd(self.0.saturating_add(other.0))
    }
}

/// When a budget starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    /// Never: one running total.
    Never,
    /// Every `length`, counted from `anchor_ms` (e.g. the key's creation or its
    /// `budget_reset_at`): period `n` covers `[anchor + n·length, anchor + (n+1)·length)`.
    /// Calendar months are not fixed lengths; callers map `mo` to the length they document.
    Every { anchor_ms: u64, length: Duration },
}

impl BudgetPeriod {
    /// The period index at `now_ms` and when it ends (ms since the epoch; `None`: never).
    pub(crate) fn at(self, now_ms: u64) -> (u64, Option<u64>) {
        match self {
            BudgetPeriod::Never => (0, None),
            BudgetPeriod::Every { anchor_ms, length } => {
                let len = u64::try_from(length.as_millis()).unwrap_or(u64::MAX).max(1);
                let n = now_ms.saturating_sub(anchor_ms) / len;
                let end = anchor_ms.saturating_add(n.saturating_add(1).saturating_mul(len));
                (n, Some(end))
            }
        }
    }
}

/// One budget: a maximum spend per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpec {
    pub max: NanoUsd,
    pub period: BudgetPeriod,
}

/// Spend of the current period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetUsage {
    /// Settled spend.
    pub spent: NanoUsd,
    /// Outstanding reservations of requests still running.
    pub reserved: NanoUsd,
    /// When the period ends (ms since the epoch); `None`: never.
    pub resets_at_ms: Option<u64>,
}

/// Money held for one running request; settle it with the real cost.
#[derive(Debug)]
pub struct Reservation {
    pub(crate) entity: Entity,
    pub(crate) spec_period: BudgetPeriod,
    pub(crate) period: u64,
    pub(crate) period_end_ms: Option<u64>,
    pub(crate) amount: NanoUsd,
    /// Fail-open: nothing was reserved, settling only records the spend (best effort).
    pub(crate) degraded: bool,
    /// The shared backend's id of this reservation (empty: none held there).
    pub(crate) member: String,
}

impl Reservation {
    pub fn entity(&self) -> &Entity {
        &self.entity
    }

    pub fn amount(&self) -> NanoUsd {
        self.amount
    }

    /// Made without the shared backend (fail-open).
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }
}

/// The outcome of [`BudgetCounter::reserve`].
#[derive(Debug)]
pub enum BudgetOutcome {
    Reserved(Reservation),
    /// Refused: settled spend plus outstanding reservations plus this estimate would pass `max`
    /// (or the spend already reached it).
    Exceeded {
        spent: NanoUsd,
        reserved: NanoUsd,
        max: NanoUsd,
        resets_at_ms: Option<u64>,
    },
}

/// Budget counters exact across instances.
///
/// `reserve` admits a request only while `spent + reserved + estimate ≤ max` (and
/// `spent + reserved < max`), atomically, so concurrent requests on any number of instances
/// never hold more than `max` between them. `settle` swaps the reservation for the real cost.
/// The real cost can still pass `max` when it is larger than the estimate: the overshoot is
/// bounded by the estimates' errors of the requests in flight.
pub trait BudgetCounter: Send + Sync + std::fmt::Debug {
    fn reserve<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
        estimate: NanoUsd,
    ) -> BoxFuture<'a, Result<BudgetOutcome, LimitError>>;

    /// Swaps the reservation for the real cost (charged to the period the reservation was made in).
    fn settle(&self, reservation: Reservation, actual: NanoUsd) -> BoxFuture<'_, Result<(), LimitError>>;

    /// The current period's spend and reservations.
    fn usage<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
    ) -> BoxFuture<'a, Result<BudgetUsage, LimitError>>;

    /// Raises the current period's settled spend to at least `spent` (seeding a counter from the
    /// spend the database already holds, after a restart or a Redis flush). Never lowers it.
    fn seed_spent<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
        spent: NanoUsd,
    ) -> BoxFuture<'a, Result<(), LimitError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_usd_from_usd() {
        assert_eq!(NanoUsd::from_usd(1.5), NanoUsd(1_500_000_000));
        assert_eq!(NanoUsd::from_usd(0.000_000_001), NanoUsd(1));
        assert_eq!(NanoUsd::from_usd(-3.0), NanoUsd(0));
        assert_eq!(NanoUsd::from_usd(f64::NAN), NanoUsd(0));
        assert!((NanoUsd(2_500_000_000).as_usd() - 2.5).abs() < 1e-12);
    }

    #[test]
    fn periods_from_anchor() {
        let p = BudgetPeriod::Every { anchor_ms: 1_000, length: Duration::from_secs(10) };
        assert_eq!(p.at(1_000), (0, Some(11_000)));
        assert_eq!(p.at(10_999), (0, Some(11_000)));
        assert_eq!(p.at(11_000), (1, Some(21_000)));
        assert_eq!(p.at(500), (0, Some(11_000)));
        assert_eq!(BudgetPeriod::Never.at(123), (0, None));
    }
}
