package registry_test

import (
	"fmt"

	"github.com/mcp-authz/mcp-authz/registry"
)

func Example() {
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:8089/mcp"},
		{Name: "mcp-test/files", Prefix: "fs_", URL: "http://127.0.0.1:8090/mcp",
			Hostname: "files.example.com", ResourcePrefixes: []string{"file:///srv/"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var reg registry.Registry
	changed := reg.Changed() // take it before Load so no Store is missed
	reg.Store(snap)
	<-changed

	srv, tool, ok := reg.Load().Resolve("kube_pods_list")
	fmt.Println(srv.Name, tool, srv.Audience, ok)
	srv, ok = reg.Load().ResolveURI("file:///srv/notes.txt")
	fmt.Println(srv.Name, ok)
	srv, ok = reg.Load().ByHost("Files.Example.com:443")
	fmt.Println(srv.Name, ok)
	_, _, ok = reg.Load().Resolve("kube_")
	fmt.Println(ok)
	// Output:
	// mcp-test/kubernetes-mcp pods_list mcp-test/kubernetes-mcp true
	// mcp-test/files true
	// mcp-test/files true
	// false
}

func ExampleNewSnapshot() {
	_, err := registry.NewSnapshot([]registry.Server{
		{Name: "ns/kube", Prefix: "kube_", URL: "http://kube/mcp"},
		{Name: "ns/kube-extra", Prefix: "kube_", URL: "http://extra/mcp"},
		{Name: "files", Prefix: "fs_", URL: "ftp://files/mcp"},
	})
	fmt.Println(err)
	// Output:
	// servers[2].name: "files" must be namespace/name
	// servers[2].url: must be an absolute http or https URL
	// servers[1].prefix: "kube_" is also the prefix of servers[0] "ns/kube"
}

// Prefixes may nest, and one server may have none: the longest prefix that leaves
// a name wins.
func ExampleSnapshot_Resolve() {
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "ns/kube", Prefix: "kube_", URL: "http://kube/mcp"},
		{Name: "ns/kube-admin", Prefix: "kube_admin_", URL: "http://admin/mcp"},
		{Name: "ns/everything", URL: "http://everything/mcp"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range []string{"kube_admin_drain", "kube_pods_list", "kube_admin_", "echo"} {
		srv, tool, _ := snap.Resolve(name)
		fmt.Println(name, "→", srv.Name, tool)
	}
	// Output:
	// kube_admin_drain → ns/kube-admin drain
	// kube_pods_list → ns/kube pods_list
	// kube_admin_ → ns/kube admin_
	// echo → ns/everything echo
}
