//! The one place that decides a connection's status. Every outcome that may move it (an
//! action call, a health check, a token refresh, a reconnect) is an [`Observation`], and
//! [`next_status`] maps the current status and the observation to the next one.
//!
//! The rules:
//! - `refresh_exhausted` and `expired` are *sticky*: only a successful refresh, a reconnect
//!   (new credentials) or a delete leaves them. A call or health check that still passes on
//!   a dying token does not make the connection healthy, and one that fails does not hide
//!   why it is dying.
//! - An action call moves the status only when it says something about the credentials: a
//!   success marks it `connected`, an auth failure marks it `error`; other failures (a
//!   timeout, a 5xx upstream) leave it alone.
//! - A health check marks it `connected` or `error`.
//! - A failed refresh that is the provider's fault (transient) does not count towards
//!   exhaustion, and only turns the connection `error` once its token has lapsed; a
//!   refused refresh counts, and the last allowed failure makes it `refresh_exhausted`.

pub use crate::store::ConnectionStatus;

/// Something that happened to a connection that may change its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// An action call succeeded.
    CallSucceeded,
    /// An action call failed because the upstream refused the credentials or account.
    CallAuthFailed,
    /// An action call failed for another reason (timeout, upstream outage, bad input).
    CallFailedOtherwise,
    /// test-connection passed.
    HealthPassed,
    /// test-connection failed, or the connection could not be resolved to run it.
    HealthFailed,
    /// New tokens were fetched and stored.
    RefreshSucceeded,
    /// A refresh failed.
    RefreshFailed {
        /// The provider was unavailable (not the account's fault).
        transient: bool,
        /// The access token has already expired.
        token_lapsed: bool,
        /// Consecutive counted failures including this one.
        failures: i64,
        /// Failures allowed before automatic refresh stops.
        max_failures: u32,
    },
    /// The access token lapsed and there is no way to refresh it.
    TokenExpired,
    /// New credentials were entered (reconnect, PATCH, completed OAuth flow).
    Reconnected,
    /// The connection was deliberately disconnected.
    Disconnected,
}

/// Whether only a refresh, a reconnect or a delete may leave `status`.
pub fn is_sticky(status: ConnectionStatus) -> bool {
    matches!(status, ConnectionStatus::RefreshExhausted | ConnectionStatus::Expired)
}

/// The status a connection in `current` moves to after `observation`. Equal to `current`
/// when the observation says nothing new.
pub fn next_status(current: ConnectionStatus, observation: Observation) -> ConnectionStatus {
    use ConnectionStatus as S;
    use Observation as O;
    match observation {
        O::Reconnected | O::RefreshSucceeded => S::Connected,
        O::Disconnected => S::Disconnected,
        O::TokenExpired => S::Expired,
        O::RefreshFailed {
            transient,
            token_lapsed,
            failures,
            max_failures,
        } => {
            if transient {
                if token_lapsed { S::Error } else { current }
            } else if failures >= i64::from(max_failures) {
                S::RefreshExhausted
            } else {
                S::Error
            }
        }
        _ if is_sticky(current) => current,
        O::CallSucceeded | O::HealthPassed => S::Connected,
        O::CallAuthFailed | O::HealthFailed => S::Error,
        O::CallFailedOtherwise => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionStatus as S;
    use Observation as O;

    const ALL: [ConnectionStatus; 5] = [S::Connected, S::Disconnected, S::Error, S::RefreshExhausted, S::Expired];

    fn refused(failures: i64) -> Observation {
        O::RefreshFailed {
            transient: false,
            token_lapsed: false,
            failures,
            max_failures: 3,
        }
    }

    #[test]
    fn calls_and_health_checks_move_only_non_sticky_statuses() {
        for current in ALL {
            let sticky = matches!(current, S::RefreshExhausted | S::Expired);
            for (observation, healthy_next) in [
                (O::CallSucceeded, S::Connected),
                (O::HealthPassed, S::Connected),
                (O::CallAuthFailed, S::Error),
                (O::HealthFailed, S::Error),
                (O::CallFailedOtherwise, current),
            ] {
                let expected = if sticky { current } else { healthy_next };
                assert_eq!(
                    next_status(current, observation),
                    expected,
                    "{current:?} after {observation:?}"
                );
            }
        }
    }

    #[test]
    fn reconnects_refreshes_and_deletes_leave_every_status() {
        for current in ALL {
            assert_eq!(next_status(current, O::Reconnected), S::Connected);
            assert_eq!(next_status(current, O::RefreshSucceeded), S::Connected);
            assert_eq!(next_status(current, O::Disconnected), S::Disconnected);
            assert_eq!(next_status(current, O::TokenExpired), S::Expired);
        }
    }

    #[test]
    fn refused_refreshes_count_towards_exhaustion() {
        assert_eq!(next_status(S::Connected, refused(1)), S::Error);
        assert_eq!(next_status(S::Error, refused(2)), S::Error);
        assert_eq!(next_status(S::Error, refused(3)), S::RefreshExhausted);
        // A forced refresh of an exhausted connection that fails again stays exhausted.
        assert_eq!(next_status(S::RefreshExhausted, refused(4)), S::RefreshExhausted);
    }

    #[test]
    fn provider_outages_only_matter_once_the_token_lapsed() {
        let outage = |token_lapsed| O::RefreshFailed {
            transient: true,
            token_lapsed,
            failures: 0,
            max_failures: 3,
        };
        for current in ALL {
            assert_eq!(next_status(current, outage(false)), current);
            assert_eq!(next_status(current, outage(true)), S::Error);
        }
    }
}
