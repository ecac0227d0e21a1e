package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Exporters: where spans go.
const (
	ExporterNone   = "none"   // no spans (the default); incoming context still flows
	ExporterOTLP   = "otlp"   // an OpenTelemetry collector or any OTLP backend
	ExporterStdout = "stdout" // JSON on standard output, for debugging
)

// OTLP protocols.
const (
	ProtocolHTTP = "http/protobuf" // the default, port 4318
	ProtocolGRPC = "grpc"          // port 4317
)

// ServiceName is the service.name of Strata's spans (OTEL_SERVICE_NAME
// overrides it).
const ServiceName = "strata"

// Config says whether and where spans are exported: the tracing section of
// the config file. The OTLP exporter also reads the standard
// OTEL_EXPORTER_OTLP_* (and OTEL_EXPORTER_OTLP_TRACES_*) environment
// variables for whatever is not set here.
type Config struct {
	// Exporter is none (default), otlp or stdout.
	Exporter string `yaml:"exporter"`
	// Protocol of OTLP: http/protobuf (default) or grpc. Empty: the
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
	// environment variable, else http/protobuf.
	Protocol string `yaml:"protocol"`
	// Endpoint of OTLP: host:port, or a URL whose scheme says whether TLS
	// is used. For http/protobuf, a URL without a path gets /v1/traces
	// (as OTEL_EXPORTER_OTLP_ENDPOINT does). Empty: the environment
	// variables, else localhost:4318 (http) or localhost:4317 (grpc).
	Endpoint string `yaml:"endpoint"`
	// Headers sent with every export (an API key, say).
	Headers map[string]string `yaml:"headers,omitempty"`
	// Insecure sends OTLP without TLS to a host:port endpoint.
	Insecure bool `yaml:"insecure"`
	// SampleRatio of traces that start at Strata (a command without a
	// trace context) to record, 0 to 1; a trace that arrives with a
	// command is recorded when its sender sampled it, whatever the
	// ratio. Default 1 in the config file and flags: every command, at
	// the price of a few spans per command and per event a view applies.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Exporter != "" && c.Exporter != ExporterNone }

// Problems returns what is wrong with c, one error per setting, each
// naming it as the config file and the flags do.
func (c Config) Problems() []error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	switch c.Exporter {
	case "", ExporterNone, ExporterOTLP, ExporterStdout:
	default:
		bad("tracing.exporter (--tracing-exporter): %q, want none, otlp or stdout", c.Exporter)
	}
	switch c.Protocol {
	case "", ProtocolHTTP, ProtocolGRPC:
	default:
		bad("tracing.protocol (--tracing-protocol): %q, want http/protobuf or grpc", c.Protocol)
	}
	if e := c.Endpoint; e != "" {
		if strings.Contains(e, "://") {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("tracing.endpoint (--tracing-endpoint): %q, want host:port or an http:// or https:// URL", e)
			}
		} else if host, port, err := net.SplitHostPort(e); err != nil || host == "" || port == "" {
			bad("tracing.endpoint (--tracing-endpoint): %q, want host:port or an http:// or https:// URL", e)
		}
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			bad("tracing.headers (--tracing-headers): %q is not a header name", k)
		}
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) { // also refuses NaN
		bad("tracing.sample_ratio (--tracing-sample-ratio): %v, want 0 to 1", c.SampleRatio)
	}
	return problems
}

// NewProvider returns the TracerProvider c asks for, nil when tracing is
// off. Its resource names the service "strata" and this instance (the
// data directory's instance ID); OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME add to it. Spans are exported in batches, in the
// background; Shutdown the provider on exit to flush the last ones.
// stdout receives the stdout exporter's spans.
func NewProvider(ctx context.Context, c Config, instanceID string, stdout io.Writer) (*sdktrace.TracerProvider, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := errors.Join(c.Problems()...); err != nil {
		return nil, err
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch c.Exporter {
	case ExporterStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
	case ExporterOTLP:
		exp, err = otlpExporter(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", c.Exporter, err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceInstanceID(instanceID)),
		resource.WithFromEnv(), // after ours: the environment overrides
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	), nil
}

// otlpExporter builds the OTLP exporter. Only what c sets is passed as an
// option: the exporters read the OTEL_EXPORTER_OTLP_* variables for the
// rest, and options override them.
func otlpExporter(ctx context.Context, c Config) (sdktrace.SpanExporter, error) {
	protocol := c.Protocol
	for _, env := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if protocol == "" {
			protocol = os.Getenv(env)
		}
	}
	isURL := strings.Contains(c.Endpoint, "://")
	switch protocol {
	case "", ProtocolHTTP:
		var opts []otlptracehttp.Option
		switch {
		case isURL:
			u, _ := url.Parse(c.Endpoint) // checked by Problems
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		case c.Endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(c.Endpoint))
		}
		if c.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		return otlptracehttp.New(ctx, opts...)
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		switch {
		case isURL:
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		case c.Endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(c.Endpoint))
		}
		if c.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("protocol %q (from the environment): want http/protobuf or grpc", protocol)
	}
}
