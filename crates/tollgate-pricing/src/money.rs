//! [`Usd`]: an exact amount of US dollars, stored as an integer number of yoctodollars (10⁻²⁴ USD).
//!
//! Every price in the model data is a decimal with at most 24 fractional digits, so table prices,
//! and every sum of `price × count`, are exact integers in this unit: no float drift, ever. A
//! `u128` holds up to ~3.4 × 10¹⁴ USD, far beyond any single call; arithmetic is checked.

use std::fmt;
use std::str::FromStr;

/// Yoctodollars in one dollar.
pub const YOCTO_PER_USD: u128 = 1_000_000_000_000_000_000_000_000;
const FRACTION_DIGITS: usize = 24;

/// An exact, non-negative amount of US dollars (integer yoctodollars).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(u128);

/// A string or float that is not an exact, non-negative dollar amount with ≤ 24 decimals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a non-negative decimal dollar amount with at most 24 decimal places")]
pub struct ParseUsdError(pub String);

impl Usd {
    pub const ZERO: Usd = Usd(0);

    /// From an integer number of yoctodollars (10⁻²⁴ USD).
    pub const fn from_yocto(yocto: u128) -> Self {
        Usd(yocto)
    }

    /// The amount in yoctodollars (10⁻²⁴ USD).
    pub const fn yocto(self) -> u128 {
        self.0
    }

    /// From whole micro-dollars (10⁻⁶ USD), e.g. a price "per million tokens" is `from_micros(n)` per token.
    pub const fn from_micros(micros: u64) -> Self {
        Usd(micros as u128 * 1_000_000_000_000_000_000)
    }

    /// From an `f64` (e.g. a price in a config file): the shortest decimal that round-trips the
    /// float is taken as meant, so `3e-6` is exactly three micro-dollars.
    pub fn from_f64(v: f64) -> Result<Self, ParseUsdError> {
        if !v.is_finite() || v < 0.0 {
            return Err(ParseUsdError(v.to_string()));
        }
        format!("{v}").parse()
    }

    /// A lossy `f64` (nearest float) for display and metrics; use the exact value for accounting.
    pub fn to_f64(self) -> f64 {
        // Parse the exact decimal text: correctly rounded, unlike dividing two rounded floats.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }

    /// `self × n` (a unit price times a count).
    pub fn checked_mul(self, n: u64) -> Option<Usd> {
        self.0.checked_mul(u128::from(n)).map(Usd)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Usd {
    /// The exact decimal, without trailing zeros: `0.054399`, `3`, `0.000000042000000000000006`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / YOCTO_PER_USD;
        let frac = self.0 % YOCTO_PER_USD;
        if frac == 0 {
            return write!(f, "{int}");
        }
        let digits = format!("{frac:0FRACTION_DIGITS$}");
        write!(f, "{int}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Usd {
    type Err = ParseUsdError;

    /// A plain decimal (`0.000003`, `15`, `2.5e-6` is also accepted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseUsdError(s.to_owned());
        let t = s.trim();
        // Scientific notation: shift the decimal point by the exponent.
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| err())?),
            None => (t, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(err());
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let digits: String = format!("{int}{frac}");
        // value = digits × 10^(exp - frac.len()); in yocto: × 10^(24 + exp - frac.len()).
        let scale = FRACTION_DIGITS as i64 + i64::from(exp) - frac.len() as i64;
        let digits = digits.trim_start_matches('0');
        let mut value: u128 = 0;
        for b in digits.bytes() {
            value =
                value.checked_mul(10).and_then(|v| v.checked_add(u128::from(b - b'0'))).ok_or_else(err)?;
        }
        if scale >= 0 {
            let factor = 10u128.checked_pow(u32::try_from(scale).map_err(|_| err())?).ok_or_else(err)?;
            value.checked_mul(factor).map(Usd).ok_or_else(err)
        } else {
            let divisor = 10u128.checked_pow(u32::try_from(-scale).map_err(|_| err())?);
            match divisor {
                Some(d) if value.is_multiple_of(d) => Ok(Usd(value / d)),
                None if value == 0 => Ok(Usd(0)),
                _ => Err(err()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        let v: Usd = "0.054399".parse().unwrap();
        assert_eq!(v.yocto(), 54_399 * 1_000_000_000_000_000_000);
        assert_eq!(v.to_string(), "0.054399");
        assert_eq!("2.5e-6".parse::<Usd>().unwrap(), "0.0000025".parse().unwrap());
        assert_eq!("15".parse::<Usd>().unwrap().to_string(), "15");
        assert_eq!(Usd::from_f64(3e-6).unwrap(), Usd::from_micros(3));
        assert_eq!(Usd::from_f64(4.2000000000000006e-08).unwrap().to_string(), "0.000000042000000000000006");
        assert!("1e-25".parse::<Usd>().is_err());
        assert!("-1".parse::<Usd>().is_err());
        assert!("abc".parse::<Usd>().is_err());
        assert!(Usd::from_f64(f64::NAN).is_err());
        assert_eq!(Usd::ZERO.to_string(), "0");
    }

    #[test]
    fn f64_view_is_nearest_float() {
        assert_eq!("0.185".parse::<Usd>().unwrap().to_f64(), 0.185);
        assert_eq!(Usd::from_micros(1).checked_mul(3).unwrap().to_f64(), 3e-6);
    }
}
