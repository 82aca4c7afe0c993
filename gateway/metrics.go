package gateway

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the gateway-wide Prometheus series. One Metrics lives for the
// whole process, across reloads. Labels come only from configuration names
// and small enums, never from users or client addresses.
type Metrics struct {
	Registry *prometheus.Registry

	Sessions          *prometheus.CounterVec   // frontend, protocol, command, result
	SessionsActive    *prometheus.GaugeVec     // frontend, protocol
	SessionSeconds    *prometheus.HistogramVec // frontend, protocol
	Bytes             *prometheus.CounterVec   // frontend, direction
	Datagrams         *prometheus.CounterVec   // frontend, direction
	DatagramsDropped  *prometheus.CounterVec   // frontend, reason
	HandshakeFailures *prometheus.CounterVec   // frontend, reason
	Auth              *prometheus.CounterVec   // frontend, result
	AssocActive       *prometheus.GaugeVec     // frontend, kind
	ICMPErrors        *prometheus.CounterVec   // frontend, result
	BackendDial       *prometheus.HistogramVec // backend, result
	LimitRejections   *prometheus.CounterVec   // frontend, limit
	ReloadSuccess     prometheus.Gauge
	Reloads           *prometheus.CounterVec // result
	Draining          prometheus.Gauge
}

// NewMetrics builds the series in a fresh registry (with Go and process
// collectors and sixgate_build_info).
func NewMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_sessions_total", Help: "Client sessions by command and result.",
		}, []string{"frontend", "protocol", "command", "result"}),
		SessionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sixgate_sessions_active", Help: "Client sessions open now.",
		}, []string{"frontend", "protocol"}),
		SessionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sixgate_session_duration_seconds", Help: "Client session lifetimes.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"frontend", "protocol"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_relayed_bytes_total", Help: "Bytes relayed; direction up is client to remote.",
		}, []string{"frontend", "direction"}),
		Datagrams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_relayed_datagrams_total", Help: "Datagrams relayed; direction up is client to remote.",
		}, []string{"frontend", "direction"}),
		DatagramsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_dropped_datagrams_total", Help: "Datagrams dropped, by reason.",
		}, []string{"frontend", "reason"}),
		HandshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_handshake_failures_total", Help: "Handshakes that failed, by reason.",
		}, []string{"frontend", "reason"}),
		Auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_auth_total", Help: "Authentication attempts by result.",
		}, []string{"frontend", "result"}),
		AssocActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sixgate_associations_active", Help: "Datagram associations and bindings open now.",
		}, []string{"frontend", "kind"}),
		ICMPErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_icmp_errors_total", Help: "ICMP errors received on associations, by what became of them.",
		}, []string{"frontend", "result"}),
		BackendDial: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sixgate_backend_dial_seconds", Help: "Time backends took to open streams and associations.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"backend", "result"}),
		LimitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_limit_rejections_total", Help: "Requests refused because a limit was reached.",
		}, []string{"frontend", "limit"}),
		ReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sixgate_config_last_reload_successful", Help: "1 if the last configuration load succeeded.",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sixgate_config_reloads_total", Help: "Configuration reloads by result.",
		}, []string{"result"}),
		Draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sixgate_draining", Help: "1 while the gateway drains before exit.",
		}),
	}
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sixgate_build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	build.Set(1)
	parkedReaders := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sixgate_parked_readers",
		Help: "Idle readers (stream relay directions, datagram readers, control connections) waiting in the park set without a goroutine.",
	}, func() float64 { return float64(ParkedReaders()) })
	reg.MustRegister(parkedReaders, m.Sessions, m.SessionsActive, m.SessionSeconds, m.Bytes, m.Datagrams,
		m.DatagramsDropped, m.HandshakeFailures, m.Auth, m.AssocActive, m.ICMPErrors, m.BackendDial,
		m.LimitRejections, m.ReloadSuccess, m.Reloads, m.Draining, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.ReloadSuccess.Set(1)
	return m
}
