//! Budget and key durations: `10s`, `15m`, `2h`, `30d`, `1w`, `1mo`, and the calendar maths for the
//! next reset (months are calendar months; the day of month is clamped, so Jan 31 + 1mo = Feb 28/29).

use crate::error::StoreError;

/// A parsed duration. Months are kept apart because their length depends on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDuration {
    /// A fixed number of seconds (`s`, `m`, `h`, `d`, `w` units).
    Seconds(u64),
    /// A number of calendar months (`mo` unit).
    Months(u32),
}

const MAX_SECONDS: u64 = 100 * 366 * 86_400;

/// Parses `<positive integer><unit>` with unit `s`, `m`, `h`, `d`, `w` or `mo` (case-insensitive,
/// surrounding whitespace ignored). Zero, missing numbers, unknown units and durations over 100
/// years are refused.
pub fn parse_duration(input: &str) -> Result<BudgetDuration, StoreError> {
    let bad = |why: &str| StoreError::invalid("duration", format!("`{input}`: {why}"));
    let s = input.trim().to_ascii_lowercase();
    let split =
        s.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| bad("missing unit (s, m, h, d, w, mo)"))?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(bad("missing number"));
    }
    let n: u64 = digits.parse().map_err(|_| bad("number too large"))?;
    if n == 0 {
        return Err(bad("must be greater than zero"));
    }
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => {
            return u32::try_from(n)
                .ok()
                .filter(|m| *m <= 1_200)
                .map(BudgetDuration::Months)
                .ok_or_else(|| bad("too long"));
        }
        _ => return Err(bad("unknown unit (use s, m, h, d, w or mo)")),
    };
    n.checked_mul(per)
        .filter(|secs| *secs <= MAX_SECONDS)
        .map(BudgetDuration::Seconds)
        .ok_or_else(|| bad("too long"))
}

/// The instant (Unix milliseconds) one `duration` after `from_ms`.
pub fn add_duration(from_ms: i64, duration: BudgetDuration) -> i64 {
    match duration {
        BudgetDuration::Seconds(s) => {
            from_ms.saturating_add(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000))
        }
        BudgetDuration::Months(m) => add_months(from_ms, m),
    }
}

/// The next reset strictly after `now_ms` for a budget period of `duration` that started at
/// `start_ms`. If periods were missed (the process was down), the schedule skips ahead instead of
/// resetting several times.
pub fn next_reset(start_ms: i64, duration: BudgetDuration, now_ms: i64) -> i64 {
    let mut next = add_duration(start_ms, duration);
    if next > now_ms {
        return next;
    }
    if let BudgetDuration::Seconds(s) = duration {
        let period = i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000).max(1);
        let missed = (now_ms - next) / period + 1;
        return next.saturating_add(missed.saturating_mul(period));
    }
    // Months: step from the original anchor so the day of month is not eroded by clamping.
    let mut k: u32 = 1;
    while next <= now_ms && k < 100_000 {
        k += 1;
        next = add_duration(
            start_ms,
            BudgetDuration::Months(match duration {
                BudgetDuration::Months(m) => m.saturating_mul(k),
                BudgetDuration::Seconds(_) => k,
            }),
        );
    }
    next
}

const DAY_MS: i64 = 86_400_000;

fn add_months(from_ms: i64, months: u32) -> i64 {
    let days = from_ms.div_euclid(DAY_MS);
    let within_day = from_ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let total = i64::from(m) - 1 + i64::from(months);
    let ny = y + total.div_euclid(12);
    let nm = u32::try_from(total.rem_euclid(12)).unwrap_or(0) + 1;
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * DAY_MS + within_day
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` (UTC) for a day number (days since 1970-01-01).
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix milliseconds of midnight UTC for a `YYYY-MM-DD` date.
pub fn parse_day(s: &str) -> Result<i64, StoreError> {
    let bad = || StoreError::invalid("date", format!("`{s}` is not a YYYY-MM-DD date"));
    let mut parts = s.trim().splitn(3, '-');
    let y: i64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let m: u32 =
        parts.next().and_then(|p| p.parse().ok()).filter(|m| (1..=12).contains(m)).ok_or_else(bad)?;
    let d: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    if d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("10s").unwrap(), BudgetDuration::Seconds(10));
        assert_eq!(parse_duration("15m").unwrap(), BudgetDuration::Seconds(900));
        assert_eq!(parse_duration("2h").unwrap(), BudgetDuration::Seconds(7_200));
        assert_eq!(parse_duration("30d").unwrap(), BudgetDuration::Seconds(30 * 86_400));
        assert_eq!(parse_duration("1w").unwrap(), BudgetDuration::Seconds(7 * 86_400));
        assert_eq!(parse_duration("1mo").unwrap(), BudgetDuration::Months(1));
        assert_eq!(parse_duration(" 3MO ").unwrap(), BudgetDuration::Months(3));
    }

    #[test]
    fn refuses_bad_durations() {
        for bad in [
            "",
            "d",
            "30",
            "0d",
            "-1d",
            "1y",
            "1.5h",
            "h1",
            "30 d",
            "1mon",
            "99999999999999999999s",
            "200000w",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(matches!(err, StoreError::Invalid { field: "duration", .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn civil_roundtrip() {
        for day in [-800_000i64, -1, 0, 1, 11_016, 19_000, 20_513, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(20_414), "2025-11-22");
        assert_eq!(parse_day("2024-02-29").unwrap(), days_from_civil(2024, 2, 29) * DAY_MS);
        assert!(parse_day("2023-02-29").is_err());
        assert!(parse_day("2023-13-01").is_err());
    }

    #[test]
    fn months_clamp_and_roll_over_years() {
        let jan31 = parse_day("2024-01-31").unwrap() + 3_600_000;
        assert_eq!(
            add_duration(jan31, BudgetDuration::Months(1)),
            parse_day("2024-02-29").unwrap() + 3_600_000
        );
        let nov30 = parse_day("2025-11-30").unwrap();
        assert_eq!(add_duration(nov30, BudgetDuration::Months(3)), parse_day("2026-02-28").unwrap());
        assert_eq!(add_duration(nov30, BudgetDuration::Months(14)), parse_day("2027-01-30").unwrap());
    }

    #[test]
    fn next_reset_skips_missed_periods() {
        let start = 1_000_000;
        let d = BudgetDuration::Seconds(60);
        assert_eq!(next_reset(start, d, start), start + 60_000);
        assert_eq!(next_reset(start, d, start + 60_000), start + 120_000);
        assert_eq!(next_reset(start, d, start + 185_000), start + 240_000);
        let jan31 = parse_day("2025-01-31").unwrap();
        let now = parse_day("2025-03-05").unwrap();
        // Jan 31 + 1mo = Feb 28 (passed), + 2mo = Mar 31 (anchor kept, not Mar 28).
        assert_eq!(next_reset(jan31, BudgetDuration::Months(1), now), parse_day("2025-03-31").unwrap());
    }
}
