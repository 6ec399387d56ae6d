//! Cron schedules for workflow schedule triggers.
//!
//! A schedule trigger is `{"type":"schedule","cron":"0 9 * * MON-FRI","timezone":"Europe/Berlin",
//! "missed":"skip"}`. [`CronSchedule::parse`] reads the 5-field expression (or an `@daily`-style
//! alias) in an IANA time zone, [`CronSchedule::next_after`] gives the next tick as unix
//! milliseconds, and [`plan`] decides what a due schedule does now: fire its tick, or apply the
//! [`Missed`] policy after an outage.
//!
//! Matching is done by the `croner` crate on the wall clock of the zone (`chrono-tz`), so
//! `0 9 * * *` in `Europe/Berlin` is 08:00 UTC in winter and 07:00 UTC in summer. Around
//! daylight-saving changes:
//! - a wall-clock time skipped by the spring-forward jump (`30 2 * * *` on the last Sunday of
//!   March in Berlin) is resolved by croner to the first valid instant after the gap, that same
//!   day;
//! - a wall-clock time repeated at fall-back is taken at croner's choice of instant; whatever
//!   croner answers, [`CronSchedule::next_after`] only ever returns an instant strictly after
//!   the one it was given, so ticks never go backwards and a schedule never fires twice for one
//!   instant.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How late (ms) a tick may be and still fire as on time: a node was merely busy.
pub const GRACE_MS: i64 = 60_000;

/// Most ticks walked forward when looking for the latest missed tick ([`Missed::RunOnce`]).
const MAX_WALK: usize = 100_000;

/// Most searches [`CronSchedule::next_after`] makes when croner answers an instant that is not
/// after the one asked about (a repeated wall-clock time at a DST fall-back).
const MAX_RETRIES: usize = 180;

/// 2000-01-01T00:00:00Z: an expression with no tick after this never fires (the fields repeat
/// with the calendar).
const PROBE_FROM_MS: i64 = 946_684_800_000;

/// Why a schedule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression is empty.
    #[error(
        "the cron expression is empty: give 5 fields (minute hour day-of-month month day-of-week) \
         or an alias such as @daily"
    )]
    Empty,
    /// A 6- or 7-field expression (seconds, year): refused, the resolution is one minute.
    #[error(
        "`{expr}` has {found} fields, but seconds (and year) fields are not accepted: the \
         schedule's resolution is one minute; give 5 fields (minute hour day-of-month month \
         day-of-week)"
    )]
    Seconds {
        /// The expression as given.
        expr: String,
        /// How many fields it has.
        found: usize,
    },
    /// Neither 5 fields nor a single alias.
    #[error(
        "`{expr}` has {found} field(s): give 5 (minute hour day-of-month month day-of-week), or \
         one of @hourly @daily @weekly @monthly @yearly"
    )]
    FieldCount {
        /// The expression as given.
        expr: String,
        /// How many fields it has.
        found: usize,
    },
    /// An `@…` alias that is not known.
    #[error(
        "unknown cron alias `{alias}`: use @hourly, @daily (@midnight), @weekly, @monthly or \
         @yearly (@annually)"
    )]
    UnknownAlias {
        /// The alias as given.
        alias: String,
    },
    /// croner refused the expression (a value out of range, an unknown name, bad syntax).
    #[error("invalid cron expression `{expr}`: {reason}")]
    Expression {
        /// The expression as given.
        expr: String,
        /// croner's own reason.
        reason: String,
    },
    /// The expression is well formed but matches no date (`0 0 30 2 *`).
    #[error("the cron expression `{expr}` never fires: no date matches it")]
    NeverFires {
        /// The expression as given.
        expr: String,
    },
    /// The time zone is not an IANA name.
    #[error("unknown time zone `{name}`: use an IANA name such as `Europe/Berlin` or `UTC`")]
    Zone {
        /// The zone as given.
        name: String,
    },
}

/// A parsed cron expression in an IANA time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
    expr: String,
    zone: String,
}

