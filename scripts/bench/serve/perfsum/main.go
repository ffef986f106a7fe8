// Command perfsum summarizes `perf script` output (samples with call
// stacks, from `perf record -g`) as a breakdown: for each function named on
// the command line (matching every symbol that ends in it), the share of all
// samples whose stack contains it (inclusive), and how that share splits
// over its direct callees.
//
//	perf script -i perf.data -F comm,tid,ip,sym | go run ./scripts/bench/serve/perfsum [-comm agentmesh] 'governance.(*Pipeline).Run' ...
//
// With -comm only the samples of processes with that command name count.
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

func main() {
	top := flag.Int("top", 12, "callees shown per function")
	comm := flag.String("comm", "", "only samples of processes with this command name")
	flag.Parse()
	var stacks [][]string // leaf first
	var cur []string
	in := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if in {
				stacks = append(stacks, cur)
			}
			cur, in = nil, false
		case line[0] != ' ' && line[0] != '\t':
			// Sample header: "COMM TID".
			f := strings.Fields(line)
			cur, in = nil, *comm == "" || len(f) > 0 && f[0] == *comm
		case in:
			f := strings.Fields(line)
			sym := f[0]
			if len(f) > 1 {
				sym = strings.Join(f[1:], " ")
			}
			cur = append(cur, sym)
		}
	}
	if in {
		stacks = append(stacks, cur)
	}
	n := float64(len(stacks))
	fmt.Printf("%d samples\n", len(stacks))
	for _, name := range flag.Args() {
		total := 0
		callees := map[string]int{}
		for _, s := range stacks {
			// The outermost frame matching name (callers are later).
			for i := len(s) - 1; i >= 0; i-- {
				if strings.HasSuffix(s[i], name) {
					total++
					c := "(self)"
					if i > 0 {
						c = s[i-1]
					}
					callees[c]++
					break
				}
			}
		}
		fmt.Printf("\n%5.1f%%  %s\n", 100*float64(total)/n, name)
		type kv struct {
			k string
			v int
		}
		var list []kv
		for k, v := range callees {
			list = append(list, kv{k, v})
		}
		slices.SortFunc(list, func(a, b kv) int { return cmp.Compare(b.v, a.v) })
		for i, e := range list {
			if i == *top {
				break
			}
			fmt.Printf("   %5.1f%%  %s\n", 100*float64(e.v)/n, trim(e.k))
		}
	}
}

func trim(s string) string {
	if len(s) > 130 {
		return s[:130] + "…"
	}
	return s
}
