//! What a message or shift-log text may contain, and the linked alarm id and tag reference.
//!
//! Why so strict: the text is shown on a panel and in browsers and exported to CSV; refusing
//! control characters (but newline) keeps terminal escapes, bidi tricks and NULs out of every one
//! of them, and the bounds keep one message from filling a screen or the database.

use crate::code::Code;

use super::MsgError;

/// Characters of a message at most.
pub const MAX_MESSAGE_CHARS: usize = 2_000;
/// Characters of a shift-log entry at most (a handover note is longer than a chat line).
pub const MAX_ENTRY_CHARS: usize = 4_000;
/// Length of an alarm id at most (ids are stored as given; the alarms module owns them).
pub const MAX_ALARM_CHARS: usize = 128;
/// Length of a tag reference (`<park>/<tag>`) at most.
pub const MAX_REF_CHARS: usize = 256;

/// Checks a text of 1..=`max` Unicode characters without control characters other than `\n`
/// (so also no `\r`, tab, or the bidi/format controls of category Cf).
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), MsgError> {
    if text.trim().is_empty() {
        return Err(MsgError::new(
            Code::Invalid,
            format!("{field} must not be empty"),
        ));
    }
    let n = text.chars().count();
    if n > max {
        return Err(MsgError::new(
            Code::Invalid,
            format!("{field} is {n} characters long, at most {max}"),
        ));
    }
    if let Some(c) = text.chars().find(|c| *c != '\n' && forbidden(*c)) {
        return Err(MsgError::new(
            Code::Invalid,
            format!(
                "{field} contains the control character U+{:04X}; only newlines are allowed",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// Control characters, plus the invisible format characters that reorder or hide text.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF)
}

/// An alarm id as linked from a message or entry: 1..=128 characters `A-Z a-z 0-9 _ - . : /`.
pub fn check_alarm(alarm: &str) -> Result<(), MsgError> {
    check_id("alarm", alarm, MAX_ALARM_CHARS)
}

/// A tag reference such as `eco_solar/Active_Power_kW`: the same character set, ≤ 256.
pub fn check_ref(reference: &str) -> Result<(), MsgError> {
    check_id("ref", reference, MAX_REF_CHARS)
}

fn check_id(field: &str, v: &str, max: usize) -> Result<(), MsgError> {
    let ok = !v.is_empty()
        && v.len() <= max
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '[' | ']')
        });
    if ok {
        Ok(())
    } else {
        Err(MsgError::new(
            Code::Invalid,
            format!("{field} must be 1-{max} characters A-Z, a-z, 0-9, '_', '-', '.', ':', '/', '[', ']'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bounds_and_control_characters() {
        assert!(check_text("text", "Pump 3 trips\nchecking", 2000).is_ok());
        assert!(check_text("text", "Zażółć gęślą jaźń ✓", 2000).is_ok());
        assert!(check_text("text", "", 2000).is_err());
        assert!(check_text("text", " \n ", 2000).is_err());
        assert!(check_text("text", &"é".repeat(2000), 2000).is_ok());
        assert!(check_text("text", &"é".repeat(2001), 2000).is_err());
        for bad in [
            "a\rb",
            "a\tb",
            "a\u{1b}[31mb",
            "a\u{0}b",
            "a\u{202e}b",
            "a\u{200b}b",
        ] {
            let e = check_text("text", bad, 2000).unwrap_err();
            assert_eq!(e.code, Code::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_a_plain_charset() {
        assert!(check_alarm("eco_solar/Inverter_Fault:3").is_ok());
        assert!(check_ref("eco_solar/Active_Power_kW").is_ok());
        assert!(check_alarm("").is_err());
        assert!(check_alarm("<script>").is_err());
        assert!(check_alarm(&"a".repeat(129)).is_err());
    }
}
