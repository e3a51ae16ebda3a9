package listen

import "github.com/mcp-authz/mcp-authz/mcpparse"

// filter appends the notifications filter asked of one server: the
// client's flags and uris.
func (s *Stream) filter(b []byte, uris []string) []byte {
	b = append(b, '{')
	first := true
	for k, on := range s.kinds {
		if !on {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"`+flags[k]+`":true`...)
	}
	if len(uris) > 0 {
		if !first {
			b = append(b, ',')
		}
		b = append(b, `"resourceSubscriptions":[`...)
		for i, uri := range uris {
			if i > 0 {
				b = append(b, ',')
			}
			b = mcpparse.AppendString(b, uri)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// meta is the _meta of every message of the stream.
func (s *Stream) meta(b []byte) []byte {
	b = append(b, `"_meta":{"`+MetaSubscriptionID+`":`...)
	return append(append(b, s.cfg.ID...), '}')
}

// notification is method for the client, with the subscription id and, for
// resources/updated, the URI.
func (s *Stream) notification(method, uri string) []byte {
	b := append([]byte(`{"jsonrpc":"2.0","method":"`), method...)
	b = s.meta(append(b, `","params":{`...))
	if uri != "" {
		b = mcpparse.AppendString(append(b, `,"uri":`...), uri)
	}
	return append(b, "}}"...)
}

// ack is notifications/subscriptions/acknowledged: everything asked for,
// which the router honors (what a server does not send never comes).
func (s *Stream) ack() []byte {
	b := []byte(`{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{`)
	b = s.meta(b)
	b = s.filter(append(b, `,"notifications":`...), s.uris)
	return append(b, "}}"...)
}

// complete is the graceful closure: the listen request's result.
func (s *Stream) complete() []byte {
	b := s.meta([]byte(`{"resultType":"complete",`))
	b = append(b, '}')
	return mcpparse.AppendResponse(make([]byte, 0, 32+len(s.cfg.ID)+len(b)), s.cfg.ID, b, nil)
}

// listKind is the index in listKinds of the notification data (the
// registry's), or -1.
func listKind(data []byte, o mcpparse.Options) int {
	m, err := mcpparse.Parse(data, o)
	if err != nil {
		return -1
	}
	for k, method := range listKinds {
		if m.Method == method {
			return k
		}
	}
	return -1
}
