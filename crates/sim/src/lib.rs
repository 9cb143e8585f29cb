//! ratelab discrete-event simulator (in progress).
