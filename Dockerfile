# Build: docker build -t <registry>/secretsync:<tag> .
# A static binary (no cgo) on distroless: no shell, no package manager, runs as 65532.
FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
# Dependencies first, so source-only changes reuse this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Set by `docker buildx build --platform ...`; empty means the builder's own platform.
ARG TARGETOS TARGETARCH
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o /out/secretsync .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/secretsync /secretsync
USER 65532:65532
ENTRYPOINT ["/secretsync"]
