package redact

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse runs one Redactor from several goroutines (run with
// -race): the gitleaks detectors, the keyword automaton and the walker pool
// are shared.
func TestConcurrentUse(t *testing.T) {
	r := New(Options{Timeout: time.Minute}) // about shared state, not the time bound (-race is slow)
	cases := secretCorpus()
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range cases {
				c := cases[(i+w)%len(cases)]
				res, err := r.RedactText(context.Background(), c.text)
				if err != nil {
					errs <- c.kind + ": RedactText: " + err.Error()
				} else if strings.Contains(res.Text, c.secrets[0]) {
					errs <- c.kind + ": text not redacted"
				}
				doc, _ := json.Marshal(map[string]string{"out": c.text})
				out, _, err := r.RedactJSON(context.Background(), doc)
				if err != nil {
					errs <- c.kind + ": RedactJSON: " + err.Error()
				} else if strings.Contains(string(out), c.secrets[0]) {
					errs <- c.kind + ": JSON not redacted"
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
