//! The SMS status machine. Callbacks carry no sequence number and arrive in any order, so a
//! message only moves to a higher rank; a failure is final, and `read` follows only delivery.

/// Twilio `MessageStatus` values, plus callmesh's own states before Twilio has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsStatus {
    /// Recorded, not yet handed to Twilio.
    Pending,
    /// Twilio could not be reached: it was never sent.
    NotSent,
    /// The hand-over failed ambiguously: Twilio may have it. Never resent automatically.
    Unknown,
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Canceled,
    Read,
    Receiving,
    Received,
    PartiallyDelivered,
}

impl SmsStatus {
    pub const ALL: [SmsStatus; 16] = [
        SmsStatus::Pending,
        SmsStatus::NotSent,
        SmsStatus::Unknown,
        SmsStatus::Accepted,
        SmsStatus::Scheduled,
        SmsStatus::Queued,
        SmsStatus::Sending,
        SmsStatus::Sent,
        SmsStatus::Delivered,
        SmsStatus::Undelivered,
        SmsStatus::Failed,
        SmsStatus::Canceled,
        SmsStatus::Read,
        SmsStatus::Receiving,
        SmsStatus::Received,
        SmsStatus::PartiallyDelivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Pending => "pending",
            SmsStatus::NotSent => "not_sent",
            SmsStatus::Unknown => "unknown",
            SmsStatus::Accepted => "accepted",
            SmsStatus::Scheduled => "scheduled",
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Sent => "sent",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Undelivered => "undelivered",
            SmsStatus::Failed => "failed",
            SmsStatus::Canceled => "canceled",
            SmsStatus::Read => "read",
            SmsStatus::Receiving => "receiving",
            SmsStatus::Received => "received",
            SmsStatus::PartiallyDelivered => "partially_delivered",
        }
    }

    /// Twilio's name (or ours); `None` for a status nobody defined.
    pub fn parse(text: &str) -> Option<SmsStatus> {
        SmsStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn rank(self) -> u8 {
        match self {
            SmsStatus::Pending | SmsStatus::NotSent | SmsStatus::Unknown => 0,
            SmsStatus::Accepted | SmsStatus::Scheduled => 1,
            SmsStatus::Queued => 2,
            SmsStatus::Sending | SmsStatus::Receiving => 3,
            SmsStatus::Sent => 4,
            SmsStatus::Delivered
            | SmsStatus::Undelivered
            | SmsStatus::Failed
            | SmsStatus::Canceled
            | SmsStatus::Received
            | SmsStatus::PartiallyDelivered => 5,
            SmsStatus::Read => 6,
        }
    }

    /// How a message ends (delivered, undelivered, failed...); read comes after one of them.
    pub fn is_ending(self) -> bool {
        self.rank() == 5
    }

    /// Ended, or read after ending.
    pub fn has_ended(self) -> bool {
        self.rank() >= 5
    }

    /// Whether this ending, received first, takes the message over from `later`, a state it
    /// reached on a callback received after this one: two different endings, and the first
    /// received wins. A read stands for the delivery it implies.
    pub fn overtakes(self, later: SmsStatus) -> bool {
        let later = if later == SmsStatus::Read {
            SmsStatus::Delivered
        } else {
            later
        };
        self.is_ending() && later.is_ending() && later != self
    }

    pub fn is_failure(self) -> bool {
        matches!(self, SmsStatus::Undelivered | SmsStatus::Failed)
    }

    /// Whether a message in `self` moves to `next`.
    pub fn advances_to(self, next: SmsStatus) -> bool {
        match (self, next) {
            // Only a delivered message can be read.
            (SmsStatus::Delivered, SmsStatus::Read) => true,
            (_, SmsStatus::Read) => self.rank() < 5,
            // Terminal states are final: the first one wins.
            (current, _) if current.rank() >= 5 => false,
            (current, next) => next.rank() > current.rank(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permutations(items: &[SmsStatus]) -> Vec<Vec<SmsStatus>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first);
                all.push(tail);
            }
        }
        all
    }

    #[test]
    fn every_order_of_a_delivery_ends_read() {
        use SmsStatus::*;
        let sequence = [Accepted, Queued, Sending, Sent, Delivered, Read];
        let orders = permutations(&sequence);
        assert_eq!(orders.len(), 720);
        for order in orders {
            let mut state = Pending;
            for status in &order {
                if state.advances_to(*status) {
                    state = *status;
                }
            }
            assert_eq!(state, Read, "{order:?}");
        }
    }

    #[test]
    fn an_ending_received_first_overtakes_a_different_one_received_after_it() {
        use SmsStatus::*;
        assert!(Undelivered.overtakes(Delivered));
        assert!(
            Undelivered.overtakes(Read),
            "a read is the delivery it implies"
        );
        assert!(Delivered.overtakes(Failed));
        assert!(
            !Delivered.overtakes(Read),
            "a read after the delivery holds"
        );
        assert!(!Delivered.overtakes(Delivered));
        assert!(!Sent.overtakes(Delivered), "only an ending overtakes");
        assert!(!Failed.overtakes(Sent), "only an ending is overtaken");
    }

    #[test]
    fn failures_are_final_and_late_callbacks_change_nothing() {
        use SmsStatus::*;
        assert!(!Delivered.advances_to(Sent));
        assert!(!Failed.advances_to(Delivered));
        assert!(!Undelivered.advances_to(Read));
        assert!(
            !Delivered.advances_to(Undelivered),
            "the first terminal state wins"
        );
        assert!(Queued.advances_to(Failed));
        for status in SmsStatus::ALL {
            assert_eq!(SmsStatus::parse(status.as_str()), Some(status));
        }
    }
}
