// Package audit is Trent's per-node audit log: one record for every request,
// allowed or denied, appended to a hash-chained JSON Lines file.
//
// Each record carries the SHA-256 of its own canonical encoding and the hash
// of the record before it, so altering, deleting, inserting or reordering a
// line breaks the chain at that line; Verify finds the first broken link.
// Records hold who asked for what on which key with which encryption context
// and what the answer was — never plaintext, key material or data keys.
//
// Append returns only once its record is durable (write + fdatasync). A
// single writer goroutine commits whatever queued while the previous sync ran
// with one write and one sync (group commit), so many concurrent requests
// share the cost of a sync; under load it holds a batch briefly for the
// callers it just released. It writes into space zeroed ahead of the records,
// so that a sync has no file size to commit. Open resumes the sequence and
// the chain of an existing log, drops a torn write left by a crash, and
// refuses a log whose tail does not verify (ErrBroken).
//
// The file format is specified in DESIGN.md, next to this file, precisely
// enough for an external tool to verify a log.
package audit
