// Package soak is the fault soak (`make soak`, docs/soak.md): the real operator binary
// as two leader-elected replicas against a real kube-apiserver + etcd, OpenBao,
// PostgreSQL and the AWS emulator, a seeded fault schedule, and invariants checked
// every second. Everything lives in TestSoak (soak_test.go); `go test ./...` runs a
// three-minute fixed-seed soak.
package soak
