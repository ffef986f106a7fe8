//go:build unix && !linux

package code

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// peakRSS is unavailable without /proc: the memory bound is then only the
// child's GC soft limit.
func peakRSS(int) (int64, bool) { return 0, false }

const rssWatchdog = false

func killTree(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.Kill()
}

// maxRSSKB is not reported outside Linux (units differ between systems).
func maxRSSKB(*os.ProcessState) int64 { return 0 }
