// Package hsmtest is test support for hsm.Backend: the conformance suite
// every backend passes (RunConformance), benchmarks (RunBenchmarks), and
// helpers that give other packages' tests ready backends — a software HSM
// (OpenSoftware) or a PKCS#11 backend on a private SoftHSM2 token
// (NewSoftHSMToken, OpenSoftHSM).
package hsmtest
