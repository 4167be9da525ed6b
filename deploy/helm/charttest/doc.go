// Package charttest renders the clerk-novu Helm chart (deploy/helm/clerk-novu)
// with the Helm Go SDK, offline, and decodes every document strictly into its
// Kubernetes API type. It is its own module so the services' modules never
// depend on Helm or the Kubernetes API.
package charttest
