// Package crd checks the generated CustomResourceDefinitions against a real kube-apiserver
// (envtest): that they install, that the samples are accepted and defaulted, that an omitted
// list stays apart from an empty one, and that invalid manifests are refused with a message
// naming the field. It has no code of its own, only tests.
package crd
