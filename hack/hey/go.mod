module github.com/mcp-authz/mcp-authz/hack/hey

go 1.26

require github.com/rakyll/hey v0.1.4

require (
	golang.org/x/net v0.0.0-20181017193950-04a2e542c03f // indirect
	golang.org/x/text v0.3.0 // indirect
)
