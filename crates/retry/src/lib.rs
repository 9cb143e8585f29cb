//! ratelab retry strategies (in progress).
