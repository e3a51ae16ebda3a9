package upstream

import "testing"

// TestSetMetaKeeps: what setMeta keeps of _meta is every other member,
// value as sent (nested, escaped), names decoded and written back sorted,
// and params are returned as they came when nothing is to change.
func TestSetMetaKeeps(t *testing.T) {
	for _, tc := range []struct{ name, params, members, want string }{
		{name: "several kept, sorted", params: `{"_meta":{"z":1,"io.modelcontextprotocol/clientInfo":{},"a":{"b":[1,{"c":"d"}]}},"name":"t"}`,
			want: `{"_meta":{"a":{"b":[1,{"c":"d"}]},"z":1},"name":"t"}`},
		{name: "escaped name", params: `{"_meta":{"pro\u0067ressToken":"p\u00e9","io.modelcontextprotocol/protocolVersion":"x"}}`,
			want: `{"_meta":{"progressToken":"p\u00e9"}}`},
		{name: "nothing to drop", params: `{"_meta":{"progressToken":"p"} , "name":"t"}`, want: `{"_meta":{"progressToken":"p"} , "name":"t"}`},
		{name: "null meta", params: `{"_meta":null,"name":"t"}`, want: `{"_meta":null,"name":"t"}`},
		{name: "members added first", params: `{"_meta":{"progressToken":"p","io.modelcontextprotocol/clientInfo":{}}}`, members: `"m":true`,
			want: `{"_meta":{"m":true,"progressToken":"p"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []byte
			if tc.members != "" {
				members = []byte(tc.members)
			}
			got := setMeta([]byte(tc.params), members, MetaVersion, MetaClientInfo, MetaCapabilities)
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
