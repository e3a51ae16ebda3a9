# syntax=docker/dockerfile:1
# The mcp-authz image, for those with a container engine:
#
#   docker build --build-arg VERSION=$(git describe --tags --match 'v*' --dirty || cat VERSION) \
#     -t ghcr.io/mcp-authz/mcp-authz:$(cat VERSION) .
#
# It is the image `make image` assembles without an engine (hack/image): a
# static binary stamped with VERSION on distroless static, run as nonroot
# (65532:65532), entrypoint /usr/local/bin/mcp-authz. hack/image's
# TestDockerfileAgrees keeps the two in step. Pin both base images by digest
# (@sha256:...) in your own builds.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=devel
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /usr/local/bin/mcp-authz ./cmd/mcp-authz

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=devel
LABEL org.opencontainers.image.title="mcp-authz" \
      org.opencontainers.image.description="Authorization for MCP servers behind Envoy / Istio" \
      org.opencontainers.image.source="https://github.com/mcp-authz/mcp-authz" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /usr/local/bin/mcp-authz /usr/local/bin/mcp-authz
USER 65532:65532
EXPOSE 9001 8081 9090
ENTRYPOINT ["/usr/local/bin/mcp-authz"]
