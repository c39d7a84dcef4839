package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Step results.
const (
	drillOK      = "OK"
	drillFail    = "FAIL"
	drillSkipped = "SKIPPED"
)

// drillReport is what a drill found; --output json prints it as is. Times
// are milliseconds, like ReplicationLagMillis in describe-key.
type drillReport struct {
	RunID          string       `json:"RunId"`
	PrimaryRegion  string       `json:"PrimaryRegion"`
	SurvivorRegion string       `json:"SurvivorRegion"`
	Keys           []string     `json:"Keys"`
	CutTime        string       `json:"CutTime,omitempty"` // RFC 3339, when the primary was cut off
	Steps          []*drillStep `json:"Steps"`
	RTO            *drillRTO    `json:"RTO,omitempty"`
	// RPO is absent when the drill stopped before it could be measured.
	RPO               *drillRPO         `json:"RPO,omitempty"`
	ConvergenceMillis *int64            `json:"ConvergenceMillis,omitempty"`
	FailbackMillis    *int64            `json:"FailbackMillis,omitempty"`
	KeyDetails        []*drillKeyDetail `json:"KeyDetails,omitempty"`
	Result            string            `json:"Result"`
}

type drillStep struct {
	Name           string   `json:"Name"`
	Result         string   `json:"Result"`
	DurationMillis int64    `json:"DurationMillis"`
	Notes          []string `json:"Notes,omitempty"`
	Errors         []string `json:"Errors,omitempty"`
}

// drillRTO times the forced failover from the cut: until the first key's
// promotion succeeded, and until the last one's (absent unless all did).
type drillRTO struct {
	FirstWriteMillis *int64 `json:"FirstWriteMillis,omitempty"`
	AllWritesMillis  *int64 `json:"AllWritesMillis,omitempty"`
	Promoted         int    `json:"KeysPromoted"`
	Keys             int    `json:"Keys"`
}

// drillRPO counts what was acknowledged before the cut and is gone after
// the restore: key versions not listed in a region and ciphertexts that do
// not decrypt in one. Lost must be 0.
type drillRPO struct {
	Lost                     int      `json:"Lost"`
	VersionsBeforeCut        int      `json:"VersionsBeforeCut"`
	CiphertextsBeforeCut     int      `json:"CiphertextsBeforeCut"`
	MissingVersions          []string `json:"MissingVersions"`
	UndecryptableCiphertexts []string `json:"UndecryptableCiphertexts"`
}

// drillKeyDetail is what the drill recorded about a key before the cut.
type drillKeyDetail struct {
	KeyID                string `json:"KeyId"`
	InitialKeyMaterialID string `json:"InitialKeyMaterialId"`
	// RotationsBeforeCut are the KeyMaterialIds ListKeyRotations gave in
	// each region.
	RotationsBeforeCut map[string][]string `json:"RotationsBeforeCut"`
	EpochBeforeCut     uint64              `json:"EpochBeforeCut"`
}

func (r *drillReport) step(name string) *drillStep {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// finish sets the result: OK only if no step failed and the RPO was
// measured and is 0.
func (r *drillReport) finish() {
	r.Result = drillOK
	if r.RPO == nil || r.RPO.Lost > 0 {
		r.Result = drillFail
	}
	for _, s := range r.Steps {
		if s.Result == drillFail {
			r.Result = drillFail
		}
	}
}

// failure is the error kmsctl exits with when the drill failed: the
// report, already printed, has the details.
func (r *drillReport) failure() error {
	if r.Result == drillOK {
		return nil
	}
	var why []string
	for _, s := range r.Steps {
		if s.Result == drillFail {
			why = append(why, fmt.Sprintf("%s failed (%s)", s.Name, s.Errors[0]))
		}
	}
	switch {
	case r.RPO == nil:
		why = append(why, "RPO not measured")
	case r.RPO.Lost > 0:
		why = append(why, fmt.Sprintf("RPO %d", r.RPO.Lost))
	}
	// The exception-style prefix gives kmsctl's error line a code, as the
	// server's errors have.
	return fmt.Errorf("DrillFailedException: %s", strings.Join(why, "; "))
}

// writeDrillReport prints the report: JSON, the text table, or with
// --query the part asked for, as any command's output.
func writeDrillReport(w io.Writer, r *drillReport, format string, q query) error {
	if format == "json" || q != nil {
		return printResult(w, r, format, q)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kmsctl drill %s: primary %s, survivor %s, %s\n\n", r.RunID, r.PrimaryRegion, r.SurvivorRegion, plural(len(r.Keys), "multi-region key"))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tRESULT\tTIME\tNOTES")
	for _, s := range r.Steps {
		took := seconds(s.DurationMillis)
		if s.Result == drillSkipped {
			took = "-"
		}
		notes := s.Notes
		if len(notes) == 0 {
			notes = []string{""}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Result, took, notes[0])
		for _, n := range notes[1:] {
			fmt.Fprintf(tw, "\t\t\t%s\n", n)
		}
	}
	tw.Flush()
	// A step without notes would end in the padding of its last column.
	table := b.String()
	b.Reset()
	for line := range strings.Lines(table) {
		b.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "RTO\t%s\n", r.rtoText())
	fmt.Fprintf(tw, "RPO\t%s\n", r.rpoText())
	convergence := "not reached"
	if r.ConvergenceMillis != nil {
		convergence = seconds(*r.ConvergenceMillis) + " after " + r.PrimaryRegion + " answered again"
	}
	fmt.Fprintf(tw, "Convergence\t%s\n", convergence)
	if r.FailbackMillis != nil {
		fmt.Fprintf(tw, "Failback\t%s until %s was the primary again in both regions\n", seconds(*r.FailbackMillis), r.PrimaryRegion)
	}
	fmt.Fprintf(tw, "Result\t%s\n", r.Result)
	tw.Flush()
	first := true
	for _, s := range r.Steps {
		for _, e := range s.Errors {
			if first {
				b.WriteString("\nErrors:\n")
				first = false
			}
			fmt.Fprintf(&b, "  %s: %s\n", s.Name, e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *drillReport) rtoText() string {
	switch {
	case r.RTO == nil:
		return "not measured"
	case r.RTO.FirstWriteMillis == nil:
		return fmt.Sprintf("no key promoted (0 of %d)", r.RTO.Keys)
	case r.RTO.AllWritesMillis == nil:
		return fmt.Sprintf("first write %s after the cut; %d of %s promoted", seconds(*r.RTO.FirstWriteMillis), r.RTO.Promoted, plural(r.RTO.Keys, "key"))
	}
	return fmt.Sprintf("first write %s after the cut, last of %s %s", seconds(*r.RTO.FirstWriteMillis), plural(r.RTO.Keys, "key"), seconds(*r.RTO.AllWritesMillis))
}

func (r *drillReport) rpoText() string {
	if r.RPO == nil {
		return "not measured"
	}
	if r.RPO.Lost == 0 {
		return fmt.Sprintf("0: all %d key versions and %d ciphertexts from before the cut are there", r.RPO.VersionsBeforeCut, r.RPO.CiphertextsBeforeCut)
	}
	return fmt.Sprintf("%d: of %d key versions and %d ciphertexts from before the cut, %d missing and %d undecryptable",
		r.RPO.Lost, r.RPO.VersionsBeforeCut, r.RPO.CiphertextsBeforeCut, len(r.RPO.MissingVersions), len(r.RPO.UndecryptableCiphertexts))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func seconds(ms int64) string { return fmt.Sprintf("%.2fs", float64(ms)/1000) }
