//! The table of built-in strategies: names, parameters with defaults, sources and factories.

use crate::official::{OfficialClient, OfficialClientKind};
use crate::registry::{Factory, ParamInfo, ParamKind, StrategyFactory, StrategyInfo};
use crate::{
    AwsAdaptive, AwsRetryQuota, Backoff, BackoffStrategy, CircuitBreaker, FinagleBudget,
    GrpcThrottle, HeaderPacing, HonourRetryAfter, LocalTokenBucket, Retryable, SreAdaptiveThrottle,
    Stacked,
};

use ParamKind::{Bool, Duration, Float, Integer, Strategy};

const AWS_BLOG: &str = "Marc Brooker, \"Exponential Backoff And Jitter\", AWS Architecture Blog \
                        (2015); base and cap defaults are ratelab's, the cap matching the AWS \
                        SDKs' 20 s max backoff";
const GENERIC_ATTEMPTS: &str = "cap: attempts per logical request, the first included (ratelab's default: the source sets none)";

fn info(name: &str, summary: &str, source: &str, params: Vec<ParamInfo>) -> StrategyInfo {
    StrategyInfo {
        name: name.to_owned(),
        summary: summary.to_owned(),
        source: source.to_owned(),
        params,
    }
}

fn inner_param() -> ParamInfo {
    ParamInfo::required("inner", Strategy, "the strategy this one wraps")
}

