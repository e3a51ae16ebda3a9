package router

import (
	"encoding/json"
	"sync"
)

// Bounds of paramMemo: the tool definitions it keeps, and the largest one
// it keeps (larger ones are decoded on every call). At most 8 MiB.
const (
	paramMemoEntries = 1024
	paramMemoTool    = 8 << 10
)

// paramMemo remembers paramHeaders per tool definition, keyed by its exact
// JSON, so that a call does not decode its tool's inputSchema again. The
// answer is a function of those bytes alone: no caller is ever answered
// from another's list but with what its own bytes say. Forgotten whole
// when full. The zero value is ready.
type paramMemo struct {
	mu sync.Mutex
	m  map[string]paramEntry
}

type paramEntry struct {
	headers map[string]string // read only
	err     error
}

// headers is paramHeaders(tool), remembered; the map must not be changed.
func (p *paramMemo) headers(tool json.RawMessage) (map[string]string, error) {
	if len(tool) > paramMemoTool {
		return paramHeaders(tool)
	}
	p.mu.Lock()
	e, ok := p.m[string(tool)]
	p.mu.Unlock()
	if ok {
		return e.headers, e.err
	}
	h, err := paramHeaders(tool)
	p.mu.Lock()
	if len(p.m) >= paramMemoEntries || p.m == nil {
		p.m = make(map[string]paramEntry)
	}
	p.m[string(tool)] = paramEntry{headers: h, err: err}
	p.mu.Unlock()
	return h, err
}
