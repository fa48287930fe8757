// Package devenv runs the operator the way its users do, on one machine: a local kube-apiserver
// and etcd (the envtest binaries), the Cipherscale simulator and the manager as processes, and
// kubectl. The demo, the end-to-end tests and the benchmark share it; the operator never imports it.
package devenv
