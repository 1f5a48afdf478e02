//! Tracing, OpenTelemetry export and Prometheus metrics.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`). Spans are
//! exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard
//! `OTEL_*` variables (`OTEL_SERVICE_NAME` overrides the service name;
//! `OTEL_SDK_DISABLED=true` turns export off). W3C trace context is always
//! propagated through NATS headers.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes spans on drop.
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

fn otlp_enabled() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    endpoint && !disabled
}

/// Installs the global subscriber, propagator and metrics recorder. A
/// second call (several services in one process, tests) keeps the first.
pub fn init(service: &str) -> Guard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("tousu-{service}"));
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(name)
            .build(),
    );
    let mut export_error = None;
    if otlp_enabled() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => export_error = Some(e),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer(format!("tousu-{service}"));
    let installed = tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .is_ok();
    if let Some(e) = export_error {
        tracing::warn!(error = %e, "OTLP exporter not started; spans are not exported");
    }
    metrics();
    Guard(installed.then_some(provider))
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours
        // then renders an empty page rather than failing the service.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
