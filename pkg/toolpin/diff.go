package toolpin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// diffContext is the number of unchanged lines shown around each change, as
// in diff -u.
const diffContext = 3

// maxEditDistance bounds the work of the line diff: the Myers search keeps
// O(D²) state for D differing lines. Past it the differing middle of the two
// definitions is shown as one deletion and one insertion, which is still a
// correct, if unhelpful, diff.
const maxEditDistance = 1000

// Diff returns a unified diff of pinned.Pretty() against current.Pretty(),
// in the format of diff -u: the headers "--- pinned NAME" and
// "+++ current NAME", then hunks "@@ -l,s +l,s @@" with three lines of
// context, each line ending in "\n". It returns "" when the two render the
// same (that is, when their hashes are equal). A name holding control or
// other non-graphic characters is written quoted, as Go would quote it, so
// that it cannot forge lines of the diff.
func Diff(name string, pinned, current Definition) string {
	a := strings.Split(pinned.Pretty(), "\n")
	b := strings.Split(current.Pretty(), "\n")
	if slices.Equal(a, b) {
		return ""
	}
	if strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsGraphic(r) || r == '\u00a0' }) {
		name = strconv.Quote(name)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- pinned %s\n+++ current %s\n", name, name)
	writeHunks(&out, a, b, diffLines(a, b))
	return out.String()
}

// edit is one line of an edit script: ' ' kept, '-' deleted from a, '+'
// inserted from b.
type edit struct {
	op   byte
	line string
}

// diffLines returns a shortest edit script turning a into b (E. Myers, "An
// O(ND) Difference Algorithm and Its Variations", Algorithmica 1986), after
// stripping the common prefix and suffix.
func diffLines(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	script := make([]edit, 0, len(a)+len(b))
	for _, l := range a[:pre] {
		script = append(script, edit{' ', l})
	}
	script = append(script, myers(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		script = append(script, edit{' ', l})
	}
	return script
}

// myers is the greedy forward search of Myers' paper, recording the frontier
// V of each round so that the path can be traced back.
func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	var trace [][]int // trace[d][k+d] is V[k] at the start of round d
	v := []int{0, 0, 0}
	found := false
	d := 0
	for ; d <= n+m && d <= maxEditDistance; d++ {
		// v covers diagonals -d-1..d+1; snapshot -d..d.
		trace = append(trace, slices.Clone(v[1:len(v)-1]))
		next := make([]int, 2*d+5)
		get := func(k int) int { return v[k+d+1] }
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || k != d && get(k-1) < get(k+1) {
				x = get(k + 1)
			} else {
				x = get(k-1) + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			next[k+d+2] = x
			if x >= n && y >= m {
				found = true
				break
			}
		}
		if found {
			break
		}
		v = next
	}
	if !found {
		return replaceAll(a, b)
	}

	// Walk back from (n, m) to (0, 0), collecting the script in reverse.
	var rev []edit
	x, y := n, m
	for ; d > 0; d-- {
		vd := trace[d]
		get := func(k int) int { return vd[k+d] }
		k := x - y
		var prevK int
		if k == -d || k != d && get(k-1) < get(k+1) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := get(prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			rev = append(rev, edit{' ', a[x-1]})
			x, y = x-1, y-1
		}
		if x == prevX {
			rev = append(rev, edit{'+', b[y-1]})
		} else {
			rev = append(rev, edit{'-', a[x-1]})
		}
		x, y = prevX, prevY
	}
	for x > 0 && y > 0 {
		rev = append(rev, edit{' ', a[x-1]})
		x, y = x-1, y-1
	}
	slices.Reverse(rev)
	return rev
}

func replaceAll(a, b []string) []edit {
	script := make([]edit, 0, len(a)+len(b))
	for _, l := range a {
		script = append(script, edit{'-', l})
	}
	for _, l := range b {
		script = append(script, edit{'+', l})
	}
	return script
}

// writeHunks writes the script as unified-diff hunks: changes closer than
// 2*diffContext kept lines share a hunk.
func writeHunks(out *strings.Builder, a, b []string, script []edit) {
	// aAt[i] and bAt[i] count the lines of a and b before script[i].
	aAt := make([]int, len(script)+1)
	bAt := make([]int, len(script)+1)
	for i, e := range script {
		aAt[i+1], bAt[i+1] = aAt[i], bAt[i]
		if e.op != '+' {
			aAt[i+1]++
		}
		if e.op != '-' {
			bAt[i+1]++
		}
	}
	for i := 0; i < len(script); {
		if script[i].op == ' ' {
			i++
			continue
		}
		start := max(0, i-diffContext)
		end := i // one past the last change in the hunk
		for j := i; j < len(script) && j < end+2*diffContext+1; j++ {
			if script[j].op != ' ' {
				end = j + 1
			}
		}
		stop := min(len(script), end+diffContext)
		fmt.Fprintf(out, "@@ -%s +%s @@\n",
			hunkRange(aAt[start], aAt[stop]-aAt[start]), hunkRange(bAt[start], bAt[stop]-bAt[start]))
		for _, e := range script[start:stop] {
			out.WriteByte(e.op)
			out.WriteString(e.line)
			out.WriteByte('\n')
		}
		i = stop
	}
}

// hunkRange formats a hunk range as diff -u does: "l,s" with l 1-based, "l"
// alone when s is 1, and l the line before the hunk when s is 0.
func hunkRange(before, size int) string {
	switch size {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return strconv.Itoa(before + 1)
	}
	return fmt.Sprintf("%d,%d", before+1, size)
}
