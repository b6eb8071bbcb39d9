//! GS1 element strings: the data on a medicine pack's GS1 DataMatrix (EU Falsified Medicines
//! Directive) and on GS1-128 labels.
//!
//! An element string is a sequence of *Application Identifier* (AI) + value pairs, e.g.
//! `01` GTIN, `17` expiry, `10` batch, `21` serial. Values of predefined length (the AI's first two
//! digits are in [`predefined_length`]) simply follow each other; every other value ends with FNC1,
//! which a scanner transmits as the GS character (0x1D), unless it is the last one.
//!
//! Two entry points, one set of rules:
//! - [`ElementString::parse`]: the text as a scanner delivers it, with or without the AIM symbology
//!   identifier (`]d2` GS1 DataMatrix, `]C1` GS1-128, `]Q3` GS1 QR, `]e0` GS1 DataBar), FNC1 as GS.
//!   A leading GS (FNC1 in first position, sent by scanners without an AIM prefix) is accepted.
//! - [`ElementString::parse_bracketed`]: the human-readable form `(01)09501101530003(17)270131…`.
//!   A value in this form cannot contain `(`.
//!
//! Parsing borrows from the input and allocates nothing (the module is part of the `no_std` core).
//! Every element is checked against [`AI_TABLE`] (a curated table of the AIs Prescrypt meets on
//! packs, labels and in pharmacy, with their lengths and character sets) or, for an AI not in it,
//! against the predefined-length table, so that any predefined-length AI still parses. Check
//! digits ([`check_digit`]), dates ([`Gs1Date`]), the character set 82 and duplicate AIs with
//! differing values are validated; see [`Gs1Error`] for every reason a string is refused.
//!
//! Why not a crate: crates.io offers `gs1` (EPC/RFID tag encodings, no element-string parser),
//! `gtin-validate` (check digits only, `std`, unmaintained since 2020) and `qrcode-parse`'s `gs1`
//! module (allocates, accepts unknown AIs best-effort and validates no check digit, date or
//! character set). None parses element strings strictly in `no_std`.
//!
//! A limit of the format itself: when the FNC1 after a variable-length value is missing and the
//! value together with what follows still fits the value's maximum length (`10AB17270131`), nothing
//! tells it apart from one longer value, and it parses as that (batch `AB17270131`).

use core::fmt;

/// FNC1 as transmitted by a scanner (ASCII group separator).
pub const GS: char = '\u{1d}';
const GS_BYTE: u8 = 0x1d;

/// Longest input accepted (the capacity of the largest GS1 DataMatrix in digits).
pub const MAX_INPUT_LEN: usize = 3116;

/// The GS1 symbology an element string came from, by its AIM symbology identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    /// `]d2`
    DataMatrix,
    /// `]C1`
    Gs1_128,
    /// `]Q3`
    Qr,
    /// `]e0`
    DataBar,
}

impl Symbology {
    const ALL: [Self; 4] = [Self::DataMatrix, Self::Gs1_128, Self::Qr, Self::DataBar];

    /// The AIM symbology identifier (ISO/IEC 15424) that marks GS1 data in this symbology.
    pub fn aim(self) -> &'static str {
        match self {
            Self::DataMatrix => "]d2",
            Self::Gs1_128 => "]C1",
            Self::Qr => "]Q3",
            Self::DataBar => "]e0",
        }
    }

    /// The symbology of a GS1 AIM identifier (`None` for any other identifier).
    pub fn from_aim(aim: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.aim() == aim)
    }
}

/// A character set of GS1 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Digits `0-9`.
    Numeric,
    /// GS1 AI encodable character set 82: `!"%&'()*+,-./0-9:;<=>?A-Z_a-z`.
    Cset82,
}

impl Charset {
    /// Whether `byte` belongs to the set.
    pub fn contains(self, byte: u8) -> bool {
        match self {
            Self::Numeric => byte.is_ascii_digit(),
            Self::Cset82 => {
                byte.is_ascii_alphanumeric()
                    || matches!(
                        byte,
                        b'!' | b'"'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b'-'
                            | b'.'
                            | b'/'
                            | b':'
                            | b';'
                            | b'<'
                            | b'='
                            | b'>'
                            | b'?'
                            | b'_'
                    )
            }
        }
    }
}

