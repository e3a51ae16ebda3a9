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
	if p.peek() != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrInvalidRequest)
	}
	empty, err := p.open(1, '}')
	if err != nil {
		return nil, err
	}
	var out []string
	ks := p.beginObject()
	for more := !empty; more; {
		k, err := p.key(&ks)
		if err != nil {
			return nil, wellFormed(obj, err)
		}
		out = append(out, string(k))
		if _, err := p.value(1); err != nil {
			return nil, wellFormed(obj, err)
		}
		if more, err = p.next('}'); err != nil {
			return nil, wellFormed(obj, err)
		}
	}
	p.endObject(ks)
	if err := p.end(); err != nil {
		return nil, err
	}
	return out, nil
}
