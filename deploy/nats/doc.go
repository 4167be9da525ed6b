// Package natsconf holds no code: its directory is the NATS server
// configuration of a deployment (nats-server.conf, accounts.conf with one
// least-privilege user per service and an admin user), and its tests run the
// whole pipeline against servers loaded from those files: one server with
// every service under its own user, and a 3-node JetStream cluster that loses
// its CLERK stream leader mid-load.
package natsconf
