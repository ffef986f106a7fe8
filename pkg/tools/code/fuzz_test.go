package code

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzCodeArgs: argument validation never panics, accepts only what the
// child protocol carries unchanged, and the request a call would send
// decodes in the child to the same program.
func FuzzCodeArgs(f *testing.F) {
	for _, s := range [][2]string{
		{"print(1+1)", "starlark"},
		{"result = {'a': 1}", ""},
		{"\x00\xff\"\\", "starlark"},
		{"x", "Starlark"},
		{"x", "python"},
		{"x", "star lark"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, code, language string) {
		args := map[string]any{"code": code}
		if language != "" {
			args["language"] = language
		}
		c, err := parseArgs(args)
		if err != nil {
			if check(err) != "arguments" {
				t.Fatalf("non-arguments refusal %v", err)
			}
			return
		}
		if c.code != code || (language != "" && c.language != language) {
			t.Fatalf("parseArgs changed the call: %+v", c)
		}
		req := request{Version: protocolVersion, Language: "starlark", Code: c.code,
			MaxSteps: 1, MaxOutputBytes: 1, CPUSeconds: 1, MaxOpenFiles: 8, MaxMemoryMB: 1}
		payload, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readRequest(bytes.NewReader(payload))
		if err != nil {
			t.Fatalf("the child refuses a request the parent accepted: %v", err)
		}
		// JSON turns invalid UTF-8 into U+FFFD: the child runs the
		// program the parent's JSON says, which is what it validated.
		var want request
		json.Unmarshal(payload, &want)
		if got != want {
			t.Fatalf("round trip changed the request")
		}
	})
}
