# The manager's image, for those who build with Docker. `make image` builds the same image
# without a daemon (hack/image), and test/image checks that the two agree: the same user,
# entrypoint, working directory, labels and linker flags. Change both together.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) \
#     --build-arg IMAGE_VERSION=0.1.0 -t ghcr.io/cipherscale/cipherscale-operator:0.1.0 .

# Build the manager: a static binary with the same flags as `make build`.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY main.go main.go
COPY api/ api/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o manager .

# Run it on distroless as a non-root user: no shell, no package manager. distroless/static
# brings what hack/image writes itself: /etc/passwd and /etc/group with nonroot (65532), the
# CA certificates, /tmp and /home/nonroot.
FROM gcr.io/distroless/static:nonroot
ARG SOURCE=https://github.com/cipherscale/cipherscale-operator
ARG REVISION=unknown
ARG IMAGE_VERSION=0.1.0
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="cipherscale-operator" \
      org.opencontainers.image.description="Manages the users of a Cipherscale tenant from Kubernetes." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${IMAGE_VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
