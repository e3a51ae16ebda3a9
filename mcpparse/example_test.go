package mcpparse_test

import (
	"errors"
	"fmt"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

func ExampleParse() {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"namespace":"default"}}}`)
	m, err := mcpparse.Parse(body, mcpparse.Options{})
	if err != nil {
		fmt.Println(mcpparse.Code(err), err)
		return
	}
	fmt.Println(m.Kind, m.Method, string(m.ID), m.Name, string(m.Arguments))
	// Output: request tools/call 7 kube_pods_list {"namespace":"default"}
}

func ExampleParse_duplicateKey() {
	// A second "name" could be read by the upstream server in place of the
	// first: the message is refused rather than guessed at.
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","name":"delete"}}`)
	_, err := mcpparse.Parse(body, mcpparse.Options{})
	fmt.Println(mcpparse.Code(err), errors.Is(err, mcpparse.ErrInvalidRequest))
	fmt.Println(err)
	// Output:
	// -32600 true
	// mcpparse: invalid request: duplicate key "name"
}

func ExampleParseBatch() {
	body := []byte(`[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///etc/motd"}}]`)
	if _, err := mcpparse.Parse(body, mcpparse.Options{}); errors.Is(err, mcpparse.ErrBatch) {
		fmt.Println("Parse:", err)
	}
	msgs, err := mcpparse.ParseBatch(body, mcpparse.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range msgs {
		fmt.Printf("%s %s uri=%q\n", m.Kind, m.Method, m.URI)
	}
	// Output:
	// Parse: mcpparse: batch not supported: JSON array
	// notification notifications/initialized uri=""
	// request resources/read uri="file:///etc/motd"
}