/// Extra validation of a value beyond its length and character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// The last digit is the GS1 mod-10 check digit ([`check_digit`]).
    CheckDigit,
    /// `YYMMDD`; `DD` may be `00` (see [`Gs1Date`]).
    Date,
}

/// The length of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Fixed(usize),
    /// Between 1 and the maximum.
    Variable(usize),
}

/// How one AI (or a family of AIs sharing a prefix) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiSpec {
    /// The AI, or its leading digits when `ai_len` is longer (e.g. `390` for `3900`–`3909`);
    /// empty for an AI known only from the predefined-length table.
    pub prefix: &'static str,
    /// Number of digits of the AI.
    pub ai_len: usize,
    pub length: Length,
    pub charset: Charset,
    pub check: Check,
    /// GS1 data title, e.g. `BATCH/LOT`.
    pub title: &'static str,
}

const fn fixed(prefix: &'static str, len: usize, check: Check, title: &'static str) -> AiSpec {
    AiSpec {
        prefix,
        ai_len: prefix.len(),
        length: Length::Fixed(len),
        charset: Charset::Numeric,
        check,
        title,
    }
}

const fn text(prefix: &'static str, max: usize, title: &'static str) -> AiSpec {
    AiSpec {
        prefix,
        ai_len: prefix.len(),
        length: Length::Variable(max),
        charset: Charset::Cset82,
        check: Check::None,
        title,
    }
}

const fn number(prefix: &'static str, ai_len: usize, max: usize, title: &'static str) -> AiSpec {
    AiSpec {
        prefix,
        ai_len,
        length: Length::Variable(max),
        charset: Charset::Numeric,
        check: Check::None,
        title,
    }
}

/// The AIs Prescrypt knows by name (GS1 General Specifications, section 3). AIs whose first two
/// digits have a predefined length but are not listed here still parse (as numeric values of
/// that length); any other AI is [`Gs1Error::UnknownAi`].
#[rustfmt::skip]
pub const AI_TABLE: &[AiSpec] = &[
    fixed("00", 18, Check::CheckDigit, "SSCC"),
    fixed("01", 14, Check::CheckDigit, "GTIN"),
    fixed("02", 14, Check::CheckDigit, "CONTENT"),
    text("10", 20, "BATCH/LOT"),
    fixed("11", 6, Check::Date, "PROD DATE"),
    fixed("12", 6, Check::Date, "DUE DATE"),
    fixed("13", 6, Check::Date, "PACK DATE"),
    fixed("15", 6, Check::Date, "BEST BEFORE or BEST BY"),
    fixed("16", 6, Check::Date, "SELL BY"),
    fixed("17", 6, Check::Date, "USE BY or EXPIRY"),
    fixed("20", 2, Check::None, "VARIANT"),
    text("21", 20, "SERIAL"),
    text("22", 20, "CPV"),
    text("235", 28, "TPX"),
    text("240", 30, "ADDITIONAL ID"),
    text("241", 30, "CUST. PART No."),
    number("242", 3, 6, "MTO VARIANT"),
    text("243", 20, "PCN"),
    text("250", 30, "SECONDARY SERIAL"),
    text("251", 30, "REF. TO SOURCE"),
    text("254", 20, "GLN EXTENSION COMPONENT"),
    number("30", 2, 8, "VAR. COUNT"),
    number("37", 2, 8, "COUNT"),
    number("390", 4, 15, "AMOUNT"),
    number("392", 4, 15, "PRICE"),
    text("400", 30, "ORDER NUMBER"),
    text("401", 30, "GINC"),
    fixed("402", 17, Check::CheckDigit, "GSIN"),
    text("403", 30, "ROUTE"),
    fixed("410", 13, Check::CheckDigit, "SHIP TO LOC"),
    fixed("411", 13, Check::CheckDigit, "BILL TO"),
    fixed("412", 13, Check::CheckDigit, "PURCHASE FROM"),
    fixed("413", 13, Check::CheckDigit, "SHIP FOR LOC"),
    fixed("414", 13, Check::CheckDigit, "LOC No."),
    fixed("415", 13, Check::CheckDigit, "PAY TO"),
    fixed("416", 13, Check::CheckDigit, "PROD/SERV LOC"),
    fixed("417", 13, Check::CheckDigit, "PARTY"),
    text("420", 20, "SHIP TO POST"),
    fixed("422", 3, Check::None, "ORIGIN"),
    fixed("424", 3, Check::None, "COUNTRY - PROCESS"),
    fixed("426", 3, Check::None, "COUNTRY - FULL PROCESS"),
    // National healthcare reimbursement numbers.
    text("710", 20, "NHRN PZN"),
    text("711", 20, "NHRN CIP"),
    text("712", 20, "NHRN CN"),
    text("713", 20, "NHRN DRN"),
    text("714", 20, "NHRN AIM"),
    text("715", 20, "NHRN NDC"),
    text("8004", 30, "GIAI"),
    text("8020", 25, "REF No."),
    text("90", 30, "INTERNAL"),
    text("91", 90, "INTERNAL"),
    text("92", 90, "INTERNAL"),
    text("93", 90, "INTERNAL"),
    text("94", 90, "INTERNAL"),
    text("95", 90, "INTERNAL"),
    text("96", 90, "INTERNAL"),
    text("97", 90, "INTERNAL"),
    text("98", 90, "INTERNAL"),
    text("99", 90, "INTERNAL"),
];

