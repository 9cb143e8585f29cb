//! ratelab limiter model (in progress).
