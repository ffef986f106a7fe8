package ui

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tty := &IO{OutTTY: true}
	pipe := &IO{}
	tests := []struct {
		io   *IO
		in   string
		want Format
	}{
		{tty, "", Table}, {tty, "table", Table}, {pipe, "", Text}, {pipe, "table", Text},
		{pipe, "json", JSON}, {tty, "json", JSON}, {tty, "text", Text},
	}
	for _, tt := range tests {
		got, err := tt.io.ParseFormat(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFormat(%q, tty=%v) = %q, %v; want %q", tt.in, tt.io.OutTTY, got, err, tt.want)
		}
	}
	if _, err := tty.ParseFormat("yaml"); err == nil {
		t.Error("yaml accepted")
	}
}

func TestRowsText(t *testing.T) {
	var out bytes.Buffer
	o := &IO{Out: &out}
	o.Rows(Text, []string{"seq", "tool"}, [][]string{{"1", "filesystem_read"}, {"10", "api_call"}})
	want := "SEQ  TOOL\n1    filesystem_read\n10   api_call\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}

func TestRecordMarksAttentionWithoutColor(t *testing.T) {
	var out bytes.Buffer
	o := &IO{Out: &out}
	o.Record("Status", []Field{{Label: "sponsor", Value: "unset", Attention: true}, {Label: "DID", Value: "did:x"}})
	s := out.String()
	if !strings.Contains(s, "sponsor  unset  (!)") || !strings.Contains(s, "DID      did:x") || strings.Contains(s, "\x1b[") {
		t.Errorf("record output:\n%s", s)
	}
}