/// The GS1 table of element strings with a predefined length: the AI's first two digits → the
/// length of AI and value together. Only these need no FNC1 after them.
pub fn predefined_length(first_two_digits: &str) -> Option<usize> {
    Some(match first_two_digits {
        "00" => 20,
        "01" | "02" | "03" => 16,
        "04" => 18,
        "11" | "12" | "13" | "14" | "15" | "16" | "17" | "18" | "19" => 8,
        "20" => 4,
        "31" | "32" | "33" | "34" | "35" | "36" => 10,
        "41" => 16,
        _ => return None,
    })
}

/// Digits of the AI for a predefined-length prefix (`31`–`36` are 4-digit AIs, `41` 3-digit).
fn predefined_ai_len(first_two_digits: &str) -> usize {
    match first_two_digits {
        "31" | "32" | "33" | "34" | "35" | "36" => 4,
        "41" => 3,
        _ => 2,
    }
}

impl AiSpec {
    /// The spec of the AI that `text` starts with: from [`AI_TABLE`], else from the
    /// predefined-length table, else `None`.
    pub fn lookup(text: &str) -> Option<AiSpec> {
        let bytes = text.as_bytes();
        if let Some(spec) = AI_TABLE.iter().find(|spec| {
            bytes.len() >= spec.ai_len
                && text.starts_with(spec.prefix)
                && bytes[..spec.ai_len].iter().all(u8::is_ascii_digit)
        }) {
            return Some(*spec);
        }
        let first_two = text.get(..2)?;
        let total = predefined_length(first_two)?;
        let ai_len = predefined_ai_len(first_two);
        if bytes.len() < ai_len || !bytes[..ai_len].iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(AiSpec {
            prefix: "",
            ai_len,
            length: Length::Fixed(total - ai_len),
            charset: Charset::Numeric,
            check: Check::None,
            title: "",
        })
    }

    /// The spec of exactly this AI (as written in brackets).
    fn lookup_exact(ai: &str) -> Option<AiSpec> {
        Self::lookup(ai).filter(|spec| spec.ai_len == ai.len())
    }

    /// Whether no FNC1 is needed after this AI's value.
    pub fn is_predefined_length(&self) -> bool {
        let listed = match self.prefix.get(..2) {
            Some(first_two) => predefined_length(first_two).is_some(),
            None => self.prefix.is_empty(),
        };
        listed && matches!(self.length, Length::Fixed(_))
    }
}

/// An Application Identifier: 2 to 4 digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ai {
    digits: [u8; 4],
    len: u8,
}

