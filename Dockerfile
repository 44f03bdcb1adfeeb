# cf-scoped-token: the image the GitHub runner builds for `uses: ./` (action.yml: `image: Dockerfile`)
# and the one release.yml pushes, multi-arch, to GHCR for `image: docker://…@sha256:…`.
#
# Both bases are build args so test/container/run.sh can build this very file with no registry
# in reach (it passes a stand-in made from the host's Go toolchain). No `# syntax=` line: it would
# make BuildKit pull a frontend image before every build on every runner.

# golang:1.26-alpine by index digest. The digest was read from public Dockerfiles that pin the same
# tag (no registry is reachable from where this file was written), so the first release build is
# what proves it resolves. Dependabot's docker updater reads FROM lines, not ARG defaults: bump this
# digest by hand with the Go version.
ARG GO_IMAGE=golang:1.26-alpine@sha256:7a3e50096189ad57c9f9f865e7e4aa8585ed1585248513dc5cda498e2f41812c

# scratch is not an image: nothing is pulled, so there is no digest to pin and nothing to patch.
# Any other base must run as root (GitHub runs Docker actions as root so they can write the
# file-command files mounted under /github/file_commands): a distroless ":nonroot" variant, or any
# base with a USER, breaks GITHUB_OUTPUT and GITHUB_STATE. That is also why there is no USER below.
ARG BASE_IMAGE=scratch

# The build stage runs on the builder's own platform and cross-compiles (pure Go, no cgo), so the
# arm64 image of a multi-arch release needs no emulator. BuildKit and buildah set TARGETOS and
# TARGETARCH; should a builder leave them empty, go builds for the platform it runs on.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Optional: a module proxy and go flags from the builder (test/container/run.sh passes the host's).
ARG GOPROXY
ARG GOFLAGS
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOCACHE=/root/.cache/go-build

# Modules in their own layer: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
# What `cf-scoped-token version` reports; release.yml passes the tag. Declared after the module
# layer: a build argument is part of the cache key of every RUN after it.
ARG VERSION=dev
# -trimpath and an empty -buildid make the binary depend on the sources and toolchain only.
# The post step is the same binary under a second name: it picks its phase from argv[0].
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -buildid= -X github.com/cf-scoped-token/cf-scoped-token/internal/cli.Version=${VERSION}" -o /out/usr/local/bin/cf-scoped-token . \
 && ln -s cf-scoped-token /out/usr/local/bin/cf-scoped-token-post \
 && mkdir -p /out/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && test -s /out/etc/ssl/certs/ca-certificates.crt

# The final image holds the binary, its post alias and the CA bundle, nothing else. The bundle comes
# from the build stage (Alpine's Mozilla set) rather than being compiled in with
# golang.org/x/crypto/x509roots/fallback: it is refreshed with the base image, it needs no change
# to the Go code, and Go's crypto/x509 finds it at /etc/ssl/certs/ca-certificates.crt.
FROM ${BASE_IMAGE}
COPY --from=build /out/ /
ENTRYPOINT ["/usr/local/bin/cf-scoped-token"]
