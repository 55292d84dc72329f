# flowtape's image: the recorder and every other command.
#   docker build -t REGISTRY/flowtape:TAG .
# cgo (DuckDB is C++): built on Debian, run on distroless/cc (glibc and
# libstdc++, nothing else), as the non-root user 65532.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
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
