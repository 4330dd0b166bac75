//! Restart strategies: which siblings are restarted with a child that exited.

use std::ops::Range;
use xgate_messages::supervision::StrategyKind;

/// How a supervisor with a fixed list of children reacts when one of them has to be restarted
/// (OTP's `strategy` supervisor flag). For many children of one kind started on demand, see
/// [`DynamicSupervisor`](crate::DynamicSupervisor) (OTP `simple_one_for_one`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// OTP `one_for_one`: only the child that exited is restarted.
    OneForOne,
    /// OTP `one_for_all`: all other children are stopped (in reverse start order), then all are
    /// started again in order.
    OneForAll,
    /// OTP `rest_for_one`: the children started after the one that exited are stopped (in
    /// reverse order), then it and they are started again in order.
    RestForOne,
}

impl Strategy {
    /// The children, by start index, that are restarted when child `failed` of `len` has to be.
    pub(crate) fn affected(self, failed: usize, len: usize) -> Range<usize> {
        match self {
            Self::OneForOne => failed..failed + 1,
            Self::OneForAll => 0..len,
            Self::RestForOne => failed..len,
        }
    }

    /// The name shown in snapshots.
    pub fn kind(self) -> StrategyKind {
        match self {
            Self::OneForOne => StrategyKind::OneForOne,
            Self::OneForAll => StrategyKind::OneForAll,
            Self::RestForOne => StrategyKind::RestForOne,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affected_siblings() {
        assert_eq!(Strategy::OneForOne.affected(1, 4), 1..2);
        assert_eq!(Strategy::OneForAll.affected(1, 4), 0..4);
        assert_eq!(Strategy::RestForOne.affected(1, 4), 1..4);
        assert_eq!(Strategy::RestForOne.affected(3, 4), 3..4);
    }
}
