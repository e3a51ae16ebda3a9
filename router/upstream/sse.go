package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// SSEReader reads the data of server-sent events, each bounded.
type SSEReader struct {
	r   *bufio.Reader
	max int64
}

// NewSSEReader reads events from r, each of at most max bytes of data.
func NewSSEReader(r io.Reader, max int64) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// ErrEventTooLarge is an event past the reader's bound.
var ErrEventTooLarge = errors.New("upstream: event too large")

// Next returns the data of the next event that has any; io.EOF at the end.
func (s *SSEReader) Next() ([]byte, error) {
	var data []byte
	has := false
	for {
		line, err := s.line()
		if err != nil {
			if errors.Is(err, io.EOF) && has {
				return data, nil
			}
			return nil, err
		}
		if len(line) == 0 {
			if has {
				return data, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		if string(field) != "data" {
			continue // comments, event, id, retry
		}
		if has {
			data = append(data, '\n')
		}
		data = append(data, value...)
		has = true
		if int64(len(data)) > s.max {
			return nil, ErrEventTooLarge
		}
	}
}

func (s *SSEReader) line() ([]byte, error) {
	var buf []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		buf = append(buf, frag...)
		if int64(len(buf)) > s.max+16 {
			return nil, ErrEventTooLarge
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && len(buf) == 0:
			return nil, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		return bytes.TrimSuffix(buf, []byte("\r")), nil
	}
}
