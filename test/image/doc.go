// Package image runs the manager's OCI image as the chart's Deployment runs it: the image's root
// filesystem read-only, its entrypoint as UID/GID 65532 with no privileges, exactly the args,
// environment and mounts `helm template` renders, an in-cluster ServiceAccount token from the
// TokenRequest API, against a real kube-apiserver (envtest) and the Cipherscale simulator. Its
// tests need root (mount namespaces, setuid) and build the image when bin/ has none.
package image
