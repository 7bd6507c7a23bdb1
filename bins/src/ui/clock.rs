//! Times as the UI shows them: the local time of day, `HH:MM`.
//!
//! The state never reads a clock (its frames must be reproducible): the
//! driver stamps each event with [`now`] as it arrives, and scrollback
//! turns the transcript's UTC stamps into local ones with [`local`].

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The local time of day now.
pub fn now() -> String {
    jiff::ZonedDateTime::now().strftime("%H:%M").to_string()
}

/// The local day now, `YYYY-MM-DD`: the driver tells the state when it
/// changes, so a chat going on past midnight shows the new day.
pub fn today() -> String {
    jiff::ZonedDateTime::now().strftime("%Y-%m-%d").to_string()
}

/// A transcript's RFC 3339 stamp in `zone`: its day (`YYYY-MM-DD`) and its
/// time of day (`HH:MM`); `None` if it is no timestamp.
pub fn local(rfc3339: &str, zone: &TimeZone) -> Option<(String, String)> {
    let at = rfc3339
        .parse::<Timestamp>()
        .ok()?
        .to_zoned_datetime(zone.clone());
    Some((
        at.strftime("%Y-%m-%d").to_string(),
        at.strftime("%H:%M").to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utc_transcript_stamp_is_shown_in_the_local_zone() {
        let paris =
            TimeZone::get("Europe/Paris").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(1)));
        assert_eq!(
            local("2026-01-05T23:30:00.000Z", &paris),
            Some(("2026-01-06".into(), "00:30".into()))
        );
        assert_eq!(local("not a time", &TimeZone::UTC), None);
    }
}