impl Ai {
    /// The AI `digits` (2–4 ASCII digits), e.g. `Ai::new("17")`.
    pub fn new(digits: &str) -> Option<Self> {
        let bytes = digits.as_bytes();
        if !(2..=4).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ai = Self {
            digits: [0; 4],
            len: bytes.len() as u8,
        };
        ai.digits[..bytes.len()].copy_from_slice(bytes);
        Some(ai)
    }

    /// Up to 4 leading characters of an unparseable AI, for error messages.
    fn prefix_of(bytes: &[u8]) -> Self {
        let len = bytes.len().min(4);
        let mut ai = Self {
            digits: [b'?'; 4],
            len: len as u8,
        };
        for (slot, byte) in ai.digits.iter_mut().zip(&bytes[..len]) {
            *slot = if byte.is_ascii_graphic() { *byte } else { b'?' };
        }
        ai
    }

    /// A number that differs for AIs of the same length (for the duplicate filter).
    fn hash_bucket(&self) -> u32 {
        self.digits[..usize::from(self.len)]
            .iter()
            .fold(u32::from(self.len), |acc, d| {
                acc * 10 + u32::from(d.wrapping_sub(b'0'))
            })
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl fmt::Display for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ai({})", self.as_str())
    }
}

/// Why a text is not a valid GS1 element string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gs1Error {
    /// Nothing (or only an AIM identifier / FNC1) to parse.
    Empty,
    /// Longer than [`MAX_INPUT_LEN`].
    TooLong,
    /// An AIM identifier that does not mark GS1 data (e.g. `]d1`, `]C0`).
    NotGs1Symbology,
    /// No known or predefined-length AI starts at byte `at`; `ai` shows up to 4 characters there.
    UnknownAi { ai: Ai, at: usize },
    /// A GS (FNC1) where an AI should start, e.g. two in a row.
    StraySeparator { at: usize },
    /// A fixed-length value is cut short by the end of the data or by a GS.
    TooShort { ai: Ai, expected: usize },
    /// A value is longer than its AI allows (`max`) and no missing FNC1 explains it.
    Overlong { ai: Ai, max: usize },
    /// A value is not followed by FNC1 (GS) although another element follows: a non-predefined
    /// fixed-length value runs on, or a variable-length value runs past its maximum into what
    /// parses as further elements starting at byte `at`.
    MissingFnc1 { ai: Ai, at: usize },
    /// A variable-length AI with nothing after it.
    EmptyValue { ai: Ai },
    /// A character outside the AI's character set at byte `at`.
    Charset { ai: Ai, at: usize },
    /// The GS1 mod-10 check digit does not match.
    CheckDigit { ai: Ai },
    /// Not a valid `YYMMDD` (month 01–12, day 00 or within the month).
    Date { ai: Ai },
    /// The same AI twice with different values.
    DuplicateAi { ai: Ai },
    /// Bracketed form: not `(AI)value…` (a missing bracket, or an AI that is not 2–4 digits).
    Bracket { at: usize },
}

