// Package e2e holds end-to-end tests that run Ficus's components as separate
// processes on loopback (built from this checkout by TestMain), so that a
// test can kill one with SIGKILL, put faults between the gateway and an
// upstream, and move the canary between two attempts of one request, the
// way production breaks.
package e2e
