//! THE quantity rule: a quantity is an exact decimal, greater than 0, with at most
//! [`MAX_SCALE`] decimal places and at most [`MAX`]. Both the service and the pharmacy client
//! parse quantities with [`parse`].
//!
//! On the wire a quantity stays a JSON number (`21`, `2.5`); a string (`"2.5"`) is accepted too.
//! Requests keep the number's text as written ([`QuantityText`]), so `0.30000000000000004`,
//! `5e-324` or `1e400` are refused by the rule rather than rounded by a binary float. Responses
//! and the signed content write quantities as numbers ([`as_number`]); every accepted quantity
//! has at most 10 significant digits, so any JSON reader's IEEE double gives back exactly it.

use core::fmt;
use core::str::FromStr;

pub use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// At most 3 decimal places (a thousandth of a unit, e.g. 0.001 ml).
pub const MAX_SCALE: u32 = 3;
/// The smallest quantity: 0.001.
pub const MIN: Decimal = Decimal::from_parts(1, 0, 0, false, MAX_SCALE);
/// The largest quantity: 1 000 000.
pub const MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Longer texts are refused before any parsing.
const MAX_TEXT: usize = 40;

/// Why a quantity is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantityError;

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a quantity is a decimal number from {MIN} to {MAX} with at most {MAX_SCALE} decimal places"
        )
    }
}

impl std::error::Error for QuantityError {}

/// Parses a quantity exactly as written (`21`, `2.5`, `1e3`) and applies the rule; the result
/// has no trailing zeros (`2.50` → `2.5`).
pub fn parse(text: &str) -> Result<Decimal, QuantityError> {
    let number_like = !text.is_empty()
        && text.len() <= MAX_TEXT
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && text.as_bytes()[0] != b'+';
    if !number_like {
        return Err(QuantityError);
    }
    let value = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    }
    .map_err(|_| QuantityError)?
    .normalize();
    if value.scale() > MAX_SCALE || value < MIN || value > MAX {
        return Err(QuantityError);
    }
    Ok(value)
}

/// A quantity in a request as the client wrote it (a JSON number's text, or a string's
/// content), checked by the service with [`parse`] so a refusal names its field.
///
/// It is read with `serde_json` from text (it keeps the number's exact characters), as the
/// service's JSON extractor does; it cannot be read from a `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityText(String);

impl QuantityText {
    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quantity under the rule.
    pub fn parse(&self) -> Result<Decimal, QuantityError> {
        parse(&self.0)
    }
}

impl From<Decimal> for QuantityText {
    fn from(value: Decimal) -> Self {
        Self(value.normalize().to_string())
    }
}

impl FromStr for QuantityText {
    type Err = core::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl Serialize for QuantityText {
    /// A valid quantity as a JSON number (the form clients send); anything else as a string,
    /// so a refused body still has a canonical form.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.parse() {
            Ok(value) => as_number::serialize(&value, serializer),
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for QuantityText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        if text.starts_with('"') {
            serde_json::from_str::<String>(text)
                .map(Self)
                .map_err(de::Error::custom)
        } else {
            Ok(Self(text.to_owned()))
        }
    }
}

/// `#[serde(with = "as_number")]`: a [`Decimal`] as a JSON number, read back from a number or
/// a string. For service-written values (at most 10 significant digits) the number is exact.
pub mod as_number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        let double: f64 = value
            .to_string()
            .parse()
            .map_err(|_| serde::ser::Error::custom("a decimal that is not a number"))?;
        serializer.serialize_f64(double)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        deserializer.deserialize_any(NumberVisitor)
    }

    struct NumberVisitor;

    impl Visitor<'_> for NumberVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // Rust prints the shortest text that reads back as `v`: the decimal that was written.
            if !v.is_finite() {
                return Err(E::custom("a finite number"));
            }
            Decimal::from_str_exact(&v.to_string())
                .map(|d| d.normalize())
                .map_err(E::custom)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            Decimal::from_str_exact(v)
                .map(|d| d.normalize())
                .map_err(E::custom)
        }
    }
}

/// `#[serde(with = "as_number_opt")]`: an optional [`as_number`].
pub mod as_number_opt {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => as_number::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "as_number")] Decimal);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn accepts_exact_quantities() {
        assert_eq!(parse("21"), Ok(d("21")));
        assert_eq!(parse("21.0"), Ok(d("21")));
        assert_eq!(parse("2.50"), Ok(d("2.5")));
        assert_eq!(parse("0.001"), Ok(MIN));
        assert_eq!(parse("1000000"), Ok(MAX));
        assert_eq!(parse("1e3"), Ok(d("1000")));
        assert_eq!(parse("1.5E2"), Ok(d("150")));
        assert_eq!(parse("0.1"), Ok(d("0.1")));
    }

    #[test]
    fn refuses_inexact_tiny_huge_negative_and_non_numbers() {
        for bad in [
            "5e-324",
            "0.30000000000000004",
            "1e400",
            "1E+400",
            "-1",
            "-0.5",
            "0",
            "0.0",
            "0.0005",
            "0.0001",
            "1000000.001",
            "1e7",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "inf",
            "",
            " 1",
            "+1",
            "1,5",
            "0x10",
            "true",
            "null",
            "\"1\"",
            "[1]",
            "{}",
            "99999999999999999999999999999999999999999",
        ] {
            assert_eq!(parse(bad), Err(QuantityError), "{bad:?}");
        }
    }

    #[test]
    fn ten_tenths_make_exactly_one() {
        let tenth = parse("0.1").unwrap();
        let total = (0..10).fold(Decimal::ZERO, |sum, _| sum + tenth);
        assert_eq!(total, parse("1").unwrap());
    }

    #[test]
    fn request_text_is_kept_as_written() {
        #[derive(Deserialize, Serialize)]
        struct Body {
            quantity: QuantityText,
        }
        for (json, text) in [
            (
                r#"{"quantity": 0.30000000000000004}"#,
                "0.30000000000000004",
            ),
            (r#"{"quantity": 5e-324}"#, "5e-324"),
            (r#"{"quantity": 1e400}"#, "1e400"),
            (r#"{"quantity": "2.5"}"#, "2.5"),
            (r#"{"quantity": 21}"#, "21"),
            (r#"{"quantity": true}"#, "true"),
        ] {
            let body: Body = serde_json::from_str(json).unwrap();
            assert_eq!(body.quantity.as_str(), text);
        }
        let valid: Body = serde_json::from_str(r#"{"quantity": 2.50}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&valid).unwrap(),
            r#"{"quantity":2.5}"#
        );
        let refused: Body = serde_json::from_str(r#"{"quantity": 1e400}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"quantity":"1e400"}"#
        );
    }

    #[test]
    fn numbers_round_trip_exactly() {
        #[derive(Deserialize, Serialize, PartialEq, Debug)]
        struct View {
            #[serde(with = "as_number")]
            quantity: Decimal,
        }
        for text in ["0.001", "0.1", "0.3", "2.5", "21", "999999.999", "1000000"] {
            let view = View { quantity: d(text) };
            let json = serde_json::to_string(&view).unwrap();
            let back: View = serde_json::from_str(&json).unwrap();
            assert_eq!(back, view, "{json}");
            let via_value: View =
                serde_json::from_value(serde_json::to_value(&view).unwrap()).unwrap();
            assert_eq!(via_value, view);
        }
        assert_eq!(
            serde_json::to_string(&View { quantity: d("21") }).unwrap(),
            r#"{"quantity":21.0}"#
        );
    }
}