impl fmt::Display for Gs1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty GS1 element string"),
            Self::TooLong => write!(f, "longer than {MAX_INPUT_LEN} characters"),
            Self::NotGs1Symbology => {
                f.write_str("the symbology identifier does not mark GS1 data (]d2, ]C1, ]Q3, ]e0)")
            }
            Self::UnknownAi { ai, at } => write!(f, "unknown application identifier {ai} at {at}"),
            Self::StraySeparator { at } => write!(f, "separator (FNC1) without an element at {at}"),
            Self::TooShort { ai, expected } => {
                write!(f, "AI ({ai}): the value must have {expected} characters")
            }
            Self::Overlong { ai, max } => {
                write!(f, "AI ({ai}): the value is longer than {max} characters")
            }
            Self::MissingFnc1 { ai, at } => write!(
                f,
                "AI ({ai}): FNC1 (GS) missing after the value, before the element at {at}"
            ),
            Self::EmptyValue { ai } => write!(f, "AI ({ai}): empty value"),
            Self::Charset { ai, at } => {
                write!(
                    f,
                    "AI ({ai}): character at {at} is not allowed in this value"
                )
            }
            Self::CheckDigit { ai } => write!(f, "AI ({ai}): wrong check digit"),
            Self::Date { ai } => write!(f, "AI ({ai}): not a valid date YYMMDD"),
            Self::DuplicateAi { ai } => write!(f, "AI ({ai}) appears twice with different values"),
            Self::Bracket { at } => write!(f, "expected (AI) at {at}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Gs1Error {}

/// The GS1 mod-10 check digit for `body` (the digits before the check digit) of a GTIN-8/12/13/14,
/// GLN, SSCC or GSIN: weights 3, 1, 3, … from the right. `None` if `body` is empty or not all digits.
pub fn check_digit(body: &str) -> Option<u8> {
    if body.is_empty() {
        return None;
    }
    let mut sum = 0u32;
    for (i, byte) in body.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return None;
        }
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum += weight * u32::from(byte - b'0');
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Whether `digits` ends with the right GS1 check digit (e.g. a GTIN-8, -12, -13 or -14).
pub fn has_valid_check_digit(digits: &str) -> bool {
    match digits.as_bytes().split_last() {
        Some((&last, body)) if last.is_ascii_digit() && !body.is_empty() => {
            check_digit(&digits[..body.len()]) == Some(last - b'0')
        }
        _ => false,
    }
}

/// A GS1 date `YYMMDD` (AIs 11, 12, 13, 15, 16, 17). `day == 0` means the month as a whole; as an
/// expiry it means the last day of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gs1Date {
    /// Two-digit year as written.
    pub yy: u8,
    pub month: u8,
    /// 0 when only year and month are given.
    pub day: u8,
}

impl Gs1Date {
    /// Parses `YYMMDD`.
    pub fn parse(digits: &str) -> Option<Self> {
        let bytes = digits.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let pair = |i: usize| (bytes[i] - b'0') * 10 + (bytes[i + 1] - b'0');
        let (yy, month, day) = (pair(0), pair(2), pair(4));
        // 29 February needs a leap year; within 2000–2099 (the reach of the century rule for
        // years of the next decades) that is every year divisible by 4.
        let last = days_in_month(u16::from(yy) + 2000, month)?;
        (day <= last).then_some(Self { yy, month, day })
    }

    /// The four-digit year by the GS1 century rule (General Specifications 7.12): relative to
    /// the `current_year`, a two-digit year 51 or more years ahead is in the previous century, one
    /// 50 or more years behind in the next century, any other in the current century (e.g. in
    /// 2026, `76` is 2076 and `77` is 1977; in 2080, `30` is 2130).
    pub fn year(&self, current_year: u16) -> u16 {
        let century = current_year - current_year % 100;
        let diff = i32::from(self.yy) - i32::from(current_year % 100);
        let century = if diff >= 51 {
            century.saturating_sub(100)
        } else if diff <= -50 {
            century.saturating_add(100)
        } else {
            century
        };
        century.saturating_add(u16::from(self.yy))
    }

    /// Year, month and day, with day `00` resolved to the last day of the month (the reading of an
    /// expiry date), the century chosen by [`Gs1Date::year`].
    pub fn resolve(&self, current_year: u16) -> (u16, u8, u8) {
        let year = self.year(current_year);
        let day = match self.day {
            0 => days_in_month(year, self.month).unwrap_or(31),
            day => day,
        };
        (year, self.month, day)
    }
}

fn days_in_month(year: u16, month: u8) -> Option<u8> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

/// One AI and its value, borrowed from the parsed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub ai: Ai,
    pub value: &'a str,
    pub spec: AiSpec,
}

impl Element<'_> {
    /// The value as a date, for the date AIs.
    pub fn date(&self) -> Option<Gs1Date> {
        match self.spec.check {
            Check::Date => Gs1Date::parse(self.value),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Raw,
    Bracketed,
}

/// A validated GS1 element string. It borrows the input; [`ElementString::elements`] walks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementString<'a> {
    symbology: Option<Symbology>,
    /// The input after the AIM identifier and a leading GS.
    body: &'a str,
    form: Form,
}

/// The typed data of a medicine pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pack<'a> {
    /// AI 01, check digit validated.
    pub gtin: &'a str,
    /// AI 17.
    pub expiry: Option<Gs1Date>,
    /// AI 10.
    pub batch: Option<&'a str>,
    /// AI 21.
    pub serial: Option<&'a str>,
}