impl CronSchedule {
    /// Parse a 5-field cron expression (minute hour day-of-month month day-of-week; names like
    /// `MON`, `JAN` and croner's `L`, `W`, `#` are allowed), or one of the aliases `@hourly`,
    /// `@daily` (`@midnight`), `@weekly` (Sunday 00:00), `@monthly`, `@yearly` (`@annually`),
    /// in the time zone `tz` (an IANA name; the `UTC` default is the caller's). A 6- or 7-field
    /// expression (seconds, year) is refused: the schedule's resolution is one minute. An
    /// expression that matches no date at all (`0 0 30 2 *`) is refused too.
    pub fn parse(expr: &str, tz: &str) -> Result<Self, CronError> {
        let trimmed = expr.trim();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let pattern = match fields.as_slice() {
            [] => return Err(CronError::Empty),
            [alias] if alias.starts_with('@') => alias_pattern(alias)
                .ok_or_else(|| CronError::UnknownAlias {
                    alias: (*alias).to_string(),
                })?
                .to_string(),
            [_, _, _, _, _] => fields.join(" "),
            more if more.len() == 6 || more.len() == 7 => {
                return Err(CronError::Seconds {
                    expr: trimmed.to_string(),
                    found: more.len(),
                });
            }
            other => {
                return Err(CronError::FieldCount {
                    expr: trimmed.to_string(),
                    found: other.len(),
                });
            }
        };
        let cron = Cron::from_str(&pattern).map_err(|e| CronError::Expression {
            expr: trimmed.to_string(),
            reason: e.to_string(),
        })?;
        let zone = Tz::from_str(tz).map_err(|_| CronError::Zone { name: tz.to_string() })?;
        let schedule = Self {
            cron,
            tz: zone,
            expr: trimmed.to_string(),
            zone: tz.to_string(),
        };
        if schedule.next_after(PROBE_FROM_MS).is_none() {
            return Err(CronError::NeverFires {
                expr: trimmed.to_string(),
            });
        }
        Ok(schedule)
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The IANA time zone name as given.
    pub fn timezone(&self) -> &str {
        &self.zone
    }

    /// The first tick strictly after `after_ms` (unix ms), as unix ms; `None` if the expression
    /// never fires again (or the search fails).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Ticks fall on whole minutes, so searching from the whole second at or before
        // `after_ms` (croner starts one second later) finds exactly the ticks after it; it also
        // keeps sub-second parts out of croner's arithmetic.
        let mut from_s = after_ms.div_euclid(1000);
        for _ in 0..MAX_RETRIES {
            let from = DateTime::<Utc>::from_timestamp(from_s, 0)?.with_timezone(&self.tz);
            let found = self.cron.find_next_occurrence(&from, false).ok()?;
            let ms = found.timestamp_millis();
            if ms > after_ms {
                return Some(ms);
            }
            // A repeated wall-clock time (DST fall-back) resolved to its earlier instant, which
            // is not after `after_ms`: take its later instant if that one is.
            if let Some(later) = self.tz.from_local_datetime(&found.naive_local()).latest() {
                let later_ms = later.timestamp_millis();
                if later_ms > after_ms {
                    return Some(later_ms);
                }
            }
            from_s = from_s.checked_add(60)?;
        }
        None
    }

    /// The latest tick in `(due_ms, now_ms]`, or `due_ms` when there is none; `due_ms <= now_ms`.
    ///
    /// Looks back from `now_ms` over a window that doubles (one minute, two, four, …) until it
    /// holds a tick or reaches `due_ms`, then walks forward tick by tick (at most [`MAX_WALK`]
    /// ticks), so a long outage costs a few dozen searches rather than one per missed tick.
    fn latest_at_or_before(&self, due_ms: i64, now_ms: i64) -> i64 {
        let mut window: i64 = 60_000;
        loop {
            let start = now_ms.saturating_sub(window);
            if start <= due_ms {
                return self.walk(due_ms, now_ms);
            }
            match self.next_after(start) {
                Some(tick) if tick <= now_ms => return self.walk(tick, now_ms),
                _ => window = window.saturating_mul(2),
            }
        }
    }

    /// From `tick` (<= `now_ms`), the last tick <= `now_ms` reached in at most [`MAX_WALK`] steps.
    fn walk(&self, mut tick: i64, now_ms: i64) -> i64 {
        for _ in 0..MAX_WALK {
            match self.next_after(tick) {
                Some(next) if next <= now_ms => tick = next,
                _ => break,
            }
        }
        tick
    }
}

