//! Mesos' duration syntax, used in flags and in the environment an agent
//! gives an executor (`MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs`), and the
//! `*_seconds` doubles of the protos. Reference section 2.5; stout
//! `duration.hpp`.
//!
//! The text form is a decimal number followed at once by one unit of `ns`,
//! `us`, `ms`, `secs`, `mins`, `hrs`, `days` or `weeks`: no sign, no space.

use std::time::Duration;

/// Why a duration cannot be read. Not retryable: the text is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration '{0}': expected a number followed by one of ns, us, ms, secs, mins, hrs, days, weeks (e.g. 15secs)")]
pub struct DurationError(pub String);

/// The units, smallest first, with their length in nanoseconds.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("secs", 1_000_000_000),
    ("mins", 60_000_000_000),
    ("hrs", 3_600_000_000_000),
    ("days", 86_400_000_000_000),
    ("weeks", 604_800_000_000_000),
];

/// Parses a Mesos duration such as `15secs`, `2.5mins` or `500ms`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(err)?;
    let (number, unit) = text.split_at(split);
    let unit_ns = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, ns)| *ns)
        .ok_or_else(err)?;
    let value: f64 = number.parse().map_err(|_| err())?;
    let nanos = value * unit_ns as f64;
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err(err());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats a duration as Mesos prints it: the largest unit the value
/// reaches; one unit lower when the value is not whole in that unit but is
/// in the lower one (`2500ms`, `90secs`); else the larger unit with a
/// fraction (`1.025mins`).
pub fn format(duration: Duration) -> String {
    let ns = duration.as_nanos();
    let bucket = UNITS.iter().rposition(|(_, unit)| ns >= *unit).unwrap_or(0);
    let (name, unit) = UNITS[bucket];
    if ns % unit == 0 {
        return format!("{}{name}", ns / unit);
    }
    if bucket > 0 {
        let (lower_name, lower) = UNITS[bucket - 1];
        if ns % lower == 0 {
            return format!("{}{lower_name}", ns / lower);
        }
    }
    let value = ns as f64 / unit as f64;
    // 15 significant digits, as stout prints it, without trailing zeros.
    let digits = 15 - (value.abs().log10().floor() as i32 + 1);
    let text = format!("{value:.prec$}", prec = digits.max(0) as usize);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{name}")
}

/// A Mesos `*_seconds` double as a `Duration`; negative, NaN, infinite or
/// out-of-range values are `None`, so the caller applies its default.
pub fn from_seconds(seconds: f64) -> Option<Duration> {
    if seconds.is_finite() && seconds >= 0.0 {
        Duration::try_from_secs_f64(seconds).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_decimals() {
        for (text, want) in [
            ("15secs", Duration::from_secs(15)),
            ("100ms", Duration::from_millis(100)),
            ("1.5mins", Duration::from_secs(90)),
            ("2hrs", Duration::from_secs(7200)),
            ("1days", Duration::from_secs(86_400)),
            ("1weeks", Duration::from_secs(604_800)),
            ("7us", Duration::from_micros(7)),
            ("3ns", Duration::from_nanos(3)),
            ("0secs", Duration::ZERO),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_other_spellings() {
        for bad in [
            "15",
            "15s",
            "secs",
            "-1secs",
            "1 secs",
            "",
            "1.2.3secs",
            "1e3secs",
            "99999999999weeks",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_as_the_agent_prints_durations() {
        for (duration, want) in [
            (Duration::from_secs(5), "5secs"),
            (Duration::from_secs(2), "2secs"),
            (Duration::from_secs(15 * 60), "15mins"),
            (Duration::from_secs(60), "1mins"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(2500), "2500ms"),
            (Duration::from_secs(90), "90secs"),
            (Duration::from_secs(3 * 3600), "3hrs"),
            (Duration::from_secs(10 * 86_400), "10days"),
            (Duration::from_secs(21 * 43_200), "1.5weeks"),
            (Duration::from_millis(61_500), "1.025mins"),
            (Duration::ZERO, "0ns"),
        ] {
            assert_eq!(format(duration), want, "{duration:?}");
            assert_eq!(
                parse(want).map(|d| d.as_millis()),
                Ok(duration.as_millis()),
                "{want}"
            );
        }
    }

    #[test]
    fn seconds_outside_a_duration_are_none() {
        assert_eq!(from_seconds(1.5), Some(Duration::from_millis(1500)));
        assert_eq!(from_seconds(-1.0), None);
        assert_eq!(from_seconds(f64::NAN), None);
        assert_eq!(from_seconds(f64::INFINITY), None);
    }
}