impl<'a> ElementString<'a> {
    /// Parses the text as a scanner delivers it: an optional GS1 AIM identifier, an optional
    /// leading GS, then element strings with FNC1 as GS.
    pub fn parse(text: &'a str) -> Result<Self, Gs1Error> {
        if text.len() > MAX_INPUT_LEN {
            return Err(Gs1Error::TooLong);
        }
        let (symbology, rest) = match text.get(..3) {
            Some(aim) if aim.starts_with(']') => (
                Some(Symbology::from_aim(aim).ok_or(Gs1Error::NotGs1Symbology)?),
                &text[3..],
            ),
            _ if text.starts_with(']') => return Err(Gs1Error::NotGs1Symbology),
            _ => (None, text),
        };
        let body = rest.strip_prefix(GS).unwrap_or(rest);
        let parsed = Self {
            symbology,
            body,
            form: Form::Raw,
        };
        parsed.validate(text.len() - body.len())?;
        Ok(parsed)
    }

    /// Parses the human-readable form `(01)09501101530003(17)270131(10)AB12`.
    pub fn parse_bracketed(text: &'a str) -> Result<Self, Gs1Error> {
        if text.len() > MAX_INPUT_LEN {
            return Err(Gs1Error::TooLong);
        }
        let parsed = Self {
            symbology: None,
            body: text,
            form: Form::Bracketed,
        };
        parsed.validate(0)?;
        Ok(parsed)
    }

    fn validate(&self, offset: usize) -> Result<(), Gs1Error> {
        if self.body.is_empty() {
            return Err(Gs1Error::Empty);
        }
        let mut cursor = self.cursor(offset);
        let mut count = 0usize;
        // Alloc-free duplicate check: a filter of the AIs seen so far (1024 bits) spares
        // the walk over earlier elements for a new AI; a repeated AI is compared with its first
        // occurrence only (every later repeat already equals that one).
        let mut seen = [0u64; 16];
        while let Some(element) = cursor.next_element(true)? {
            let bucket = element.ai.hash_bucket() as usize % (64 * seen.len());
            let (word, bit) = (bucket / 64, 1u64 << (bucket % 64));
            if seen[word] & bit != 0 {
                let first = self
                    .elements()
                    .take(count)
                    .find(|other| other.ai == element.ai);
                if first.is_some_and(|first| first.value != element.value) {
                    return Err(Gs1Error::DuplicateAi { ai: element.ai });
                }
            }
            seen[word] |= bit;
            count += 1;
        }
        Ok(())
    }

    fn cursor(&self, offset: usize) -> Cursor<'a> {
        Cursor {
            text: self.body,
            pos: 0,
            offset,
            form: self.form,
        }
    }

    /// The symbology named by the AIM identifier, if the text had one.
    pub fn symbology(&self) -> Option<Symbology> {
        self.symbology
    }

    /// The elements in the order they were written.
    pub fn elements(&self) -> Elements<'a> {
        Elements {
            cursor: self.cursor(0),
        }
    }

    /// The first value of `ai` (duplicates have equal values).
    pub fn get(&self, ai: &str) -> Option<&'a str> {
        self.elements()
            .find(|element| element.ai.as_str() == ai)
            .map(|element| element.value)
    }

    /// AI 01, check digit validated.
    pub fn gtin(&self) -> Option<&'a str> {
        self.get("01")
    }

    /// AI 17.
    pub fn expiry(&self) -> Option<Gs1Date> {
        self.get("17").and_then(Gs1Date::parse)
    }

    /// AI 10.
    pub fn batch(&self) -> Option<&'a str> {
        self.get("10")
    }

    /// AI 21.
    pub fn serial(&self) -> Option<&'a str> {
        self.get("21")
    }

    /// The pack data, if the string has a GTIN.
    pub fn pack(&self) -> Option<Pack<'a>> {
        Some(Pack {
            gtin: self.gtin()?,
            expiry: self.expiry(),
            batch: self.batch(),
            serial: self.serial(),
        })
    }

    /// The element string as a scanner would transmit it without AIM identifier: elements in
    /// their order, a GS after every value that is not of predefined length unless it is last.
    pub fn canonical(&self) -> Canonical<'a> {
        Canonical(*self)
    }

    /// The human-readable form `(01)…(17)…`.
    pub fn bracketed(&self) -> Bracketed<'a> {
        Bracketed(*self)
    }
}