/// The 5-field expression an `@…` alias stands for (case-insensitive).
fn alias_pattern(alias: &str) -> Option<&'static str> {
    Some(match alias.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// What to do with ticks missed while no node was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Start nothing for missed ticks; carry on from the next tick.
    #[default]
    Skip,
    /// Start one execution for the latest missed tick, however many were missed.
    RunOnce,
}

/// What a due schedule should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// The tick to start an execution for, if any.
    pub tick_ms: Option<i64>,
    /// The schedule's next tick after this one; `None` if it never fires again.
    pub next_ms: Option<i64>,
}

/// Decide, at `now_ms`, for a schedule whose stored next tick `due_ms` is <= now.
///
/// A tick late by at most [`GRACE_MS`] always fires (a node was merely busy). A tick later than
/// that was missed: [`Missed::Skip`] starts nothing, [`Missed::RunOnce`] starts one execution
/// for the latest missed tick, that is the latest tick in `[due_ms, now_ms]` (found without
/// visiting every missed tick; after more than 100 000 missed ticks in the final look-back
/// window it may be an earlier one). Either way `next_ms` is the first tick strictly after
/// `now_ms`, so a long outage never produces a burst.
///
/// If `due_ms` is still in the future, nothing fires and `next_ms` stays `due_ms`.
pub fn plan(schedule: &CronSchedule, due_ms: i64, now_ms: i64, missed: Missed) -> Firing {
    if due_ms > now_ms {
        return Firing {
            tick_ms: None,
            next_ms: Some(due_ms),
        };
    }
    let late = now_ms.saturating_sub(due_ms);
    let tick_ms = if late <= GRACE_MS {
        Some(due_ms)
    } else {
        match missed {
            Missed::Skip => None,
            Missed::RunOnce => Some(schedule.latest_at_or_before(due_ms, now_ms)),
        }
    };
    Firing {
        tick_ms,
        next_ms: schedule.next_after(now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC wall-clock time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("a valid UTC time")
            .timestamp_millis()
    }

    fn schedule(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expr, tz).expect("a valid schedule")
    }

    #[test]
    fn every_minute_next_tick_is_strictly_after() {
        let s = schedule("* * * * *", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 1, 9, 10, 0, 30)),
            Some(utc(2026, 1, 9, 10, 1, 0))
        );
        // Exactly on a tick: the next one, not the same.
        assert_eq!(s.next_after(utc(2026, 1, 9, 10, 0, 0)), Some(utc(2026, 1, 9, 10, 1, 0)));
        // Sub-second parts are handled.
        assert_eq!(
            s.next_after(utc(2026, 1, 9, 10, 0, 0) + 500),
            Some(utc(2026, 1, 9, 10, 1, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 1, 9, 10, 0, 59) + 999),
            Some(utc(2026, 1, 9, 10, 1, 0))
        );
    }

    #[test]
    fn weekdays_in_berlin_skip_the_weekend() {
        // Friday 2026-01-09 10:00 UTC (11:00 CET) → Monday 2026-01-12 09:00 CET = 08:00 UTC.
        let s = schedule("0 9 * * MON-FRI", "Europe/Berlin");
        assert_eq!(s.next_after(utc(2026, 1, 9, 10, 0, 0)), Some(utc(2026, 1, 12, 8, 0, 0)));
        // Lower-case names too.
        let s = schedule("0 9 * * mon-fri", "Europe/Berlin");
        assert_eq!(s.next_after(utc(2026, 1, 9, 10, 0, 0)), Some(utc(2026, 1, 12, 8, 0, 0)));
    }

    #[test]
    fn spring_forward_gap_still_fires_after_the_instant_given() {
        // 2026-03-29 is the spring-forward day in Berlin: 02:00 CET jumps to 03:00 CEST, so
        // 02:30 does not exist that day. croner resolves it to an instant after the gap; all
        // this asserts is that the answer is that day or the next, and strictly after `after`.
        let s = schedule("30 2 * * *", "Europe/Berlin");
        let after = utc(2026, 3, 28, 2, 0, 0);
        let next = s.next_after(after).expect("a next tick");
        assert!(next > after);
        assert!(next >= utc(2026, 3, 29, 0, 0, 0), "{next}");
        assert!(next < utc(2026, 3, 31, 0, 0, 0), "{next}");
        // And the schedule carries on to the day after.
        let then = s.next_after(next).expect("a tick after that");
        assert!(then > next);
        assert!(then <= utc(2026, 3, 31, 0, 30, 0), "{then}");
    }

    #[test]
    fn fall_back_ticks_only_move_forward() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET in Berlin (01:00 UTC).
        let s = schedule("*/30 * * * *", "Europe/Berlin");
        let mut at = utc(2026, 10, 24, 23, 0, 0);
        for _ in 0..12 {
            let next = s.next_after(at).expect("a next tick");
            assert!(next > at, "{next} after {at}");
            assert!(next - at <= 2 * 3_600_000, "{next} after {at}");
            assert_eq!(next % 1_800_000, 0, "on a half hour: {next}");
            at = next;
        }
        assert!(at > utc(2026, 10, 25, 2, 0, 0));
    }

    #[test]
    fn aliases() {
        let after = utc(2026, 1, 9, 10, 0, 0); // a Friday
        assert_eq!(
            schedule("@hourly", "UTC").next_after(after),
            Some(utc(2026, 1, 9, 11, 0, 0))
        );
        assert_eq!(
            schedule("@daily", "UTC").next_after(after),
            Some(utc(2026, 1, 10, 0, 0, 0))
        );
        assert_eq!(
            schedule("@weekly", "UTC").next_after(after),
            Some(utc(2026, 1, 11, 0, 0, 0))
        );
        assert_eq!(
            schedule("@monthly", "UTC").next_after(after),
            Some(utc(2026, 2, 1, 0, 0, 0))
        );
        assert_eq!(
            schedule("@YEARLY", "UTC").next_after(after),
            Some(utc(2027, 1, 1, 0, 0, 0))
        );
        let err = CronSchedule::parse("@reboot", "UTC").expect_err("unknown alias");
        assert!(matches!(err, CronError::UnknownAlias { .. }), "{err}");
        assert!(err.to_string().contains("@reboot"), "{err}");
    }

    #[test]
    fn bad_expression_names_it() {
        for expr in ["0 25 * * *", "61 * * * *", "0 9 * * FUNDAY", "x * * * *"] {
            let err = CronSchedule::parse(expr, "UTC").expect_err(expr);
            assert!(matches!(err, CronError::Expression { .. }), "{expr}: {err}");
            assert!(err.to_string().contains(expr), "{err}");
        }
        let err = CronSchedule::parse("0 9 * *", "UTC").expect_err("4 fields");
        assert_eq!(
            err,
            CronError::FieldCount {
                expr: "0 9 * *".into(),
                found: 4
            }
        );
        assert!(err.to_string().contains("0 9 * *"), "{err}");
        assert_eq!(CronSchedule::parse("  ", "UTC").expect_err("empty"), CronError::Empty);
    }

    #[test]
    fn bad_zone_names_it() {
        let err = CronSchedule::parse("0 9 * * *", "Mars/Olympus_Mons").expect_err("bad zone");
        assert_eq!(
            err,
            CronError::Zone {
                name: "Mars/Olympus_Mons".into()
            }
        );
        assert!(err.to_string().contains("Mars/Olympus_Mons"), "{err}");
        assert!(CronSchedule::parse("0 9 * * *", "").is_err());
        assert!(CronSchedule::parse("0 9 * * *", "UTC").is_ok());
    }

    #[test]
    fn seconds_fields_are_refused() {
        for expr in ["0 0 9 * * *", "0 0 9 * * * 2026"] {
            let err = CronSchedule::parse(expr, "UTC").expect_err(expr);
            assert!(matches!(err, CronError::Seconds { .. }), "{expr}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("one minute"), "{msg}");
            assert!(msg.contains(expr), "{msg}");
        }
    }

    #[test]
    fn never_firing_expression_is_refused() {
        let err = CronSchedule::parse("0 0 30 2 *", "UTC").expect_err("February 30");
        assert!(matches!(err, CronError::NeverFires { .. }), "{err}");
        // February 29 does fire (leap years).
        assert!(CronSchedule::parse("0 0 29 2 *", "UTC").is_ok());
    }

    #[test]
    fn plan_on_time_fires() {
        let s = schedule("0 * * * *", "UTC");
        let due = utc(2026, 1, 9, 10, 0, 0);
        for missed in [Missed::Skip, Missed::RunOnce] {
            assert_eq!(
                plan(&s, due, due, missed),
                Firing {
                    tick_ms: Some(due),
                    next_ms: Some(utc(2026, 1, 9, 11, 0, 0))
                }
            );
        }
    }

    #[test]
    fn plan_slightly_late_fires() {
        let s = schedule("0 * * * *", "UTC");
        let due = utc(2026, 1, 9, 10, 0, 0);
        for late in [30_000, GRACE_MS] {
            assert_eq!(
                plan(&s, due, due + late, Missed::Skip),
                Firing {
                    tick_ms: Some(due),
                    next_ms: Some(utc(2026, 1, 9, 11, 0, 0))
                }
            );
        }
    }

    #[test]
    fn plan_missed_skip_starts_nothing() {
        let s = schedule("0 * * * *", "UTC");
        let due = utc(2026, 1, 9, 10, 0, 0);
        let now = utc(2026, 1, 9, 12, 30, 0);
        let firing = plan(&s, due, now, Missed::Skip);
        assert_eq!(firing.tick_ms, None);
        assert_eq!(firing.next_ms, Some(utc(2026, 1, 9, 13, 0, 0)));
        assert!(firing.next_ms.is_some_and(|n| n > now));
    }

    #[test]
    fn plan_missed_run_once_fires_the_latest_tick_once() {
        let s = schedule("0 * * * *", "UTC");
        let due = utc(2026, 1, 9, 10, 0, 0);
        let now = utc(2026, 1, 9, 12, 30, 0);
        let firing = plan(&s, due, now, Missed::RunOnce);
        assert_eq!(firing.tick_ms, Some(utc(2026, 1, 9, 12, 0, 0)));
        assert_eq!(firing.next_ms, Some(utc(2026, 1, 9, 13, 0, 0)));
        assert!(firing.next_ms.is_some_and(|n| n > now));
        // Exactly on a tick: that tick is the latest; the next is after now.
        let now = utc(2026, 1, 9, 12, 0, 0);
        let firing = plan(&s, due, now, Missed::RunOnce);
        assert_eq!(firing.tick_ms, Some(now));
        assert_eq!(firing.next_ms, Some(utc(2026, 1, 9, 13, 0, 0)));
    }

    #[test]
    fn plan_run_once_after_a_long_outage_is_cheap_and_right() {
        // Every minute, down for 400 days: the latest tick is the minute at or before now.
        let s = schedule("* * * * *", "UTC");
        let due = utc(2025, 1, 1, 0, 0, 0);
        let now = utc(2026, 2, 5, 7, 8, 9);
        let firing = plan(&s, due, now, Missed::RunOnce);
        assert_eq!(firing.tick_ms, Some(utc(2026, 2, 5, 7, 8, 0)));
        assert_eq!(firing.next_ms, Some(utc(2026, 2, 5, 7, 9, 0)));
        // Weekdays at 09:00 Berlin, down over a weekend: Friday's tick is the latest.
        let s = schedule("0 9 * * MON-FRI", "Europe/Berlin");
        let due = utc(2026, 1, 5, 8, 0, 0); // Monday
        let now = utc(2026, 1, 11, 12, 0, 0); // Sunday
        let firing = plan(&s, due, now, Missed::RunOnce);
        assert_eq!(firing.tick_ms, Some(utc(2026, 1, 9, 8, 0, 0)));
        assert_eq!(firing.next_ms, Some(utc(2026, 1, 12, 8, 0, 0)));
    }

    #[test]
    fn plan_not_yet_due_changes_nothing() {
        let s = schedule("0 * * * *", "UTC");
        let due = utc(2026, 1, 9, 11, 0, 0);
        let now = utc(2026, 1, 9, 10, 59, 0);
        assert_eq!(
            plan(&s, due, now, Missed::RunOnce),
            Firing {
                tick_ms: None,
                next_ms: Some(due)
            }
        );
    }

    #[test]
    fn missed_serde_is_snake_case() {
        assert_eq!(serde_json::to_string(&Missed::RunOnce).expect("json"), "\"run_once\"");
        assert_eq!(serde_json::from_str::<Missed>("\"skip\"").expect("json"), Missed::Skip);
        assert_eq!(Missed::default(), Missed::Skip);
    }
}
