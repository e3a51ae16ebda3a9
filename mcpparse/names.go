package mcpparse

import "fmt"

// Names returns the member names of obj, one JSON object read as strictly
// as Fields reads it, in the order sent (the audit trail's argument names:
// never their values).
func Names(obj []byte, o Options) ([]string, error) {
	var p scanner
	if err := p.init(obj, o); err != nil {
		return nil, err
	}
	if p.Peek() != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrInvalidRequest)
	}
	var out []string
	err := p.Members(1, func(k []byte) error {
		out = append(out, string(k))
		_, err := p.Value(1)
		return err
	})
	if err != nil {
		return nil, wellFormed(obj, err)
	}
	if err := p.End(); err != nil {
		return nil, err
	}
	return out, nil
}
