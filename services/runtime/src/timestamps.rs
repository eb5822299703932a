//! Conversions between `chrono` and `google.protobuf.Timestamp`.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

pub fn to_proto(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        // Always below 1e9, so it fits.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn to_proto_opt(at: Option<DateTime<Utc>>) -> Option<Timestamp> {
    at.map(to_proto)
}

/// `None` for a missing or out-of-range timestamp.
pub fn from_proto(at: Option<Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let at = DateTime::from_timestamp(1_764_000_000, 123_000_000).expect("valid");
        assert_eq!(from_proto(Some(to_proto(at))), Some(at));
        assert_eq!(from_proto(None), None);
        let negative_nanos = Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(from_proto(Some(negative_nanos)), None);
    }
}