/// [`ElementString::canonical`] as `Display`.
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'a>(ElementString<'a>);

impl fmt::Display for Canonical<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut elements = self.0.elements().peekable();
        while let Some(element) = elements.next() {
            f.write_str(element.ai.as_str())?;
            f.write_str(element.value)?;
            if !element.spec.is_predefined_length() && elements.peek().is_some() {
                fmt::Write::write_char(f, GS)?;
            }
        }
        Ok(())
    }
}

/// [`ElementString::bracketed`] as `Display`.
#[derive(Debug, Clone, Copy)]
pub struct Bracketed<'a>(ElementString<'a>);

impl fmt::Display for Bracketed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in self.0.elements() {
            write!(f, "({}){}", element.ai, element.value)?;
        }
        Ok(())
    }
}

/// Iterator over the elements of a validated [`ElementString`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    cursor: Cursor<'a>,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        // The string was validated when it was built, so the cursor finds no error here.
        self.cursor.next_element(false).ok().flatten()
    }
}

#[derive(Debug, Clone)]
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// Bytes before `text` in the caller's input, to report positions in it.
    offset: usize,
    form: Form,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next element, `None` at the end. `diagnose` lets an overlong variable-length value look
    /// for a missing FNC1 (not needed once the string is known to be valid).
    fn next_element(&mut self, diagnose: bool) -> Result<Option<Element<'a>>, Gs1Error> {
        if self.pos >= self.text.len() {
            return Ok(None);
        }
        match self.form {
            Form::Raw => self.next_raw(diagnose).map(Some),
            Form::Bracketed => self.next_bracketed().map(Some),
        }
    }

    fn next_raw(&mut self, diagnose: bool) -> Result<Element<'a>, Gs1Error> {
        let bytes = self.bytes();
        let start = self.pos;
        let at = self.offset + start;
        if bytes[start] == GS_BYTE {
            return Err(Gs1Error::StraySeparator { at });
        }
        let rest = &self.text[start..];
        let spec = AiSpec::lookup(rest).ok_or(Gs1Error::UnknownAi {
            ai: Ai::prefix_of(&bytes[start..]),
            at,
        })?;
        let ai = Ai::new(&rest[..spec.ai_len]).ok_or(Gs1Error::UnknownAi {
            ai: Ai::prefix_of(&bytes[start..]),
            at,
        })?;
        let value_start = start + spec.ai_len;
        // The value runs to the next GS or the end; look no further than one past the longest
        // value, so each element costs at most its own length.
        let longest = match spec.length {
            Length::Fixed(len) => len,
            Length::Variable(max) => max,
        };
        let window = &bytes[value_start..bytes.len().min(value_start + longest + 1)];
        let run_len = window
            .iter()
            .position(|&b| b == GS_BYTE)
            .unwrap_or(window.len());
        let value_end = match spec.length {
            Length::Fixed(len) => {
                if run_len < len {
                    return Err(Gs1Error::TooShort { ai, expected: len });
                }
                let end = value_start + len;
                if run_len > len && !spec.is_predefined_length() {
                    return Err(Gs1Error::MissingFnc1 {
                        ai,
                        at: self.offset + end,
                    });
                }
                end
            }
            Length::Variable(max) => {
                if run_len == 0 {
                    return Err(Gs1Error::EmptyValue { ai });
                }
                if run_len > max {
                    return Err(self.overlong(ai, spec, value_start, max, diagnose));
                }
                value_start + run_len
            }
        };
        let value = self.value(ai, spec, value_start, value_end)?;
        // A GS after a value ends it (after a predefined-length value it is tolerated).
        self.pos = if bytes.get(value_end) == Some(&GS_BYTE) {
            value_end + 1
        } else {
            value_end
        };
        Ok(Element { ai, value, spec })
    }

    /// A variable-length value longer than `max`: if the text from some position within the
    /// maximum parses as valid elements, the FNC1 before it is what is missing.
    fn overlong(
        &self,
        ai: Ai,
        spec: AiSpec,
        value_start: usize,
        max: usize,
        diagnose: bool,
    ) -> Gs1Error {
        if diagnose {
            for split in value_start + 1..=value_start + max {
                let value_ok = self.bytes()[value_start..split]
                    .iter()
                    .all(|&b| spec.charset.contains(b));
                if !value_ok {
                    break;
                }
                let mut rest = Cursor {
                    text: self.text,
                    pos: split,
                    offset: self.offset,
                    form: Form::Raw,
                };
                let parses = loop {
                    match rest.next_element(false) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break true,
                        Err(_) => break false,
                    }
                };
                if parses {
                    return Gs1Error::MissingFnc1 {
                        ai,
                        at: self.offset + split,
                    };
                }
            }
        }
        Gs1Error::Overlong { ai, max }
    }

    fn next_bracketed(&mut self) -> Result<Element<'a>, Gs1Error> {
        let bytes = self.bytes();
        let start = self.pos;
        if bytes[start] != b'(' {
            return Err(Gs1Error::Bracket { at: start });
        }
        let close = bytes[start..]
            .iter()
            .take(6)
            .position(|&b| b == b')')
            .map(|i| start + i)
            .ok_or(Gs1Error::Bracket { at: start })?;
        let ai_text = &self.text[start + 1..close];
        let ai = Ai::new(ai_text).ok_or(Gs1Error::Bracket { at: start })?;
        let spec = AiSpec::lookup_exact(ai_text).ok_or(Gs1Error::UnknownAi { ai, at: start })?;
        let value_start = close + 1;
        let value_end = bytes[value_start..]
            .iter()
            .position(|&b| b == b'(')
            .map_or(bytes.len(), |i| value_start + i);
        let len = value_end - value_start;
        match spec.length {
            Length::Fixed(expected) if len < expected => {
                return Err(Gs1Error::TooShort { ai, expected });
            }
            Length::Fixed(max) | Length::Variable(max) if len > max => {
                return Err(Gs1Error::Overlong { ai, max });
            }
            Length::Variable(_) if len == 0 => return Err(Gs1Error::EmptyValue { ai }),
            _ => {}
        }
        let value = self.value(ai, spec, value_start, value_end)?;
        self.pos = value_end;
        Ok(Element { ai, value, spec })
    }

    /// Checks the value's characters, check digit and date.
    fn value(&self, ai: Ai, spec: AiSpec, start: usize, end: usize) -> Result<&'a str, Gs1Error> {
        let bytes = &self.bytes()[start..end];
        if let Some(i) = bytes.iter().position(|&b| !spec.charset.contains(b)) {
            return Err(Gs1Error::Charset {
                ai,
                at: self.offset + start + i,
            });
        }
        // All ASCII now, so these are character boundaries.
        let value = &self.text[start..end];
        match spec.check {
            Check::None => {}
            Check::CheckDigit if has_valid_check_digit(value) => {}
            Check::CheckDigit => return Err(Gs1Error::CheckDigit { ai }),
            Check::Date if Gs1Date::parse(value).is_some() => {}
            Check::Date => return Err(Gs1Error::Date { ai }),
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curated_fixed_lengths_agree_with_the_predefined_table() {
        for spec in AI_TABLE {
            let Some(total) = predefined_length(&spec.prefix[..2]) else {
                continue;
            };
            assert_eq!(
                spec.ai_len,
                predefined_ai_len(&spec.prefix[..2]),
                "{spec:?}"
            );
            assert_eq!(spec.length, Length::Fixed(total - spec.ai_len), "{spec:?}");
        }
    }

    #[test]
    fn curated_prefixes_do_not_shadow_each_other() {
        for (i, a) in AI_TABLE.iter().enumerate() {
            for b in &AI_TABLE[i + 1..] {
                assert!(
                    !a.prefix.starts_with(b.prefix) && !b.prefix.starts_with(a.prefix),
                    "{a:?} / {b:?}"
                );
            }
        }
    }
}
