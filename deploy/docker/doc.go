// Package docker holds the pipeline's one container image
// (deploy/docker/Dockerfile) and the test that runs its build steps with
// Go alone, as no Docker engine is needed to check them.
package docker
