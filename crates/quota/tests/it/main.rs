//! ratelab-quota integration tests.
