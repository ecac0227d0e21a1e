# Strata's container image: `docker build -t strata .`
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /strata ./cmd/strata

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /strata /strata
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/strata"]
CMD ["serve", "--data", "/data", "--http", "0.0.0.0:8080"]