fn backoff_kind(
    name: &str,
    summary: &str,
    source: &str,
    mut params: Vec<ParamInfo>,
    build: fn(&crate::Params<'_>) -> Result<Backoff, crate::SpecError>,
) -> (StrategyInfo, Factory) {
    params.push(ParamInfo::new(
        "max-attempts",
        Integer,
        "5",
        GENERIC_ATTEMPTS,
    ));
    let factory = Factory::Backoff(Box::new(move |params| {
        Ok(BackoffStrategy::new(build(params)?, Retryable::Transient))
    }));
    (info(name, summary, source, params), factory)
}

fn base_and_cap() -> Vec<ParamInfo> {
    vec![
        ParamInfo::new("base", Duration, "100ms", "the first delay's scale"),
        ParamInfo::new("cap", Duration, "20s", "the largest delay"),
    ]
}

fn official(
    name: &str,
    summary: &str,
    kind: OfficialClientKind,
    default_retries: &str,
) -> (StrategyInfo, Factory) {
    let source = match kind {
        OfficialClientKind::AsyncOpenAi0_36 => {
            "async-openai 0.36 src/client.rs execute_raw with the backoff crate's \
             ExponentialBackoff defaults; docs/official-clients.md, async-openai"
        }
        OfficialClientKind::AsyncOpenAi0_37 => {
            "async-openai 0.37 src/middleware/retry/openai.rs OpenAIRetryLayer; \
             docs/official-clients.md, async-openai"
        }
        OfficialClientKind::OpenAiNode4
        | OfficialClientKind::OpenAiNode6_26
        | OfficialClientKind::OpenAiNode7_5 => {
            "openai-node src/core.ts (4.x), src/client.ts (6.x, 7.x) shouldRetry/retryRequest; \
             docs/official-clients.md, openai-node"
        }
        _ => {
            "openai-python src/openai/_base_client.py _should_retry/_calculate_retry_timeout; \
             docs/official-clients.md, openai-python"
        }
    };
    let retries_doc = if kind == OfficialClientKind::AsyncOpenAi0_36 {
        "retries after the first attempt (none: stops at 15 min elapsed instead)"
    } else {
        "the SDK's max_retries: retries after the first attempt"
    };
    let retries = if default_retries.is_empty() {
        ParamInfo::optional("max-retries", Integer, retries_doc)
    } else {
        ParamInfo::new("max-retries", Integer, default_retries, retries_doc)
    };
    let factory: StrategyFactory = Box::new(move |params, _| {
        let mut client = OfficialClient::new(kind);
        if let Some(max_retries) = params.optional_integer("max-retries")? {
            client = client.with_max_retries(u32::try_from(max_retries).unwrap_or(u32::MAX));
        }
        Ok(Box::new(client))
    });
    (info(name, summary, source, vec![retries]), factory.into())
}

/// Every built-in, in the order `ratelab strategies` lists them (the registry sorts by name).
pub(crate) fn builtins() -> Vec<(StrategyInfo, Factory)> {
    let mut all = vec![
        (
            info(
                "none",
                "no retries: the first failure is final",
                "ratelab baseline",
                vec![],
            ),
            Factory::Backoff(Box::new(|_| {
                Ok(BackoffStrategy::new(Backoff::Never, Retryable::Transient))
            })),
        ),
        backoff_kind(
            "fixed",
            "the same delay before every retry of a transient failure",
            "textbook constant backoff; the 1 s default is ratelab's",
            vec![ParamInfo::new("delay", Duration, "1s", "the delay")],
            |params| {
                Ok(Backoff::Fixed {
                    delay: params.duration("delay")?,
                })
            },
        ),
        backoff_kind(
            "exponential",
            "min(cap, base x factor^n), no jitter",
            AWS_BLOG,
            {
                let mut params = base_and_cap();
                params.push(ParamInfo::new("factor", Float, "2", "growth per retry"));
                params
            },
            |params| {
                Ok(Backoff::Exponential {
                    base: params.duration("base")?,
                    factor: params.float("factor")?,
                    cap: params.duration("cap")?,
                })
            },
        ),
        backoff_kind(
            "full-jitter",
            "U(0, min(cap, base x 2^n))",
            AWS_BLOG,
            base_and_cap(),
            |params| {
                Ok(Backoff::FullJitter {
                    base: params.duration("base")?,
                    cap: params.duration("cap")?,
                })
            },
        ),
        backoff_kind(
            "equal-jitter",
            "t = min(cap, base x 2^n); t/2 + U(0, t/2)",
            AWS_BLOG,
            base_and_cap(),
            |params| {
                Ok(Backoff::EqualJitter {
                    base: params.duration("base")?,
                    cap: params.duration("cap")?,
                })
            },
        ),
        backoff_kind(
            "decorrelated-jitter",
            "min(cap, U(base, previous x 3)), previous starting at base",
            AWS_BLOG,
            base_and_cap(),
            |params| {
                Ok(Backoff::DecorrelatedJitter {
                    base: params.duration("base")?,
                    cap: params.duration("cap")?,
                })
            },
        ),
    ];
    let polly = backoff_kind(
        "polly-decorrelated-jitter-v2",
        "Polly v8 exponential + jitter: (2^t tanh(sqrt(4t)) - prev) / 1.4 x base, t = n + U(0,1)",
        "Polly v8 RetryHelper.DecorrelatedJitterBackoffV2 (formula by George Polevoy); Polly \
         defaults: Delay 2 s, MaxRetryAttempts 3, no MaxDelay",
        vec![
            ParamInfo::new(
                "base",
                Duration,
                "2s",
                "Polly's Delay: the median first delay",
            ),
            ParamInfo::optional("max-delay", Duration, "Polly's MaxDelay: the largest delay"),
        ],
        |params| {
            Ok(Backoff::PollyDecorrelatedV2 {
                base: params.duration("base")?,
                max_delay: params.optional_duration("max-delay")?,
            })
        },
    );
    all.push(with_default(
        polly,
        "max-attempts",
        "4",
        "cap: attempts, the first included (Polly's MaxRetryAttempts 3 + 1)",
    ));
    for (name, lower_bound_is_min, summary) in [
        (
            "tenacity@9",
            true,
            "wait_random_exponential: U(min, max(min, min(multiplier x 2^(attempt-1), max))); retries any failure",
        ),
        (
            "tenacity@8",
            false,
            "wait_random_exponential before 9.0: U(0, max(min, min(multiplier x 2^(attempt-1), max))); retries any failure",
        ),
    ] {
        let params = vec![
            ParamInfo::new("min", Duration, "1s", "lower bound of the wait"),
            ParamInfo::new("max", Duration, "60s", "upper bound of the wait"),
            ParamInfo::new("multiplier", Float, "1", "seconds at attempt 1"),
            ParamInfo::new(
                "max-attempts",
                Integer,
                "6",
                "stop_after_attempt: attempts, the first included",
            ),
        ];
        let factory = Factory::Backoff(Box::new(move |params| {
            Ok(BackoffStrategy::new(
                Backoff::TenacityRandomExponential {
                    min: params.duration("min")?,
                    max: params.duration("max")?,
                    multiplier: params.float("multiplier")?,
                    lower_bound_is_min,
                },
                Retryable::AnyFailure,
            ))
        }));
        let source = "tenacity wait.py wait_random_exponential; defaults are OpenAI's cookbook \
                      usage (min=1, max=60, stop_after_attempt(6)); tenacity's own are min=0, no \
                      max, no stop; docs/official-clients.md, tenacity";
        all.push((info(name, summary, source, params), factory));
    }
    all.extend([
        official(
            "openai-python@2.51",
            "2 retries; Retry-After honoured if 0 < v <= 60 s, else min(0.5 x 2^n, 8) x (1 - 0.25 U) s",
            OfficialClientKind::OpenAiPython2_51,
            "2",
        ),
        official(
            "openai-python@2.52",
            "as 2.51 but honours 0 < v <= 120 s and does not retry at all over 120 s",
            OfficialClientKind::OpenAiPython2_52,
            "2",
        ),
        official(
            "openai-node@4",
            "2 retries; Retry-After honoured if 0 < v < 60 s, else the python formula",
            OfficialClientKind::OpenAiNode4,
            "2",
        ),
        official(
            "openai-node@6.26",
            "2 retries; any Retry-After >= 0 honoured, uncapped",
            OfficialClientKind::OpenAiNode6_26,
            "2",
        ),
        official(
            "openai-node@7.5",
            "2 retries; Retry-After honoured if 0 <= v <= 60 s",
            OfficialClientKind::OpenAiNode7_5,
            "2",
        ),
        official(
            "async-openai@0.36",
            "backoff crate: 500 ms x 1.5^n +-50%, 60 s max interval, 15 min elapsed; no Retry-After",
            OfficialClientKind::AsyncOpenAi0_36,
            "",
        ),
        official(
            "async-openai@0.37",
            "3 retries; integer Retry-After, else min(100 ms x 2^n, 8 s), no jitter",
            OfficialClientKind::AsyncOpenAi0_37,
            "3",
        ),
    ]);
    all.extend(
        wrappers()
            .into_iter()
            .map(|(info, factory)| (info, factory.into())),
    );
    all
}

fn with_default(
    (mut info, factory): (StrategyInfo, Factory),
    name: &str,
    default: &str,
    doc: &str,
) -> (StrategyInfo, Factory) {
    for param in &mut info.params {
        if param.name == name {
            param.default = Some(default.to_owned());
            param.doc = doc.to_owned();
        }
    }
    (info, factory)
}

fn wrappers() -> Vec<(StrategyInfo, StrategyFactory)> {
    vec![
        (
            info(
                "honour-retry-after",
                "wait the server's Retry-After (retry-after-ms, else retry-after) when the inner strategy retries",
                "RFC 9110 section 10.2.3 Retry-After; the cap and positive jitter are ratelab's",
                vec![
                    inner_param(),
                    ParamInfo::new("cap", Duration, "60s", "longest wait accepted"),
                    ParamInfo::new("jitter", Float, "0", "adds U(0, jitter x value)"),
                    ParamInfo::new(
                        "clamp-over-cap",
                        Bool,
                        "false",
                        "wait the cap instead of giving up when the value is over it",
                    ),
                ],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(HonourRetryAfter::new(
                    params.strategy("inner", registry)?,
                    params.duration("cap")?,
                    params.float("jitter")?,
                    params.bool("clamp-over-cap")?,
                )))
            }),
        ),
        (
            info(
                "aws-retry-quota",
                "token bucket of retries per client: each retry costs tokens, successes refund",
                "AWS SDKs and Tools Reference Guide, \"Retry behavior\", standard mode; botocore retries/quota.py",
                vec![
                    inner_param(),
                    ParamInfo::new("capacity", Integer, "500", "tokens in a full quota"),
                    ParamInfo::new("retry-cost", Integer, "5", "tokens per retry"),
                    ParamInfo::new(
                        "timeout-cost",
                        Integer,
                        "10",
                        "tokens per retry after a timeout",
                    ),
                ],
            ),
            Box::new(|params, registry| {
                let whole = |name| {
                    params
                        .integer(name)
                        .map(|value| u32::try_from(value).unwrap_or(u32::MAX))
                };
                Ok(Box::new(AwsRetryQuota::new(
                    params.strategy("inner", registry)?,
                    whole("capacity")?,
                    whole("retry-cost")?,
                    whole("timeout-cost")?,
                )))
            }),
        ),
        (
            info(
                "grpc-retry-throttle",
                "failures take 1 token, successes add token-ratio; no retries at or below half",
                "gRPC proposal A6 \"gRPC Retry Design\", retry throttling (example values)",
                vec![
                    inner_param(),
                    ParamInfo::new("max-tokens", Float, "10", "maxTokens"),
                    ParamInfo::new("token-ratio", Float, "0.1", "tokenRatio"),
                ],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(GrpcThrottle::new(
                    params.strategy("inner", registry)?,
                    params.float("max-tokens")?,
                    params.float("token-ratio")?,
                )))
            }),
        ),
        (
            info(
                "finagle-budget",
                "retries limited to a percent of recent requests plus a per-second reserve",
                "Finagle RetryBudget (defaults ttl 10 s, minRetriesPerSec 10, percentCanRetry 0.2)",
                vec![
                    inner_param(),
                    ParamInfo::new("ttl", Duration, "10s", "how long deposits count"),
                    ParamInfo::new("min-retries-per-second", Float, "10", "reserve"),
                    ParamInfo::new("percent", Float, "0.2", "retries per request"),
                ],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(FinagleBudget::new(
                    params.strategy("inner", registry)?,
                    params.duration("ttl")?,
                    params.float("min-retries-per-second")?,
                    params.float("percent")?,
                )))
            }),
        ),
        (
            info(
                "sre-adaptive-throttle",
                "reject locally with probability max(0, (requests - K x accepts) / (requests + 1))",
                "Site Reliability Engineering (O'Reilly 2016), ch. 21 \"Handling Overload\", K = 2, 2 min history",
                vec![
                    inner_param(),
                    ParamInfo::new("k", Float, "2", "K: accepts multiplier"),
                    ParamInfo::new("window", Duration, "2m", "history kept"),
                ],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(SreAdaptiveThrottle::new(
                    params.strategy("inner", registry)?,
                    params.float("k")?,
                    params.duration("window")?,
                )))
            }),
        ),
        (
            info(
                "header-pacing",
                "delay sends until x-ratelimit-remaining/-reset say a request and its tokens fit",
                "OpenAI rate-limit guide (x-ratelimit-* headers); OpenAI cookbook api_request_parallel_processor.py",
                vec![inner_param()],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(HeaderPacing::new(
                    params.strategy("inner", registry)?,
                )))
            }),
        ),
        (
            info(
                "token-bucket",
                "a local bucket per client at a configured RPM and/or TPM",
                "OpenAI's limiter as ratelab models it (continuous refill at limit / 60 s); docs/limits.md, The bucket",
                vec![
                    inner_param(),
                    ParamInfo::optional("rpm", Float, "requests per minute"),
                    ParamInfo::optional("tpm", Float, "tokens per minute"),
                    ParamInfo::optional(
                        "request-burst",
                        Float,
                        "bucket size in requests (default: rpm)",
                    ),
                    ParamInfo::optional(
                        "token-burst",
                        Float,
                        "bucket size in tokens (default: tpm)",
                    ),
                ],
            ),
            Box::new(|params, registry| {
                let (rpm, tpm) = (params.optional_float("rpm")?, params.optional_float("tpm")?);
                if rpm.is_none() && tpm.is_none() {
                    return Err(crate::SpecError::MissingParam {
                        kind: "token-bucket".to_owned(),
                        param: "rpm".to_owned(),
                        expected: "rpm and/or tpm, e.g. token-bucket:rpm=500,inner=(none)"
                            .to_owned(),
                    });
                }
                Ok(Box::new(LocalTokenBucket::new(
                    params.strategy("inner", registry)?,
                    rpm,
                    tpm,
                    params.optional_float("request-burst")?,
                    params.optional_float("token-burst")?,
                )))
            }),
        ),
        (
            info(
                "aws-adaptive",
                "client-side send rate from CUBIC (beta 0.7, C 0.4), enabled at the first throttle",
                "AWS SDKs and Tools Reference Guide, \"Retry behavior\", adaptive mode; botocore retries/adaptive.py, cubic.py",
                vec![inner_param()],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(AwsAdaptive::new(
                    params.strategy("inner", registry)?,
                )))
            }),
        ),
        (
            info(
                "circuit-breaker",
                "opens after consecutive failures and fails fast; half-open lets one probe through",
                "Michael Nygard, Release It! (2007); Martin Fowler, CircuitBreaker (2014); 5 s break as Polly v8",
                vec![
                    inner_param(),
                    ParamInfo::new(
                        "failure-threshold",
                        Integer,
                        "5",
                        "consecutive failures that open it",
                    ),
                    ParamInfo::new("open-for", Duration, "5s", "how long it stays open"),
                ],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(CircuitBreaker::new(
                    params.strategy("inner", registry)?,
                    u32::try_from(params.integer("failure-threshold")?).unwrap_or(u32::MAX),
                    params.duration("open-for")?,
                )))
            }),
        ),
        (
            info(
                "stacked",
                "outer policy over an inner one: the outer retries whole inner sequences",
                "the OpenAI cookbook's tenacity around the SDK's own retries: up to 6 x 3 = 18 calls",
                vec![
                    ParamInfo::required("outer", Strategy, "the application's policy"),
                    ParamInfo::required("inner", Strategy, "the client library's policy"),
                ],
            ),
            Box::new(|params, registry| {
                Ok(Box::new(Stacked::new(
                    params.strategy("outer", registry)?,
                    params.strategy("inner", registry)?,
                )))
            }),
        ),
    ]
}
