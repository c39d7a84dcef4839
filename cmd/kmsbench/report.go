package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// result is one benchmark's outcome, printed as one line.
type result struct {
	label       string
	op          string
	mix         string
	concurrency int
	size        int
	endpoints   []string
	measurement measurement
}

// The text line is key=value fields after the label, so that both people and
// awk can read it; the first error, free text, comes last.
func (r result) text() string {
	m := r.measurement
	var b strings.Builder
	fmt.Fprintf(&b, "%s op=%s", r.label, r.op)
	if r.mix != "" {
		fmt.Fprintf(&b, " mix=%s", r.mix)
	}
	fmt.Fprintf(&b, " conc=%d dur=%.1fs ops=%d rate=%.1f/s p50=%s p99=%s errors=%d",
		r.concurrency, m.elapsed.Seconds(), m.ops, m.rate(),
		formatMillis(m.latency.quantile(0.50)), formatMillis(m.latency.quantile(0.99)), m.errors)
	if m.firstError != nil {
		fmt.Fprintf(&b, " first_error=%q", m.firstError.Error())
	}
	return b.String()
}

// formatMillis keeps three significant digits for sub-millisecond latencies,
// which loopback baselines have.
func formatMillis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms >= 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(ms, 'f', 3, 64) + "ms"
	}
}

type jsonResult struct {
	Label       string   `json:"label"`
	Op          string   `json:"op"`
	Mix         string   `json:"mix,omitempty"`
	Concurrency int      `json:"concurrency"`
	Size        int      `json:"size"`
	Endpoints   []string `json:"endpoints,omitempty"`
	DurationS   float64  `json:"duration_s"`
	Ops         uint64   `json:"ops"`
	Rate        float64  `json:"rate"`
	MeanMs      float64  `json:"mean_ms"`
	P50Ms       float64  `json:"p50_ms"`
	P90Ms       float64  `json:"p90_ms"`
	P99Ms       float64  `json:"p99_ms"`
	P999Ms      float64  `json:"p999_ms"`
	MaxMs       float64  `json:"max_ms"`
	Errors      uint64   `json:"errors"`
	FirstError  string   `json:"first_error,omitempty"`
}

func (r result) json() jsonResult {
	m := r.measurement
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	j := jsonResult{
		Label:       r.label,
		Op:          r.op,
		Mix:         r.mix,
		Concurrency: r.concurrency,
		Size:        r.size,
		Endpoints:   r.endpoints,
		DurationS:   m.elapsed.Seconds(),
		Ops:         m.ops,
		Rate:        m.rate(),
		MeanMs:      ms(m.latency.mean()),
		P50Ms:       ms(m.latency.quantile(0.50)),
		P90Ms:       ms(m.latency.quantile(0.90)),
		P99Ms:       ms(m.latency.quantile(0.99)),
		P999Ms:      ms(m.latency.quantile(0.999)),
		MaxMs:       ms(m.latency.maxValue()),
		Errors:      m.errors,
	}
	if m.firstError != nil {
		j.FirstError = m.firstError.Error()
	}
	return j
}

func (r result) write(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r.json())
	}
	_, err := fmt.Fprintln(w, r.text())
	return err
}
