use std::fmt;
use std::str::FromStr;

use crate::InvalidValue;

/// A phone number in E.164 form (`+8613812345678`).
///
/// Input may contain spaces, dashes, dots and parentheses. Numbers without a
/// country code are taken as Chinese: an 11-digit mobile (`13812345678`), a
/// landline with its trunk `0` (`010-12345678` → `+861012345678`) or a
/// 400/800 service number. `0086…` and `86…` prefixes are accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the first three and last four digits hidden,
    /// for anything sent beyond the handling department (`138****5678`).
    pub fn masked(&self) -> String {
        let national = self.0.strip_prefix("+86").unwrap_or(&self.0);
        let n = national.chars().count();
        if n <= 7 {
            return "*".repeat(n);
        }
        let head: String = national.chars().take(3).collect();
        let tail: String = national.chars().skip(n - 4).collect();
        format!("{head}{}{tail}", "*".repeat(n - 7))
    }
}

fn is_cn_mobile(d: &str) -> bool {
    d.len() == 11 && d.starts_with('1') && matches!(d.as_bytes()[1], b'3'..=b'9')
}

impl FromStr for PhoneNumber {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidValue::new("phone", format!("{s:?}: {why}"));
        let trimmed = s.trim();
        let plus = trimmed.starts_with('+');
        let mut digits = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(bad(
                        "only digits, spaces, dashes, dots, parentheses and a leading + are allowed",
                    ));
                }
            }
        }
        if digits.is_empty() {
            return Err(bad("no digits"));
        }
        let e164 = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("0086") {
            format!("86{rest}")
        } else if is_cn_mobile(&digits) {
            format!("86{digits}")
        } else if digits.starts_with("86") && is_cn_mobile(&digits[2..]) {
            digits
        } else if let Some(rest) = digits.strip_prefix('0') {
            if !(10..=12).contains(&digits.len()) {
                return Err(bad("not a Chinese landline number"));
            }
            format!("86{rest}")
        } else if digits.len() == 10 && (digits.starts_with("400") || digits.starts_with("800")) {
            format!("86{digits}")
        } else {
            return Err(bad("give the country code (+…) for numbers outside China"));
        };
        if e164.starts_with('0') {
            return Err(bad("a country code never starts with 0"));
        }
        if !(8..=15).contains(&e164.len()) {
            return Err(bad("E.164 numbers have 8 to 15 digits"));
        }
        if let Some(national) = e164.strip_prefix("86")
            && national.starts_with('1')
            && !national.starts_with("10") // Beijing landlines
            && !is_cn_mobile(national)
        {
            return Err(bad("a Chinese mobile number has 11 digits starting 13–19"));
        }
        Ok(Self(format!("+{e164}")))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, lower-cased so that the same person links across
/// channels. Checked for shape (one `@`, a dotted domain of valid labels),
/// not for deliverability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidValue::new("email", format!("{s:?}: {why}"));
        let addr = s.trim().to_lowercase();
        if addr.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        let (local, domain) = addr.rsplit_once('@').ok_or_else(|| bad("missing @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("the part before @ must have 1 to 64 characters"));
        }
        if local.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
        {
            return Err(bad("the part before @ has characters not allowed there"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(bad("the domain needs a dot"));
        }
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if !labels.iter().all(label_ok) {
            return Err(bad("the domain is not valid"));
        }
        Ok(Self(addr))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(s: &str) -> String {
        s.parse::<PhoneNumber>().unwrap().to_string()
    }

    #[test]
    fn chinese_numbers_without_country_code_get_plus_86() {
        assert_eq!(e164("13812345678"), "+8613812345678");
        assert_eq!(e164("138 1234 5678"), "+8613812345678");
        assert_eq!(e164("138-1234-5678"), "+8613812345678");
        assert_eq!(e164("8613812345678"), "+8613812345678");
        assert_eq!(e164("008613812345678"), "+8613812345678");
        assert_eq!(e164("010-12345678"), "+861012345678");
        assert_eq!(e164("(0755) 8765 4321"), "+8675587654321");
        assert_eq!(e164("4008123123"), "+864008123123");
    }

    #[test]
    fn international_numbers_keep_their_code() {
        assert_eq!(e164("+86 138 1234 5678"), "+8613812345678");
        assert_eq!(e164("+44 20 7946 0958"), "+442079460958");
        assert_eq!(e164("+1 (415) 555-2671"), "+14155552671");
    }

    #[test]
    fn rejects_malformed_numbers() {
        for bad in [
            "",
            "   ",
            "abc",
            "1381234567",   // 10 digits, not a mobile
            "138123456789", // 12 digits
            "12812345678",  // 12x is not a mobile prefix
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "138 1234 5678 ext 9",
            "+86 1381234567",
            "1+3812345678",
            "5551234",
        ] {
            assert!(
                bad.parse::<PhoneNumber>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn masks_middle_digits() {
        let p: PhoneNumber = "13812345678".parse().unwrap();
        assert_eq!(p.masked(), "138****5678");
        let p: PhoneNumber = "+442079460958".parse().unwrap();
        assert_eq!(p.masked(), "+44******0958");
    }

    #[test]
    fn email_is_lower_cased_and_checked() {
        let e: Email = "  Zhang.San@Example.COM ".parse().unwrap();
        assert_eq!(e.as_str(), "zhang.san@example.com");
        assert!("用户@例子.中国".parse::<Email>().is_ok());
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            ".a@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b..com",
            "a@b.com.",
            "<a@b.com>",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad:?} should be rejected");
        }
    }
}
