package mcpparse

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFields(t *testing.T) {
	tests := []struct {
		name, obj string
		o         Options
		want      []string // raw values of "a" and "b"; "" absent
		err       error
	}{
		{name: "both", obj: `{"b":[1],"a":"x","c":{}}`, want: []string{`"x"`, `[1]`}},
		{name: "absent", obj: `{"c":1}`, want: []string{"", ""}},
		{name: "duplicate", obj: `{"a":1,"a":2}`, err: ErrInvalidRequest},
		{name: "another case", obj: `{"A":1}`, err: ErrInvalidRequest},
		{name: "another case allowed when case-sensitive", obj: `{"A":1,"a":2}`, o: Options{CaseSensitiveKeys: true}, want: []string{`2`, ""}},
		{name: "exact duplicate still refused when case-sensitive", obj: `{"a":1,"\u0061":2}`, o: Options{CaseSensitiveKeys: true}, err: ErrInvalidRequest},
		{name: "nested duplicate", obj: `{"a":{"x":1,"X":2}}`, err: ErrInvalidRequest},
		{name: "nested case variants when case-sensitive", obj: `{"a":{"x":1,"X":2}}`, o: Options{CaseSensitiveKeys: true}, want: []string{`{"x":1,"X":2}`, ""}},
		{name: "not an object", obj: `[1]`, err: ErrInvalidRequest},
		{name: "trailing data", obj: `{} x`, err: ErrParse},
		{name: "malformed", obj: `{"a":}`, err: ErrParse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Fields([]byte(tt.obj), tt.o, "a", "b")
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range got {
				if string(f.Raw) != tt.want[i] {
					t.Errorf("field %d: %s, want %s", i, f.Raw, tt.want[i])
				}
				if f.Raw != nil && tt.obj[f.Start:f.Start+len(f.Raw)] != string(f.Raw) {
					t.Errorf("field %d: Start %d does not locate it", i, f.Start)
				}
			}
		})
	}
}

func TestElements(t *testing.T) {
	got, err := Elements([]byte(` [ {"a":1} , "x" ,[]] `), Options{})
	if err != nil || len(got) != 3 || string(got[0]) != `{"a":1}` || string(got[1]) != `"x"` || string(got[2]) != `[]` {
		t.Fatalf("Elements: %q %v", got, err)
	}
	for _, bad := range []string{`{}`, `[1,]`, `[{"a":1,"A":2}]`} {
		if _, err := Elements([]byte(bad), Options{}); err == nil {
			t.Errorf("Elements(%s) accepted", bad)
		}
	}
}

func TestStringInt(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
		ok             bool
	}{
		{name: "plain", in: `"abc"`, want: "abc", ok: true},
		{name: "escapes", in: `"a\u0062\n"`, want: "ab\n", ok: true},
		{name: "lone surrogate", in: `"\ud800"`},
		{name: "number", in: `1`},
		{name: "trailing", in: `"a" "b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := String([]byte(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("String(%s) = %q, %v", tt.in, got, err)
			}
		})
	}
	if n, err := Int([]byte(`-42`)); err != nil || n != -42 {
		t.Errorf("Int(-42) = %d, %v", n, err)
	}
	for _, bad := range []string{`1.5`, `1e3`, `"1"`, `99999999999999999999`} {
		if _, err := Int([]byte(bad)); err == nil {
			t.Errorf("Int(%s) accepted", bad)
		}
	}
}

func TestAppendIDKey(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`"a"`, "sa", true},
		{`"\u0061"`, "sa", true},
		{`"a\/b"`, "sa/b", true},
		{` 1 `, "n1", true},
		{`1.0`, "n1", true},
		{`10E-1`, "n1", true},
		{`-0`, "n0", true},
		{`9007199254740991`, "n9007199254740991", true},
		{`9007199254740992`, "", false},
		{`1.5`, "", false},
		{`null`, "", false},
		{`{}`, "", false},
		{`"\ud800"`, "", false},
		{`01`, "", false},
		{`1 2`, "", false},
	} {
		got, ok := AppendIDKey(nil, []byte(tt.in))
		if ok != tt.ok || (ok && string(got) != tt.want) {
			t.Errorf("AppendIDKey(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAppendError(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   json.RawMessage
		msg  string
	}{
		{name: "null id", msg: "plain"},
		{name: "string id kept as sent", id: json.RawMessage(`"a\u0062"`), msg: "quote \" and \\ and \n and \x01"},
		{name: "invalid UTF-8 replaced", id: json.RawMessage(`7`), msg: "bad \xff byte"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendError(nil, tt.id, CodeInvalidParams, tt.msg)
			m, err := Parse(b, Options{})
			if err != nil || m.Kind != KindError {
				t.Fatalf("%s: %v", b, err)
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(m.Error, &e); err != nil || e.Code != CodeInvalidParams {
				t.Fatalf("%s: %v", m.Error, err)
			}
			if want := string([]rune(tt.msg)); e.Message != want {
				t.Errorf("message %q, want %q", e.Message, want)
			}
			if tt.id != nil && string(m.ID) != string(tt.id) {
				t.Errorf("id %s, want %s as sent", m.ID, tt.id)
			}
		})
	}
}

func TestSplice(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods","arguments":{}}}`)
	m, err := Parse(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := Splice(body, m.NameSpan, []byte(`"pods"`))
	m2, err := Parse(out, Options{})
	if err != nil || m2.Name != "pods" || string(m2.Arguments) != `{}` {
		t.Fatalf("%s: %+v %v", out, m2, err)
	}
	if string(body[m.NameSpan.Start:m.NameSpan.End]) != `"kube_pods"` {
		t.Error("Splice changed its input")
	}
}

func TestAnyNumberID(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":7.0,"method":"ping"}`)
	if _, err := Parse(body, Options{}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("id 7.0 without AnyNumberID: %v", err)
	}
	m, err := Parse(body, Options{AnyNumberID: true})
	if err != nil || string(m.ID) != "7.0" {
		t.Errorf("id 7.0 with AnyNumberID: %q %v", m.ID, err)
	}
	if _, err := Parse([]byte(`{"jsonrpc":"2.0","id":true,"method":"ping"}`), Options{AnyNumberID: true}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("id true with AnyNumberID: %v", err)
	}
}
