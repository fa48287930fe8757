// Package devenv runs the operator the way its users do, on one machine: a local kube-apiserver
// and etcd (the envtest binaries), the Cipherscale simulator and the manager as processes, and
// kubectl; or the operator in process against an in-memory simulator (RunOperator). It owns how
// a test or the demo makes ClusterCipherscaleTenant "default" and its consenting Secret
// (CreateDefaultTenant). The demo, the black-box suites and the benchmark share it; the operator
// never imports it.
package devenv
