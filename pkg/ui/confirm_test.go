package ui

import (
	"bytes"
	"strings"
	"testing"
)

func TestConfirm(t *testing.T) {
	tests := []struct {
		answer string
		want   bool
	}{
		{"y\n", true}, {"yes\n", true}, {" Y \n", true}, {"YES\r\n", true}, {"y", true},
		{"\n", false}, {"n\n", false}, {"no\n", false}, {"yep\n", false}, {"", false},
		{"n\ny\n", false},
	}
	for _, tt := range tests {
		var errb bytes.Buffer
		o := &IO{In: strings.NewReader(tt.answer), Err: &errb, Out: &bytes.Buffer{}}
		if got := o.Confirm("approve fx__echo anyway?"); got != tt.want {
			t.Errorf("answer %q: Confirm = %v, want %v", tt.answer, got, tt.want)
		}
		if !strings.HasPrefix(errb.String(), "approve fx__echo anyway? [y/N] ") {
			t.Errorf("answer %q: prompt %q", tt.answer, errb.String())
		}
	}
}
