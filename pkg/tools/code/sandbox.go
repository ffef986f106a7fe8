package code

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// watchInterval is how often the parent polls the child's peak RSS.
const watchInterval = 10 * time.Millisecond

// stderrTail is how much of the child's stderr is kept (for the runtime's
// fatal errors).
const stderrTail = 16 << 10

// Why the parent killed the child.
const (
	killedMemory  = "memory"
	killedTimeout = "timeout"
	killedContext = "context"
)

// outcome is everything the parent learns from one child.
type outcome struct {
	resp       response
	respErr    error // the response could not be decoded
	overflow   bool  // stdout exceeded its cap
	killedFor  string
	peakRSS    int64
	state      *os.ProcessState
	stderr     string
	duration   time.Duration
	startError error
}

// run starts one child, feeds it the request and watches it: wall-clock
// timeout, context cancellation and (where /proc exists) peak RSS. Any of
// them kills the child's whole process group.
func (t *Tool) run(ctx context.Context, req request) outcome {
	payload, err := json.Marshal(req)
	if err != nil {
		return outcome{startError: err}
	}
	// Output and result are each capped at MaxOutputBytes; JSON escaping
	// can inflate a byte to six.
	stdout := &cappedBuffer{max: 12*t.opts.MaxOutputBytes + 64<<10}
	stderr := &tailBuffer{max: stderrTail}
	cmd := exec.Command(t.opts.Exe, t.opts.Args...)
	cmd.Env = append([]string{"GOMAXPROCS=1", "GOTRACEBACK=single"}, t.opts.Env...)
	cmd.Dir = os.TempDir()
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return outcome{startError: err}
	}
	var (
		mu        sync.Mutex
		killedFor string
	)
	kill := func(why string) {
		mu.Lock()
		if killedFor == "" {
			killedFor = why
		}
		mu.Unlock()
		killTree(cmd.Process)
	}
	done := make(chan struct{})
	var peak int64
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		peak = t.watch(ctx, cmd.Process.Pid, done, kill)
	}()
	timer := time.AfterFunc(t.opts.Timeout, func() { kill(killedTimeout) })
	err = cmd.Wait()
	timer.Stop()
	close(done)
	watch.Wait()

	o := outcome{
		overflow: stdout.overflow,
		peakRSS:  peak,
		state:    cmd.ProcessState,
		stderr:   stderr.String(),
		duration: time.Since(start),
	}
	mu.Lock()
	o.killedFor = killedFor
	mu.Unlock()
	if o.state == nil {
		o.startError = err
		return o
	}
	if !o.overflow {
		o.respErr = json.Unmarshal(stdout.Bytes(), &o.resp)
	}
	return o
}

// watch polls the child's peak RSS every watchInterval until done, and
// kills it above MaxMemoryMB or when ctx ends. It returns the last peak.
func (t *Tool) watch(ctx context.Context, pid int, done <-chan struct{}, kill func(string)) int64 {
	limit := int64(t.opts.MaxMemoryMB) << 20
	var peak int64
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		if rss, ok := peakRSS(pid); ok {
			peak = max(peak, rss)
			if rss > limit {
				kill(killedMemory)
				return peak
			}
		}
		select {
		case <-done:
			return peak
		case <-ctx.Done():
			kill(killedContext)
			return peak
		case <-tick.C:
		}
	}
}

// cappedBuffer keeps the first max bytes written and notes overflow; it
// never fails a write, so the child is never blocked or killed by a pipe.
type cappedBuffer struct {
	bytes.Buffer
	max      int64
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.Len())
	if int64(len(p)) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	b   []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.b = append(b.b, p...)
	if over := len(b.b) - b.max; over > 0 {
		b.b = append(b.b[:0], b.b[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.b) }

// runtimeOOM recognises the Go runtime's fatal out-of-memory errors in the
// child's stderr: an mmap refused under RLIMIT_DATA ("cannot allocate
// memory", "out of memory"), in a cgo build a thread stack refused under
// it ("pthread_create failed"), or a goroutine stack over its limit. Only
// the runtime writes to the child's stderr: the program's print() goes to
// the bounded buffer.
func runtimeOOM(stderr string) bool {
	for _, s := range []string{
		"fatal error: runtime: cannot allocate memory",
		"fatal error: out of memory",
		"runtime: out of memory",
		"runtime/cgo: pthread_create failed: Resource temporarily unavailable",
		"fatal error: stack overflow",
		"ThreadSanitizer failed to allocate", // a -race build under RLIMIT_DATA
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

func (o outcome) cpuTime() time.Duration {
	if o.state == nil {
		return 0
	}
	return o.state.UserTime() + o.state.SystemTime()
}

func (o outcome) String() string {
	return fmt.Sprintf("%v after %s (cpu %s)", o.state, o.duration.Round(time.Millisecond), o.cpuTime().Round(time.Millisecond))
}
