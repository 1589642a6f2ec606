// Package scenario runs scenario tests (`mno test`): files that prove, against
// a lab of real nodes, that playbooks do what they should and that a second
// run changes nothing.
//
// A scenario is a file NAME_test.star next to the playbooks or roles it tests
// (roles/vps_test.star). It is Starlark like a playbook, with every builtin,
// plus the predeclared lab (below), and it defines:
//
//	PLAYBOOKS = [("add-vps", {"name": "vps-1", …}), "sync", …]
//	    the runs, in order: a playbook (a name like add-vps, "//playbooks/x.star",
//	    or a path relative to the scenario) with its parameters, or a name alone
//	def test_NAME(): …
//	    checks, run after the playbooks, in the order they are defined
//
// mno test starts a fresh lab per scenario (1 VPS, 1 worker, 1 laptop unless
// told otherwise), runs the bootstrap on every node for lab.user with the
// lab's control plane key, and runs PLAYBOOKS twice. The first pass must
// succeed; the second must succeed and change nothing: every effect it reports
// changed fails the scenario with its file:line and what it changed
// ("roles/vps.star:90:23: put /etc/traefik/dynamic/mno-routes.yml (sudo)
// changed on the second run"). Then each test_ function runs in a session of
// its own; a failed assert or any error fails it, reported with its position.
//
//	lab.name  lab.cp_addr  lab.user       the lab's name; the address nodes see the control plane
//	                                      connect from; the login user the bootstrap created ("mno")
//	lab.nodes  lab.vps  lab.workers  lab.laptops
//	                                      lists of nodes, each .name .kind .addr .port .host_key .fingerprint
//	lab.node(name)                        the node called name (vps-1, worker-1, laptop-1 …)
//	lab.demo                              the demo HTTP service: .name ("demo", its subdomain) .node .ip .port;
//	                                      service-registry publishes it, so a VPS serves demo.<its domain>
//	lab.http(node, host, path="/", tls=True, timeout="5s")
//	                                      GET https://host/path (http:// without tls) from the control plane,
//	                                      connecting to the node's :443 (:80); returns struct(status, body,
//	                                      location); certificates are not checked (no ACME in a lab)
//
// Remote files, commands and ConfigMaps are checked with the usual builtins:
// ssh.connect(n.addr, user=lab.user, host_key=n.host_key), kube.configmap.get,
// kube.node.get, assert.eq … Example, roles/vps_test.star:
//
//	vps = lab.node("vps-1")
//	PLAYBOOKS = [("add-vps", {"name": "vps-1", "address": vps.addr, "user": lab.user,
//	                          "domain": "example.test", "email": "ops@example.test", "host_key": vps.host_key})]
//
//	def test_static_config():
//	    h = ssh.connect(vps.addr, user = lab.user, host_key = vps.host_key)
//	    assert.contains(h.get("/etc/traefik/traefik.yml"), "ops@example.test")
//
//	def test_demo_is_served():
//	    r = lab.http("vps-1", "demo.example.test")
//	    assert.eq(r.status, 200)
package scenario
