// Package pki is Trent's certificate and mutual-TLS layer: a cluster CA on
// disk, node and client certificates whose identity is a URI SAN, TLS 1.3
// configs that require and check a client certificate on every connection,
// certificate rotation without restart, and a hashicorp/raft StreamLayer
// over mutual TLS.
//
// Identities:
//
//	trent://node/REGION/ID     node certificate (server and client auth)
//	trent://principal/NAME     client certificate (client auth only),
//	trent://role/ROLE          plus one URI per role
//
// The CLI and the daemon wire it as follows:
//
//	pki.InitCA(dir, "Trent CA", 0)                                 // kmsctl ca init DIR
//	ca, _ := pki.LoadCA(dir)
//	ca.IssueNode(out, pki.NodeCertRequest{Region: "eu-1", NodeID: "n1", Hosts: hosts})
//	ca.IssueClient(out, pki.ClientCertRequest{Principal: "alice", Roles: []string{"admin"}})
//
//	r, _ := pki.NewReloader(certFile, keyFile, caFile, logger, 0)  // kmsd; r.Reload() on SIGHUP
//	grpcServerCreds := credentials.NewTLS(r.ServerConfig())
//	grpcClientCreds := credentials.NewTLS(r.ClientConfig(host))  // node to node, kmsctl
//	stream := pki.NewStreamLayer(ln, r, region, logger)            // raft.NewNetworkTransport(stream, ...)
//	id, err := pki.PeerIdentity(tlsInfo.State)                     // server side: who is calling
//
// DevBootstrap gives -dev a CA, a node certificate and an admin client
// certificate under DATA/tls. DESIGN.md beside this file lists what each
// check enforces and how reloading behaves.
package pki
