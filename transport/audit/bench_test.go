//go:build linux

package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The benchmarks report ratios against a baseline run in the same process,
// as the machines they run on are shared and noisy. Run them with
//
//	go test -run '^$' -bench . -benchtime 3s -count 3 ./transport/audit/
//
// and compare BenchmarkRequestPath's "audit" with its "no-audit", and
// BenchmarkAppendParallel's cpu-ns/op (per record) with BenchmarkRawSync's
// (per sync).

// BenchmarkRawSync is the floor of a durable append: one record-sized
// write at the end of a file and one fdatasync, from one goroutine, without
// encoding, hashing or a writer goroutine.
func BenchmarkRawSync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line, _, _ := encode(nil, &Record{Seq: 1, Time: time.Now(), Operation: "Encrypt", Outcome: OutcomeAllowed, PrevHash: zeroHash})
	cpu := startCPU()
	for b.Loop() {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, b.N)
}

// BenchmarkAppendParallel: 64 goroutines appending and waiting, as under
// load; every record is durable before its Append returns.
func BenchmarkAppendParallel(b *testing.B) {
	l := benchLog(b)
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	var id atomic.Int64
	cpu := startCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := testRecord(int(id.Add(1)))
			if err := l.Append(context.Background(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu.report(b, b.N)
	reportRates(b, l)
}

// BenchmarkAppendSerial: one goroutine; every record pays a sync.
func BenchmarkAppendSerial(b *testing.B) {
	l := benchLog(b)
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		if err := l.Append(context.Background(), testRecord(i)); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, b.N)
	reportRates(b, l)
}

// BenchmarkRequestPath models a region's data plane: 64 goroutines, each
// serving requests that cost requestWork of CPU, spread over three logs (a
// node each), all on the same cores. "audit" appends a record at the end of
// each request and waits for it, as transport.AuditInterceptor does;
// "no-audit" is the same work without the log. The ratio of their ns/op is what the audit log costs a request when
// CPU is the limit, as it is with three nodes and a load generator on two
// cores.
func BenchmarkRequestPath(b *testing.B) {
	for _, audited := range []bool{false, true} {
		name := "no-audit"
		if audited {
			name = "audit"
		}
		b.Run(name, func(b *testing.B) {
			var logs []*Log
			if audited {
				for range 3 {
					logs = append(logs, benchLog(b))
				}
			}
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			var id, worker atomic.Int64
			cpu := startCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := int(worker.Add(1))
				var sum [sha256.Size]byte
				for pb.Next() {
					if logs == nil {
						sum = requestWork(sum)
						continue
					}
					sum = requestWork(sum)
					r := testRecord(int(id.Add(1)))
					if err := logs[w%len(logs)].Append(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cpu.report(b, b.N)
			if logs != nil {
				var syncs uint64
				for _, l := range logs {
					syncs += l.syncs.Load()
				}
				b.ReportMetric(float64(b.N)/float64(syncs), "records/sync")
			}
		})
	}
}

// requestWork burns about 70 µs of CPU on the machines we measure on:
// what an Encrypt costs a region's servers in all (BENCHMARKS.md: 73 µs
// summed over three nodes).
func requestWork(seed [sha256.Size]byte) [sha256.Size]byte {
	var buf [112 << 10]byte
	copy(buf[:], seed[:])
	return sha256.Sum256(buf[:])
}

func benchLog(b *testing.B) *Log {
	b.Helper()
	l, err := Open(Config{Path: filepath.Join(b.TempDir(), "audit.log"), Logger: testLogger(nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func reportRates(b *testing.B, l *Log) {
	s := b.Elapsed().Seconds()
	syncs := float64(l.syncs.Load())
	b.ReportMetric(syncs/s, "syncs/s")
	b.ReportMetric(float64(b.N)/syncs, "records/sync")
}

// cpuMeter measures the CPU time of the whole process (user and system,
// the writer goroutine included) over a benchmark.
type cpuMeter time.Duration

func startCPU() cpuMeter { return cpuMeter(processCPU()) }

func (c cpuMeter) report(b *testing.B, ops int) {
	b.ReportMetric(float64((processCPU()-time.Duration(c)).Nanoseconds())/float64(ops), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint("getrusage: ", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncode compares the writer's encoding of a record with
// encoding/json's, which it replaces.
func BenchmarkEncode(b *testing.B) {
	r := testRecord(0)
	r.Time = time.Now().UTC()
	b.Run("appendMiddle", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendMiddle(buf[:0], &r)
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshalMiddle(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
