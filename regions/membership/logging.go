package membership

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// logWriter turns memberlist's printf-style lines ("[WARN] memberlist: ...") into slog records.
// They all go out at debug: memberlist warns about routine events (a probe answered over TCP, a
// refused peer) that would drown an operator's log, and this package logs what matters itself.
type logWriter struct {
	log *slog.Logger
}

func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{log: l}, "", 0)
}

func (w logWriter) Write(p []byte) (int, error) {
	ctx := context.Background()
	if !w.log.Enabled(ctx, slog.LevelDebug) {
		return len(p), nil
	}
	msg := strings.TrimRight(string(p), "\r\n")
	level := ""
	if strings.HasPrefix(msg, "[") {
		if end := strings.IndexByte(msg, ']'); end > 0 {
			level, msg = msg[1:end], strings.TrimSpace(msg[end+1:])
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.log.LogAttrs(ctx, slog.LevelDebug, msg, slog.String("memberlist_level", level))
	return len(p), nil
}
