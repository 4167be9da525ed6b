// Package compose holds no code: its directory is the Docker Compose file of
// the pipeline (compose.yaml), and its test is the offline equivalent of
// `docker compose config` plus what a build cannot check: every variable the
// file sets is one its service reads, each service's configuration loads, the
// ports are devstack's, provisioning runs first and Novu is a dry-run by default.
package compose
