# flowtape's images, both run as the non-root user 65532 with the binary
# at /usr/local/bin/flowtape:
#   docker build -t REGISTRY/flowtape:TAG .
#     every command (the default target): cgo (DuckDB is C++), built on
#     Debian, run on distroless/cc (glibc and libstdc++, nothing else)
#   docker build --target recorder -t REGISTRY/flowtape-recorder:TAG .
#     the recorder build (record, recover, reindex, export, schema,
#     version; no DuckDB, no cgo): a static binary on distroless/static,
#     for a recorder on every node (deploy/per-node), 70-115 MB less
#     resident memory (make bench)
FROM golang:1.26-bookworm AS source
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev

FROM source AS build-recorder
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags recorder \
      -ldflags "-s -w -X github.com/flowtape/flowtape/internal/buildinfo.Version=${VERSION}" \
      -o /out/flowtape ./cmd/flowtape

FROM gcr.io/distroless/static-debian12:nonroot AS recorder
COPY --from=build-recorder /out/flowtape /usr/local/bin/flowtape
USER 65532:65532
EXPOSE 9965
ENTRYPOINT ["/usr/local/bin/flowtape"]
CMD ["--help"]

FROM source AS build
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X github.com/flowtape/flowtape/internal/buildinfo.Version=${VERSION}" \
      -o /out/flowtape ./cmd/flowtape

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/flowtape /usr/local/bin/flowtape
USER 65532:65532
EXPOSE 9965
ENTRYPOINT ["/usr/local/bin/flowtape"]
CMD ["--help"]
